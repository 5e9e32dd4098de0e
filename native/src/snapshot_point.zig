//! Ties a snapshot to the spool without any lock: given the WAL view of the
//! read transaction the snapshot is copied through (vfs.ReadView), finds
//! the spool record of its newest commit.
//!
//! Capture appends a commit's record before SQLite publishes the commit in
//! the wal-index, so every commit a reader sees has its record, and at most
//! one record (the commit in flight) is not yet seen. For a view with
//! frames (mx_frame > 0) the answer is the record of exactly that commit.
//! A view of an empty WAL cycle reads the database file alone, which holds
//! every earlier cycle (SQLite restarts the WAL only once all of it is
//! checkpointed): the answer is the newest record of an earlier cycle among
//! those appended before the read began (`before_seq`); records appended
//! after it may belong to a cycle that started later.
const std = @import("std");
const spool = @import("spool.zig");
const fileio = @import("fileio.zig");
const status = @import("status.zig");
const Error = status.Error;

pub const View = struct { salt1: u32, salt2: u32, mx_frame: u32 };

/// The seq of the snapshot's last commit; null when the spool cannot say
/// yet (it lags the WAL until the next writer or recovery catches it up, or
/// the commit was acknowledged past what the view holds): try again shortly.
pub fn seqAt(reader: *spool.Reader, view: View, before_seq: u64) Error!?u64 {
    const ack = try spool.readAck(&reader.paths);
    const size = try fileio.size(reader.fd);
    // The newest acknowledged record stays readable; older ones are gone,
    // and a snapshot older than what S3 already holds cannot start a
    // generation (its next commits were acknowledged and dropped).
    var off = if (ack.acked_seq > 0) ack.last_record_offset else ack.next_offset;
    var answer: ?u64 = if (view.mx_frame == 0 and ack.acked_seq <= before_seq) ack.acked_seq else null;
    while (try spool.readHeader(reader.fd, off, size)) |h| : (off += spool.record_size) {
        const same_cycle = h.wal_salt1 == view.salt1 and h.wal_salt2 == view.salt2;
        if (view.mx_frame > 0) {
            if (same_cycle and h.wal_commit_frame == view.mx_frame) {
                answer = h.seq;
                break;
            }
        } else {
            if (h.seq > before_seq) break;
            if (same_cycle) break;
            answer = h.seq;
        }
    }
    const seq = answer orelse return null;
    if (seq < ack.acked_seq) return null;
    return seq;
}

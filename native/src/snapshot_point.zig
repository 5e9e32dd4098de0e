//! Ties a snapshot to the spool without any lock: given the WAL view of the
//! read transaction the snapshot is copied through (vfs.ReadView), finds
//! the spool record of its newest commit.
//!
//! Capture appends a commit's record before SQLite publishes the commit in
//! the wal-index, so every commit a reader sees has its record, and at most
//! one record (the commit in flight) is not yet seen. For a view with
//! frames (mx_frame > 0) the answer is the record of exactly that commit.
//!
//! A view of an empty WAL cycle (mx_frame == 0) reads the database file
//! alone. That file holds every cycle that ended before the view (SQLite
//! restarts the WAL only once all of it is checkpointed), and nothing later:
//! a reader on an empty cycle holds WAL_READ_LOCK(0), which every backfill
//! needs exclusively, so no commit reaches the file while the snapshot is
//! copied. What it lacks is the cycle being written at or after the view,
//! and that cycle's salts are not always the view's: a writer that did not
//! restart the WAL itself draws fresh random salts for its first frame, and
//! publishes them only with its commit. So a record is left out when its
//! salts are the view's, or the WAL file's header's (read after the view,
//! which no new cycle can replace while the reader holds its lock), unless
//! the view is the restart of that very cycle (SQLite's restart adds one to
//! salt1 and publishes it before any frame is written, so the header still
//! names the old cycle, which the file holds). Among the records appended
//! before the read began (`before_seq`), the newest one not left out is the
//! answer; records appended after it may belong to a cycle that started
//! later.
const std = @import("std");
const spool = @import("spool.zig");
const fileio = @import("fileio.zig");
const status = @import("status.zig");
const walfmt = @import("walfmt.zig");
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
    const unseen = if (view.mx_frame == 0) try unseenCycle(&reader.paths, view) else null;
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
            if (unseen) |u| if (h.wal_salt1 == u.salt1 and h.wal_salt2 == u.salt2) break;
            answer = h.seq;
        }
    }
    const seq = answer orelse return null;
    if (seq < ack.acked_seq) return null;
    return seq;
}

const Salts = struct { salt1: u32, salt2: u32 };

/// The salts of the cycle the WAL file's header names, when an empty view
/// does not hold it: it is being written at or after the view (see the top
/// of this file). Null when the file has no valid header, or the view is
/// SQLite's restart of that cycle.
fn unseenCycle(paths: *const spool.Paths, view: View) Error!?Salts {
    const fd = (try fileio.openIfExists(spool.Paths.z(&paths.wal), false)) orelse return null;
    defer fileio.close(fd);
    var b: [walfmt.header_size]u8 = undefined;
    if (try fileio.preadAll(fd, &b, 0) != b.len) return null;
    const h = walfmt.WalHeader.parse(&b) orelse return null;
    return cycleAfterView(view, h.salt1, h.salt2);
}

fn cycleAfterView(view: View, salt1: u32, salt2: u32) ?Salts {
    if (view.salt1 == salt1 +% 1) return null; // restarted from it
    return .{ .salt1 = salt1, .salt2 = salt2 };
}

test "an empty view leaves out the WAL file's cycle unless it restarted from it" {
    const t = std.testing;
    // A first commit in flight: fresh random salts, the view still the recovered (0, 0).
    try t.expectEqual(@as(?Salts, .{ .salt1 = 77, .salt2 = 5 }), cycleAfterView(.{ .salt1 = 0, .salt2 = 0, .mx_frame = 0 }, 77, 5));
    // The view is the restart of the file's cycle, whose frames are all in the database file.
    try t.expectEqual(@as(?Salts, null), cycleAfterView(.{ .salt1 = 78, .salt2 = 9, .mx_frame = 0 }, 77, 5));
    // A restarted cycle already being written: its records are not in the view.
    try t.expectEqual(@as(?Salts, .{ .salt1 = 78, .salt2 = 9 }), cycleAfterView(.{ .salt1 = 78, .salt2 = 9, .mx_frame = 0 }, 78, 9));
    // Salt1 wraps as SQLite's does.
    try t.expectEqual(@as(?Salts, null), cycleAfterView(.{ .salt1 = 0, .salt2 = 1, .mx_frame = 0 }, 0xffff_ffff, 2));
}

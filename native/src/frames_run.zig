//! The frames of a run of consecutive spool records in one call: shipping a
//! batch costs the replicator one crossing of the C ABI (and of Python's
//! GIL, which cffi releases for it) instead of one per transaction, and
//! holding each page once (`batch_pages.zig`).
//!
//! The call also decides where the batch ends: at `max_frames` distinct
//! pages, the frames of the object libSQL's bottomless counts in its own
//! `max_frames_per_batch`. Counting raw frames instead cut a busy writer's
//! second into many small batches of the same hot pages, each with its own
//! PUT, state save and acknowledgement.
const std = @import("std");
const spool = @import("spool.zig");
const walfmt = @import("walfmt.zig");
const batch_pages = @import("batch_pages.zig");
const status = @import("status.zig");
const Error = status.Error;

pub const Run = struct {
    /// Bytes of frames written at the start of `out`.
    bytes: usize,
    /// Records the batch holds, from the first: the caller ships the rest
    /// in a later batch.
    records: u64,
};

/// Encodes the pages of up to `count` records starting at `offset` (all of
/// one page size) as one transaction of WAL frames continuing `chain`, each
/// page once in its newest image (`batch_pages.Newest`), back to back at
/// the start of `out`.
/// The first record is always taken; each later one only while the batch
/// holds fewer than `max_frames` pages, would hold at most that many with
/// it, and it fits in `out` beside them: an object exceeds `max_frames`
/// only when its one transaction does. Each record is read into `out` after the batch's
/// pages and each frame copied once into its page's place, so the part of
/// `out` ever written is the batch's pages and one record, not every frame:
/// a caller's scratch that is not written is never paged in.
/// On Busy (the WAL is being rewritten) `chain` is left as it was, so the
/// caller can simply call again.
pub fn framesRun(reader: *spool.Reader, offset: u64, count: u64, max_frames: u64, chain: *walfmt.Chain, out: []u8) (Error || error{Busy})!Run {
    std.debug.assert(max_frames > 0 and count > 0);
    const first = (try reader.next(offset)) orelse return missing(0, offset);
    var batch = batch_pages.Newest.init(out, first.page_size);
    defer batch.deinit();
    var off = offset;
    var db_size: u32 = 0;
    var i: u64 = 0;
    while (i < count) : (i += 1) {
        const h = if (i == 0) first else (try reader.next(off)) orelse return missing(i, off);
        if (h.page_size != first.page_size) {
            status.set("spool record {d} of the batch changes the page size; a batch holds one", .{i});
            return error.Misuse;
        }
        const size: usize = @intCast(h.entrySize());
        const staging = batch.staging();
        if (staging.len < size) {
            if (i == 0) return error.BufferTooSmall;
            break;
        }
        // As stored: finish() checksums only what it keeps.
        try reader.rawFrames(off, h, staging[0..size]);
        const with = try batch.pagesWith(staging[0..size]);
        if (i > 0 and (batch.pages() >= max_frames or with > max_frames)) break;
        try batch.take(staging[0..size]);
        db_size = h.db_size;
        off += spool.record_size;
    }
    return .{ .bytes = try batch.finish(db_size, chain), .records = i };
}

fn missing(i: u64, off: u64) Error {
    status.set("spool record {d} of the batch at offset {d} is not there", .{ i, off });
    return error.Misuse;
}

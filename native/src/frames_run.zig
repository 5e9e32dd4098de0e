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

/// Bytes read before the first compaction: below this, a batch is read
/// whole and compacted once, as small batches always were.
const compact_min = 1 << 20;

pub const Run = struct {
    /// Bytes of frames written at the start of `out`.
    bytes: usize,
    /// Records the batch holds, from the first: the caller ships the rest
    /// in a later batch.
    records: u64,
};

/// Encodes the pages of up to `count` records starting at `offset` (all of
/// one page size) as one transaction of WAL frames continuing `chain`, each
/// page once in its newest image, back to back in `out`.
/// The first record is always taken; each later one only while the batch
/// then holds at most `max_frames` distinct pages and fits in `out`, so an
/// object exceeds `max_frames` only when its one transaction does.
/// Older images are dropped as the reading goes (once what was read since
/// the last time doubles what was kept, or `out` is full), so the part of
/// `out` ever written is about twice the batch's distinct pages, not every
/// frame: a caller's scratch that is not written is never paged in.
/// On Busy (the WAL is being rewritten) `chain` is left as it was, so the
/// caller can simply call again.
pub fn framesRun(reader: *spool.Reader, offset: u64, count: u64, max_frames: u64, chain: *walfmt.Chain, out: []u8) (Error || error{Busy})!Run {
    std.debug.assert(max_frames > 0);
    var seen: std.AutoHashMapUnmanaged(u32, void) = .empty;
    defer seen.deinit(std.heap.c_allocator);
    var off = offset;
    var page_size: u32 = 0;
    var db_size: u32 = 0;
    var pos: usize = 0;
    var kept: usize = 0; // out[0..kept] holds each of its pages once
    var i: u64 = 0;
    while (i < count) : (i += 1) {
        const h = (try reader.next(off)) orelse {
            status.set("spool record {d} of the batch at offset {d} is not there", .{ i, off });
            return error.Misuse;
        };
        const size: usize = @intCast(h.entrySize());
        if (page_size != 0 and h.page_size != page_size) {
            status.set("spool record {d} of the batch changes the page size; a batch holds one", .{i});
            return error.Misuse;
        }
        if (out.len - pos < size and pos > kept) {
            pos = try batch_pages.dropOlder(out[0..pos], page_size, 0);
            kept = pos;
        }
        if (out.len - pos < size) {
            if (i == 0) return error.BufferTooSmall;
            break;
        }
        // As stored: keepNewest checksums only what it keeps.
        try reader.rawFrames(off, h, out[pos..][0..size]);
        const fits = try fitsBatch(&seen, out[pos..][0..size], h.page_size, max_frames);
        if (i > 0 and !fits) break;
        page_size = h.page_size;
        db_size = h.db_size;
        pos += size;
        off += spool.record_size;
        if (pos - kept > @max(kept, compact_min)) {
            pos = try batch_pages.dropOlder(out[0..pos], page_size, 0);
            kept = pos;
        }
    }
    if (pos == 0) return .{ .bytes = 0, .records = i };
    return .{ .bytes = try batch_pages.keepNewest(out[0..pos], page_size, db_size, chain), .records = i };
}

/// Adds the pages of one record's `frames` to `seen`; false when the batch
/// already held `max_frames` pages, or would hold more with this record.
fn fitsBatch(seen: *std.AutoHashMapUnmanaged(u32, void), frames: []const u8, page_size: u32, max_frames: u64) Error!bool {
    if (seen.count() >= max_frames) return false;
    const fsz: usize = walfmt.frame_header_size + page_size;
    const n: u32 = @intCast(frames.len / fsz);
    try seen.ensureUnusedCapacity(std.heap.c_allocator, n);
    for (0..n) |k| seen.putAssumeCapacity(std.mem.readInt(u32, frames[k * fsz ..][0..4], .big), {});
    return seen.count() <= max_frames;
}

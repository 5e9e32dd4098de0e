//! The frames of a run of consecutive spool records in one call: shipping a
//! batch costs the replicator one crossing of the C ABI (and of Python's
//! GIL, which cffi releases for it) instead of one per transaction, and
//! holding each page once (`batch_pages.zig`).
const std = @import("std");
const spool = @import("spool.zig");
const walfmt = @import("walfmt.zig");
const batch_pages = @import("batch_pages.zig");
const status = @import("status.zig");
const Error = status.Error;

/// Bytes read before the first compaction: below this, a batch is read
/// whole and compacted once, as small batches always were.
const compact_min = 1 << 20;

/// Encodes the pages of the `count` records starting at `offset` (all of
/// one page size) as one transaction of WAL frames continuing `chain`, each
/// page once in its newest image, back to back in `out`; returns bytes
/// written (`out` must be able to hold every frame of the records).
/// Older images are dropped as the reading goes (once what was read since
/// the last time doubles what was kept), so the part of `out` ever written
/// is about twice the batch's distinct pages, not every frame: a caller's
/// scratch that is not written is never paged in.
/// On Busy (the WAL is being rewritten) `chain` is left as it was, so the
/// caller can simply call again.
pub fn framesRun(reader: *spool.Reader, offset: u64, count: u64, chain: *walfmt.Chain, out: []u8) (Error || error{Busy})!usize {
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
        if (out.len - pos < size) return error.BufferTooSmall;
        if (page_size != 0 and h.page_size != page_size) {
            status.set("spool record {d} of the batch changes the page size; a batch holds one", .{i});
            return error.Misuse;
        }
        page_size = h.page_size;
        db_size = h.db_size;
        // As stored: keepNewest checksums only what it keeps.
        try reader.rawFrames(off, h, out[pos..][0..size]);
        pos += size;
        off += spool.record_size;
        if (pos - kept > @max(kept, compact_min)) {
            pos = try batch_pages.dropOlder(out[0..pos], page_size, 0);
            kept = pos;
        }
    }
    if (pos == 0) return 0;
    return batch_pages.keepNewest(out[0..pos], page_size, db_size, chain);
}

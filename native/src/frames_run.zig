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

/// Encodes the pages of the `count` records starting at `offset` (all of
/// one page size) as one transaction of WAL frames continuing `chain`, each
/// page once in its newest image, back to back in `out`; returns bytes
/// written (`out` must hold every frame of the records: they are read
/// before the older images are dropped).
/// On Busy (the WAL is being rewritten) `chain` is left as it was, so the
/// caller can simply call again.
pub fn framesRun(reader: *spool.Reader, offset: u64, count: u64, chain: *walfmt.Chain, out: []u8) (Error || error{Busy})!usize {
    // Read with a scratch chain: keepNewest re-encodes what it keeps.
    var scratch = chain.*;
    var off = offset;
    var page_size: u32 = 0;
    var db_size: u32 = 0;
    var pos: usize = 0;
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
        try reader.frames(off, h, 0, h.n_pages, &scratch, out[pos..][0..size]);
        pos += size;
        off += spool.record_size;
    }
    if (pos == 0) return 0;
    return batch_pages.keepNewest(out[0..pos], page_size, db_size, chain);
}

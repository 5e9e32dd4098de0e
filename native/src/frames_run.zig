//! The frames of a run of consecutive spool records in one call: shipping a
//! batch costs the replicator one crossing of the C ABI (and of Python's
//! GIL, which cffi releases for it) instead of one per transaction.
const std = @import("std");
const spool = @import("spool.zig");
const walfmt = @import("walfmt.zig");
const status = @import("status.zig");
const Error = status.Error;

/// Encodes all pages of the `count` records starting at `offset` as WAL
/// frames continuing `chain`, back to back in `out`; returns bytes written.
/// On Busy (the WAL is being rewritten) `chain` is left as it was, so the
/// caller can simply call again.
pub fn framesRun(reader: *spool.Reader, offset: u64, count: u64, chain: *walfmt.Chain, out: []u8) (Error || error{Busy})!usize {
    var work = chain.*;
    var off = offset;
    var pos: usize = 0;
    var i: u64 = 0;
    while (i < count) : (i += 1) {
        const h = (try reader.next(off)) orelse {
            status.set("spool record {d} of the batch at offset {d} is not there", .{ i, off });
            return error.Misuse;
        };
        const size: usize = @intCast(h.entrySize());
        if (out.len - pos < size) return error.BufferTooSmall;
        try reader.frames(off, h, 0, h.n_pages, &work, out[pos..][0..size]);
        pos += size;
        off += spool.record_size;
    }
    chain.* = work;
    return pos;
}

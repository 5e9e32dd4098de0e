//! The records the next batch is offered: one scan of the spool in the
//! core, so the replicator's Python side does a fixed amount of work per
//! batch, not per transaction. At ten thousand commits a second a record
//! object, a loop step and the garbage they make cost the in-process
//! replicator about 5 us each, all of it holding the application's GIL.
const std = @import("std");
const format = @import("spool_format.zig");
const Reader = @import("spool_reader.zig").Reader;
const fileio = @import("fileio.zig");
const status = @import("status.zig");
const Error = status.Error;
const Header = format.Header;
const record_size = format.record_size;

/// Why an offer ended: the values of bottomless.h's enum bottomless_offer_stop.
pub const Stop = enum(u32) {
    /// No further complete record (yet).
    end = 0,
    /// The next record would pass the offer's raw bytes or time span.
    full = 1,
    /// The next record has the gap flag: history cannot continue across it.
    gap = 2,
    /// The next record has another page size: only a new generation can.
    page_size = 3,
    /// The next record's seq does not follow: the spool is damaged.
    skip = 4,
};

pub const Limits = struct {
    /// Records at or below this seq are already in S3.
    after_seq: u64,
    page_size: u32,
    /// Bytes of the offered records' frames, at most (the first is always taken).
    max_raw_bytes: u64,
    /// Milliseconds between the first and the last offered commit, at most.
    max_span_ms: u64,
};

pub const Found = struct { offset: u64, header: Header };

pub const Offer = struct {
    /// The newest record at or below `after_seq` still unacknowledged.
    skipped: ?Found = null,
    first: ?Found = null,
    /// The record the offer stopped at (not offered), unless `stop` is end.
    next: ?Found = null,
    count: u64 = 0,
    raw_bytes: u64 = 0,
    max_pages: u32 = 0,
    stop: Stop = .end,
};

/// Scans from the first unacknowledged record.
pub fn offer(reader: *Reader, limits: Limits) Error!Offer {
    std.debug.assert(limits.max_raw_bytes > 0);
    var out = Offer{};
    const size = try fileio.size(reader.fd);
    var off = try reader.start();
    while (try format.readHeader(reader.fd, off, size)) |h| : (off += record_size) {
        const here = Found{ .offset = off, .header = h };
        if (h.seq <= limits.after_seq) {
            out.skipped = here;
            continue;
        }
        out.stop = stopAt(&out, limits, h) orelse {
            if (out.first == null) out.first = here;
            out.count += 1;
            out.raw_bytes += h.entrySize();
            out.max_pages = @max(out.max_pages, h.n_pages);
            continue;
        };
        out.next = here;
        return out;
    }
    // At the tail a bad record is an append in progress; before a good one
    // it is damage, which reading it says (Reader.next).
    _ = try reader.next(off);
    return out;
}

/// Why `h` cannot join the offer so far; null when it can.
fn stopAt(so_far: *const Offer, limits: Limits, h: Header) ?Stop {
    if (h.flags & Header.flag_gap_before != 0) return .gap;
    if (h.seq != limits.after_seq + so_far.count + 1) return .skip;
    if (h.page_size != limits.page_size) return .page_size;
    const first = so_far.first orelse return null;
    if (so_far.raw_bytes + h.entrySize() > limits.max_raw_bytes) return .full;
    if (h.unix_ms -| first.header.unix_ms > limits.max_span_ms) return .full;
    return null;
}

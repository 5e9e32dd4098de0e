//! Restore writes each page once, in its final place: batches are applied
//! newest first and a bitmap (one bit per page) remembers which pages
//! already hold their final image, so older frames of a page, and the
//! snapshot's copy of it, are skipped. Verification does not depend on the
//! order: a batch's frames after its first are checked against the chain
//! that its own first frame stores, and the caller ties each first frame
//! to the batch before (walfmt's chain, so the check is as strict as one
//! pass from the seed).
const std = @import("std");
const walfmt = @import("walfmt.zig");
const fileio = @import("fileio.zig");
const status = @import("status.zig");
const Error = status.Error;

pub const Checked = struct {
    /// Index of the last commit frame, null when the frames hold none.
    last_commit: ?usize,
    /// Database size (pages) after that commit.
    db_size: u32,
};

fn validPageSize(page_size: u32) bool {
    return page_size >= 512 and page_size <= 65536 and (page_size & (page_size - 1)) == 0;
}

fn frameCount(page_size: u32, len: usize) Error!usize {
    if (!validPageSize(page_size)) {
        status.set("invalid page size {d}", .{page_size});
        return error.Misuse;
    }
    const fsz: usize = walfmt.frame_header_size + page_size;
    if (len % fsz != 0) {
        status.set("batch length {d} is not a whole number of {d}-byte frames (truncated object?)", .{ len, fsz });
        return error.Corrupt;
    }
    return len / fsz;
}

/// Checks every frame's page number and (with `verify`) its chained
/// checksum, from `chain`; with `after_first`, frame 0's checksum is left
/// to the caller and the chain starts at the words frame 0 stores. `chain`
/// ends at the last frame. Nothing is written.
pub fn check(page_size: u32, frames: []const u8, verify: bool, big_endian: bool, after_first: bool, chain: *walfmt.Chain) Error!Checked {
    const n = try frameCount(page_size, frames.len);
    const fsz: usize = walfmt.frame_header_size + page_size;
    var out = Checked{ .last_commit = null, .db_size = 0 };
    for (0..n) |i| {
        const f = frames[i * fsz ..][0..fsz];
        const hdr = f[0..walfmt.frame_header_size];
        const fh = walfmt.FrameHeader.parse(hdr);
        if (fh.pgno == 0) {
            status.set("frame {d} has page number 0", .{i});
            return error.Corrupt;
        }
        if (i == 0 and after_first) {
            chain.cksum1 = fh.cksum1;
            chain.cksum2 = fh.cksum2;
        } else if (verify and !walfmt.verifyChecksum(hdr, f[walfmt.frame_header_size..], big_endian, chain)) {
            status.set("frame {d} (page {d}) fails its checksum ({s}-endian words)", .{ i, fh.pgno, if (big_endian) "big" else "little" });
            return error.Corrupt;
        }
        if (fh.db_size != 0) {
            out.last_commit = i;
            out.db_size = fh.db_size;
        }
    }
    return out;
}

fn isSet(bitmap: []u8, pgno: u32) bool {
    return bitmap[pgno >> 3] & (@as(u8, 1) << @intCast(pgno & 7)) != 0;
}

fn mark(bitmap: []u8, pgno: u32) void {
    bitmap[pgno >> 3] |= @as(u8, 1) << @intCast(pgno & 7);
}

pub fn bitmapFits(bitmap: []const u8, max_pgno: u32) bool {
    return bitmap.len >= (@as(usize, max_pgno) >> 3) + 1;
}

/// Writes, newest frame first, the page of every frame whose page is at
/// most `max_pgno` and not yet marked in `bitmap`, and marks it. Returns
/// the number of pages written.
pub fn writeNewest(fd: fileio.Fd, page_size: u32, frames: []const u8, bitmap: []u8, max_pgno: u32) Error!u64 {
    const n = try frameCount(page_size, frames.len);
    std.debug.assert(bitmapFits(bitmap, max_pgno));
    const fsz: usize = walfmt.frame_header_size + page_size;
    var written: u64 = 0;
    var i = n;
    while (i > 0) {
        i -= 1;
        const f = frames[i * fsz ..][0..fsz];
        const pgno = walfmt.FrameHeader.parse(f[0..walfmt.frame_header_size]).pgno;
        if (pgno == 0 or pgno > max_pgno or isSet(bitmap, pgno)) continue;
        try fileio.pwriteAll(fd, f[walfmt.frame_header_size..], @as(u64, pgno - 1) * page_size);
        mark(bitmap, pgno);
        written += 1;
    }
    return written;
}

/// Writes the pages `first_pgno`, `first_pgno`+1, ... held in `data` (a
/// stretch of the snapshot) that are at most `max_pgno` and not marked,
/// one pwrite per run of such pages, and marks them.
pub fn writeImage(fd: fileio.Fd, page_size: u32, first_pgno: u32, data: []const u8, bitmap: []u8, max_pgno: u32) Error!u64 {
    if (!validPageSize(page_size) or data.len % page_size != 0 or first_pgno == 0) {
        status.set("snapshot stretch of {d} bytes from page {d} is not whole {d}-byte pages", .{ data.len, first_pgno, page_size });
        return error.Misuse;
    }
    std.debug.assert(bitmapFits(bitmap, max_pgno));
    const count = data.len / page_size;
    var written: u64 = 0;
    var i: usize = 0;
    while (i < count) {
        const pgno: u64 = first_pgno + i;
        if (pgno > max_pgno) break;
        if (isSet(bitmap, @intCast(pgno))) {
            i += 1;
            continue;
        }
        var j = i;
        while (j < count and first_pgno + j <= max_pgno and !isSet(bitmap, @intCast(first_pgno + j))) : (j += 1) {
            mark(bitmap, @intCast(first_pgno + j));
        }
        try fileio.pwriteAll(fd, data[i * page_size .. j * page_size], (pgno - 1) * page_size);
        written += j - i;
        i = j;
    }
    return written;
}

test "newest frame of a page wins and later writes skip it" {
    const ps: u32 = 512;
    var frames: [2 * (24 + 512)]u8 = undefined;
    var chain = walfmt.Chain{ .salt1 = 1, .salt2 = 2, .cksum1 = 1, .cksum2 = 2 };
    var page: [512]u8 = @splat(1);
    walfmt.encodeFrame(frames[0..24], 3, 0, &page, &chain);
    @memcpy(frames[24..536], &page);
    page = @splat(2);
    walfmt.encodeFrame(frames[536..560], 3, 3, &page, &chain);
    @memcpy(frames[560..], &page);
    var start = walfmt.Chain{ .salt1 = 1, .salt2 = 2, .cksum1 = 1, .cksum2 = 2 };
    const c = try check(ps, &frames, true, false, false, &start);
    try std.testing.expectEqual(@as(?usize, 1), c.last_commit);
    try std.testing.expectEqual(chain, start);
    var after = walfmt.Chain{ .salt1 = 0, .salt2 = 0, .cksum1 = 0, .cksum2 = 0 };
    _ = try check(ps, &frames, true, false, true, &after);
    try std.testing.expectEqual(chain.cksum1, after.cksum1);
    frames[600] ^= 1;
    var again = walfmt.Chain{ .salt1 = 1, .salt2 = 2, .cksum1 = 1, .cksum2 = 2 };
    try std.testing.expectError(error.Corrupt, check(ps, &frames, true, false, false, &again));
}

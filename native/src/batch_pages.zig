//! A batch holding each page once: within one batch only its last commit is
//! ever restored (a restore applies whole objects, and libSQL's applies up
//! to the last commit frame), so older images of a page the batch rewrites
//! are dead weight. Hot pages of small transactions are rewritten hundreds of
//! times a second; keeping only their newest image shrinks what the
//! replicator checksums, compresses and uploads by that factor.
const std = @import("std");
const walfmt = @import("walfmt.zig");
const Error = @import("status.zig").Error;

/// Compacts `frames` (whole frames of `page_size`, oldest first, as one
/// batch) in place to the newest image of each page, dropping pages past
/// `db_size` (the batch's last commit truncated them), in the order of their
/// newest image, and re-encodes them as one transaction continuing `chain`.
/// Returns the bytes kept. The batch's last frame is always kept (it is the
/// newest image of its page), so the last commit frame stays last.
pub fn keepNewest(frames: []u8, page_size: u32, db_size: u32, chain: *walfmt.Chain) Error!usize {
    const fsz: usize = walfmt.frame_header_size + page_size;
    const n = (try dropOlder(frames, page_size, db_size)) / fsz;
    std.debug.assert(n > 0 or frames.len == 0);
    var work = chain.*;
    for (0..n) |i| {
        const f = frames[i * fsz ..][0..fsz];
        const commit = if (i == n - 1) db_size else 0;
        walfmt.encodeFrame(f[0..walfmt.frame_header_size], pgnoAt(frames, fsz, i), commit, f[walfmt.frame_header_size..], &work);
    }
    chain.* = work;
    return n * fsz;
}

/// Compacts `frames` in place to the newest image of each page (and, with
/// `db_size` > 0, none past it), in the order of their newest image; frames
/// are moved as they are, not re-encoded. Returns the bytes kept. Doing it
/// to a prefix first and again to the whole gives what one pass over the
/// whole gives: what a prefix keeps is in the same order, newest first
/// among its own, and the pass over the whole decides the rest.
pub fn dropOlder(frames: []u8, page_size: u32, db_size: u32) Error!usize {
    const fsz: usize = walfmt.frame_header_size + page_size;
    std.debug.assert(page_size > 0 and frames.len % fsz == 0);
    const n = frames.len / fsz;
    if (n == 0) return 0;
    const n32 = std.math.cast(u32, n) orelse return error.Unsupported;
    var newest: std.AutoHashMapUnmanaged(u32, u32) = .empty;
    defer newest.deinit(std.heap.c_allocator);
    try newest.ensureTotalCapacity(std.heap.c_allocator, n32);
    for (0..n) |i| newest.putAssumeCapacity(pgnoAt(frames, fsz, i), @intCast(i));
    var kept: usize = 0;
    for (0..n) |i| {
        const pgno = pgnoAt(frames, fsz, i);
        if (newest.get(pgno).? != i or (db_size > 0 and pgno > db_size)) continue;
        if (kept != i) std.mem.copyForwards(u8, frames[kept * fsz ..][0..fsz], frames[i * fsz ..][0..fsz]);
        kept += 1;
    }
    std.debug.assert(kept <= n);
    return kept * fsz;
}

fn pgnoAt(frames: []const u8, fsz: usize, i: usize) u32 {
    return std.mem.readInt(u32, frames[i * fsz ..][0..4], .big);
}

test "keeps the newest image of each page, drops truncated pages, one commit frame last" {
    const ps = 512;
    const fsz = walfmt.frame_header_size + ps;
    var buf: [5 * fsz]u8 = undefined;
    // pages 1, 2, 1, 3, 2 with contents 10..14; the last commit says 2 pages
    const pgnos = [_]u32{ 1, 2, 1, 3, 2 };
    var scratch = walfmt.Chain{ .salt1 = 1, .salt2 = 2, .cksum1 = 0, .cksum2 = 0 };
    for (pgnos, 0..) |p, i| {
        const f = buf[i * fsz ..][0..fsz];
        @memset(f[walfmt.frame_header_size..], @intCast(10 + i));
        walfmt.encodeFrame(f[0..walfmt.frame_header_size], p, if (i == 1) 3 else 0, f[walfmt.frame_header_size..], &scratch);
    }
    var chain = walfmt.Chain{ .salt1 = 1, .salt2 = 2, .cksum1 = 7, .cksum2 = 8 };
    const kept = try keepNewest(&buf, ps, 2, &chain);
    try std.testing.expectEqual(@as(usize, 2 * fsz), kept);
    var check = walfmt.Chain{ .salt1 = 1, .salt2 = 2, .cksum1 = 7, .cksum2 = 8 };
    const want = [_][3]u32{ .{ 1, 12, 0 }, .{ 2, 14, 2 } }; // pgno, content, commit
    for (want, 0..) |wnt, i| {
        const f = buf[i * fsz ..][0..fsz];
        const h = walfmt.FrameHeader.parse(f[0..walfmt.frame_header_size]);
        try std.testing.expectEqual(wnt[0], h.pgno);
        try std.testing.expectEqual(@as(u8, @intCast(wnt[1])), f[walfmt.frame_header_size + 100]);
        try std.testing.expectEqual(wnt[2], std.mem.readInt(u32, f[4..8], .big));
        try std.testing.expect(walfmt.verifyFrame(f[0..walfmt.frame_header_size], f[walfmt.frame_header_size..], walfmt.ship_big_endian, &check));
    }
    try std.testing.expectEqual(chain, check);
}

test "dropping older images of a prefix first changes nothing" {
    const ps = 512;
    const fsz = walfmt.frame_header_size + ps;
    const pgnos = [_]u32{ 3, 1, 2, 1, 3, 4, 2, 1, 5, 3 };
    var whole: [pgnos.len * fsz]u8 = undefined;
    var scratch = walfmt.Chain{ .salt1 = 1, .salt2 = 2, .cksum1 = 0, .cksum2 = 0 };
    for (pgnos, 0..) |p, i| {
        const f = whole[i * fsz ..][0..fsz];
        @memset(f[walfmt.frame_header_size..], @intCast(10 + i));
        walfmt.encodeFrame(f[0..walfmt.frame_header_size], p, 0, f[walfmt.frame_header_size..], &scratch);
    }
    var staged = whole;
    for ([_]usize{ 4, 7 }) |cut| {
        // What framesRun does: compact what it has, append the rest.
        var twice = whole;
        const head = try dropOlder(twice[0 .. cut * fsz], ps, 0);
        std.mem.copyForwards(u8, twice[head..], whole[cut * fsz ..]);
        const len = head + (pgnos.len - cut) * fsz;
        var c1 = walfmt.Chain{ .salt1 = 1, .salt2 = 2, .cksum1 = 7, .cksum2 = 8 };
        var c2 = c1;
        const a = try keepNewest(twice[0..len], ps, 4, &c1);
        const b = try keepNewest(staged[0..], ps, 4, &c2);
        try std.testing.expectEqual(b, a);
        try std.testing.expectEqualSlices(u8, staged[0..b], twice[0..a]);
        try std.testing.expectEqual(c2, c1);
        staged = whole;
    }
}

//! Restore side: write verified WAL frames into a database file that SQLite
//! does not have open, then set its final size.
const std = @import("std");
const walfmt = @import("walfmt.zig");
const fileio = @import("fileio.zig");
const status = @import("status.zig");
const Error = status.Error;

pub const Applied = struct { db_size: u32, frames: u64 };

/// Verifies every frame first (so a bad batch writes nothing), then writes
/// the pages. Frames after the last commit frame make the batch corrupt: a
/// batch never ends inside a transaction.
pub fn applyFrames(path: [*:0]const u8, page_size: u32, frames: []const u8, verify: bool, chain: *walfmt.Chain) Error!Applied {
    if (page_size < 512 or page_size > 65536 or (page_size & (page_size - 1)) != 0) {
        status.set("invalid page size {d}", .{page_size});
        return error.Misuse;
    }
    const fsz: usize = walfmt.frame_header_size + page_size;
    if (frames.len % fsz != 0) {
        status.set("batch length {d} is not a whole number of {d}-byte frames (truncated object?)", .{ frames.len, fsz });
        return error.Corrupt;
    }
    const n = frames.len / fsz;
    var work = chain.*;
    var last_commit: ?usize = null;
    var db_size: u32 = 0;
    for (0..n) |i| {
        const f = frames[i * fsz ..][0..fsz];
        const hdr = f[0..walfmt.frame_header_size];
        const fh = walfmt.FrameHeader.parse(hdr);
        if (fh.pgno == 0) {
            status.set("frame {d} has page number 0", .{i});
            return error.Corrupt;
        }
        if (verify and !walfmt.verifyFrame(hdr, f[walfmt.frame_header_size..], true, &work)) {
            status.set("frame {d} (page {d}) fails its salt or checksum check", .{ i, fh.pgno });
            return error.Corrupt;
        }
        if (fh.db_size != 0) {
            last_commit = i;
            db_size = fh.db_size;
        }
    }
    if (n > 0 and (last_commit == null or last_commit.? != n - 1)) {
        status.set("batch ends with {d} frame(s) after its last commit", .{n - 1 - (last_commit orelse 0)});
        return error.Corrupt;
    }
    const fd = try fileio.open(path, true, true);
    defer fileio.close(fd);
    for (0..n) |i| {
        const f = frames[i * fsz ..][0..fsz];
        const fh = walfmt.FrameHeader.parse(f[0..walfmt.frame_header_size]);
        try fileio.pwriteAll(fd, f[walfmt.frame_header_size..], @as(u64, fh.pgno - 1) * page_size);
    }
    chain.* = work;
    return .{ .db_size = db_size, .frames = n };
}

pub fn finish(path: [*:0]const u8, page_size: u32, db_size: u32) Error!void {
    const fd = try fileio.open(path, true, true);
    defer fileio.close(fd);
    try fileio.truncate(fd, @as(u64, db_size) * page_size);
    try fileio.sync(fd);
}

//! Restore side: write verified WAL frames into a database file that SQLite
//! does not have open, then set its final size.
const std = @import("std");
const walfmt = @import("walfmt.zig");
const fileio = @import("fileio.zig");
const status = @import("status.zig");
const Error = status.Error;

pub const Applied = struct { db_size: u32, frames: u64 };

/// Verifies every frame first (so a bad batch writes nothing), then writes
/// the pages of the frames up to the last commit frame. Frames after it
/// belong to a transaction that continues in the next batch (libSQL's
/// writer cuts batches anywhere): they are checked but not written, and
/// `chain` is left at the last commit, so the caller hands them in again
/// in front of the next batch. `frames` of the result counts the frames
/// written.
pub fn applyFrames(path: [*:0]const u8, page_size: u32, frames: []const u8, verify: bool, big_endian: bool, chain: *walfmt.Chain) Error!Applied {
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
    var at_commit = chain.*;
    var committed: usize = 0;
    var db_size: u32 = 0;
    for (0..n) |i| {
        const f = frames[i * fsz ..][0..fsz];
        const hdr = f[0..walfmt.frame_header_size];
        const fh = walfmt.FrameHeader.parse(hdr);
        if (fh.pgno == 0) {
            status.set("frame {d} has page number 0", .{i});
            return error.Corrupt;
        }
        if (verify and !walfmt.verifyChecksum(hdr, f[walfmt.frame_header_size..], big_endian, &work)) {
            status.set("frame {d} (page {d}) fails its checksum ({s}-endian words)", .{ i, fh.pgno, if (big_endian) "big" else "little" });
            return error.Corrupt;
        }
        if (fh.db_size != 0) {
            committed = i + 1;
            db_size = fh.db_size;
            at_commit = work;
        }
    }
    if (committed == 0) return .{ .db_size = 0, .frames = 0 };
    const fd = try fileio.open(path, true, true);
    defer fileio.close(fd);
    for (0..committed) |i| {
        const f = frames[i * fsz ..][0..fsz];
        const fh = walfmt.FrameHeader.parse(f[0..walfmt.frame_header_size]);
        try fileio.pwriteAll(fd, f[walfmt.frame_header_size..], @as(u64, fh.pgno - 1) * page_size);
    }
    chain.* = at_commit;
    return .{ .db_size = db_size, .frames = committed };
}

pub fn finish(path: [*:0]const u8, page_size: u32, db_size: u32) Error!void {
    const fd = try fileio.open(path, true, true);
    defer fileio.close(fd);
    try fileio.truncate(fd, @as(u64, db_size) * page_size);
    try fileio.sync(fd);
}

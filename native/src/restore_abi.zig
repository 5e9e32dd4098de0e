//! C ABI of the restore pipeline (newest.zig): check a batch's frames,
//! write the newest image of each page once. Every function validates its
//! arguments and turns Zig errors into status codes.
const std = @import("std");
const walfmt = @import("walfmt.zig");
const newest = @import("newest.zig");
const status = @import("status.zig");

const abi = @import("abi.zig");

const check_verify = abi.apply_verify;
const check_big_endian = abi.apply_big_endian;
const check_after_first: c_int = abi.header.BOTTOMLESS_CHECK_AFTER_FIRST;

fn misuse(msg: []const u8) c_int {
    status.set("{s}", .{msg});
    return status.MISUSE;
}

fn bytes(p: ?[*]const u8, len: usize) ?[]const u8 {
    if (len == 0) return &.{};
    return (p orelse return null)[0..len];
}

pub export fn bottomless_check_frames(page_size: u32, frames: ?[*]const u8, len: usize, flags: c_int, chain: ?*walfmt.Chain, last_commit: ?*i64, db_size: ?*u32) c_int {
    status.clear();
    const ch = chain orelse return misuse("chain is NULL");
    const data = bytes(frames, len) orelse return misuse("frames is NULL");
    if (flags & ~(check_verify | check_big_endian | check_after_first) != 0) return misuse("unknown check flags");
    const c = newest.check(page_size, data, flags & check_verify != 0, flags & check_big_endian != 0, flags & check_after_first != 0, ch) catch |e| return status.code(e);
    if (last_commit) |l| l.* = if (c.last_commit) |i| @intCast(i) else -1;
    if (db_size) |d| d.* = c.db_size;
    return status.OK;
}

pub export fn bottomless_write_newest(fd: c_int, page_size: u32, frames: ?[*]const u8, len: usize, bitmap: ?[*]u8, bitmap_len: usize, max_pgno: u32, written: ?*u64) c_int {
    status.clear();
    if (fd < 0) return misuse("fd is negative");
    const data = bytes(frames, len) orelse return misuse("frames is NULL");
    const bm = (bitmap orelse return misuse("bitmap is NULL"))[0..bitmap_len];
    if (!newest.bitmapFits(bm, max_pgno)) return misuse("bitmap is smaller than max_pgno");
    const n = newest.writeNewest(fd, page_size, data, bm, max_pgno) catch |e| return status.code(e);
    if (written) |w| w.* = n;
    return status.OK;
}

pub export fn bottomless_write_image(fd: c_int, page_size: u32, first_pgno: u32, data: ?[*]const u8, len: usize, bitmap: ?[*]u8, bitmap_len: usize, max_pgno: u32, written: ?*u64) c_int {
    status.clear();
    if (fd < 0) return misuse("fd is negative");
    const d = bytes(data, len) orelse return misuse("data is NULL");
    const bm = (bitmap orelse return misuse("bitmap is NULL"))[0..bitmap_len];
    if (!newest.bitmapFits(bm, max_pgno)) return misuse("bitmap is smaller than max_pgno");
    const n = newest.writeImage(fd, page_size, first_pgno, d, bm, max_pgno) catch |e| return status.code(e);
    if (written) |w| w.* = n;
    return status.OK;
}

test {
    _ = newest;
}

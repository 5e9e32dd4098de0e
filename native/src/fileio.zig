//! Thin, explicit wrappers over the C library's file calls. The spool and
//! restore code use plain descriptors (never SQLite's), and only on files
//! SQLite does not lock (the spool, the -wal file, a restore target), so
//! closing them cannot drop SQLite's POSIX locks.
const std = @import("std");
const builtin = @import("builtin");
const c = std.c;
const status = @import("status.zig");
const Error = status.Error;

pub const Fd = c_int;

fn errnoValue() c_int {
    return c._errno().*;
}

pub fn open(path: [*:0]const u8, write: bool, create: bool) Error!Fd {
    var flags: c.O = .{ .ACCMODE = if (write) .RDWR else .RDONLY, .CLOEXEC = true };
    flags.CREAT = create;
    const fd = c.open(path, flags, @as(c.mode_t, 0o644));
    if (fd < 0) {
        status.set("cannot open {s}: errno {d}", .{ std.mem.span(path), errnoValue() });
        return error.Io;
    }
    return fd;
}

/// Like open() but reports a missing file as null instead of an error.
pub fn openIfExists(path: [*:0]const u8, write: bool) Error!?Fd {
    const flags: c.O = .{ .ACCMODE = if (write) .RDWR else .RDONLY, .CLOEXEC = true };
    const fd = c.open(path, flags, @as(c.mode_t, 0o644));
    if (fd < 0) {
        if (errnoValue() == @intFromEnum(c.E.NOENT)) return null;
        status.set("cannot open {s}: errno {d}", .{ std.mem.span(path), errnoValue() });
        return error.Io;
    }
    return fd;
}

pub fn close(fd: Fd) void {
    _ = c.close(fd);
}

/// Reads up to buf.len bytes; returns how many (short only at end of file).
pub fn preadAll(fd: Fd, buf: []u8, offset: u64) Error!usize {
    var done: usize = 0;
    while (done < buf.len) {
        const n = c.pread(fd, buf.ptr + done, buf.len - done, @intCast(offset + done));
        if (n < 0) {
            if (errnoValue() == @intFromEnum(c.E.INTR)) continue;
            status.set("read failed at offset {d}: errno {d}", .{ offset + done, errnoValue() });
            return error.Io;
        }
        if (n == 0) break;
        done += @intCast(n);
    }
    return done;
}

pub fn pwriteAll(fd: Fd, buf: []const u8, offset: u64) Error!void {
    var done: usize = 0;
    while (done < buf.len) {
        const n = c.pwrite(fd, buf.ptr + done, buf.len - done, @intCast(offset + done));
        if (n < 0) {
            if (errnoValue() == @intFromEnum(c.E.INTR)) continue;
            const e = errnoValue();
            if (e == @intFromEnum(c.E.NOSPC)) {
                status.set("disk full while writing at offset {d}: free space and retry", .{offset + done});
            } else {
                status.set("write failed at offset {d}: errno {d}", .{ offset + done, e });
            }
            return error.Io;
        }
        done += @intCast(n);
    }
}

pub fn size(fd: Fd) Error!u64 {
    const end = c.lseek(fd, 0, c.SEEK.END);
    if (end < 0) {
        status.set("cannot size file: errno {d}", .{errnoValue()});
        return error.Io;
    }
    return @intCast(end);
}

/// Size of the file at path, without opening it (opening and closing the
/// database file would drop SQLite's POSIX locks on it); null if unknown.
pub fn sizeOfPath(path: [*:0]const u8) ?u64 {
    if (builtin.os.tag != .linux) return null;
    const linux = std.os.linux;
    var st: linux.Statx = undefined;
    if (linux.statx(linux.AT.FDCWD, path, 0, .{ .SIZE = true }, &st) != 0) return null;
    return st.size;
}

/// Bytes the file occupies on disk (holes excluded).
pub fn diskBytes(fd: Fd) u64 {
    if (builtin.os.tag == .linux) {
        const linux = std.os.linux;
        var st: linux.Statx = undefined;
        if (linux.statx(fd, "", 0x1000, .{ .BLOCKS = true }, &st) != 0) return 0;
        return st.blocks * 512;
    }
    var st: c.Stat = undefined;
    if (c.fstat(fd, &st) != 0) return 0;
    return @as(u64, @intCast(st.blocks)) * 512;
}

pub fn truncate(fd: Fd, len: u64) Error!void {
    if (c.ftruncate(fd, @intCast(len)) != 0) {
        status.set("cannot truncate to {d} bytes: errno {d}", .{ len, errnoValue() });
        return error.Io;
    }
}

pub fn sync(fd: Fd) Error!void {
    const rc = if (builtin.os.tag == .linux) c.fdatasync(fd) else c.fsync(fd);
    if (rc != 0) {
        status.set("fsync failed: errno {d}", .{errnoValue()});
        return error.Io;
    }
}

/// Frees the disk blocks of [0, len) without changing the file's size, so an
/// append-only log keeps its offsets while its acknowledged prefix costs no
/// space. A no-op where the system cannot punch holes.
pub fn punchPrefix(fd: Fd, len: u64) void {
    if (builtin.os.tag != .linux or len == 0) return;
    const FALLOC_FL_KEEP_SIZE = 0x01;
    const FALLOC_FL_PUNCH_HOLE = 0x02;
    _ = c.fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0, @intCast(len));
}

pub const Allocation = enum { ok, failed, unsupported };

/// Allocates disk blocks for [offset, offset+len), extending the file with
/// zeros if it is shorter (Linux fallocate, mode 0).
pub fn allocate(fd: Fd, offset: u64, len: u64) Allocation {
    if (builtin.os.tag != .linux) return .unsupported;
    if (c.fallocate(fd, 0, @intCast(offset), @intCast(len)) == 0) return .ok;
    const e = errnoValue();
    return if (e == @intFromEnum(c.E.OPNOTSUPP)) .unsupported else .failed;
}

pub const Mapping = []align(std.heap.page_size_min) u8;

/// Maps [offset, offset+len) of a file shared and writable. offset must be
/// a multiple of the page size. Touching a mapped byte past the end of the
/// file raises SIGBUS: callers map only what the file holds and what no one
/// may shrink meanwhile.
pub fn map(fd: Fd, offset: u64, len: usize) Error!Mapping {
    std.debug.assert(offset % std.heap.pageSize() == 0 and len > 0);
    const rc = c.mmap(null, len, .{ .READ = true, .WRITE = true }, .{ .TYPE = .SHARED }, fd, @intCast(offset));
    if (rc == c.MAP_FAILED) {
        status.set("cannot map {d} bytes at offset {d}: errno {d}", .{ len, offset, errnoValue() });
        return error.Io;
    }
    const p: [*]align(std.heap.page_size_min) u8 = @ptrCast(@alignCast(rc));
    return p[0..len];
}

pub fn unmap(m: Mapping) void {
    _ = c.munmap(@ptrCast(m.ptr), m.len);
}

/// Copies [src_off, src_off+len) of src to dst at dst_off. In the kernel
/// (copy_file_range: no trip through user memory, which measured three times
/// faster here) where the system can, else through buf.
pub fn copyRange(src: Fd, src_off: u64, dst: Fd, dst_off: u64, len: u64, buf: []u8) Error!void {
    var in: i64 = @intCast(src_off);
    var out: i64 = @intCast(dst_off);
    var left = len;
    if (builtin.os.tag == .linux) {
        while (left > 0) {
            const n = c.copy_file_range(src, &in, dst, &out, @intCast(@min(left, 1 << 30)), 0);
            if (n > 0) {
                left -= @intCast(n);
                continue;
            }
            if (n == 0) {
                status.set("copy stopped short at offset {d}: the source ended", .{in});
                return error.Io;
            }
            const e = errnoValue();
            if (e == @intFromEnum(c.E.INTR)) continue;
            if (e == @intFromEnum(c.E.XDEV) or e == @intFromEnum(c.E.NOSYS) or e == @intFromEnum(c.E.OPNOTSUPP) or e == @intFromEnum(c.E.INVAL)) break;
            if (e == @intFromEnum(c.E.NOSPC)) {
                status.set("disk full while writing at offset {d}: free space and retry", .{out});
            } else {
                status.set("copy failed at offset {d}: errno {d}", .{ out, e });
            }
            return error.Io;
        }
    }
    while (left > 0) {
        const want: usize = @intCast(@min(left, buf.len));
        if (try preadAll(src, buf[0..want], @intCast(in)) != want) {
            status.set("copy stopped short at offset {d}: the source ended", .{in});
            return error.Io;
        }
        try pwriteAll(dst, buf[0..want], @intCast(out));
        in += @intCast(want);
        out += @intCast(want);
        left -= want;
    }
}

/// Takes an exclusive flock on an open lock file, waiting for it, and
/// returns the descriptor (closed on failure). flock belongs to the open
/// file, so two threads of one process exclude each other too, and SQLite's
/// POSIX locks are untouched. Closing the descriptor releases it.
pub fn lockExclusive(fd: Fd) Error!Fd {
    while (c.flock(fd, std.posix.LOCK.EX) != 0) {
        if (errnoValue() == @intFromEnum(c.E.INTR)) continue;
        status.set("cannot lock a file of the side folder: errno {d}", .{errnoValue()});
        close(fd);
        return error.Io;
    }
    return fd;
}

//! `bell` in the side folder: how a replicator that sleeps on filesystem
//! notifications (the multi-database process) hears of a commit.
//!
//! Capture writes a commit's record through a shared mapping
//! (spool_tail.zig), and the kernel reports no write through a mapping, so
//! without this a sleeping replicator would hear only of a new connection's
//! first commit. The WAL write is no signal either: it comes before the
//! record (capture appends after SQLite's write of the commit frame).
//!
//! The file is one page; its first word is "a replicator sleeps". The
//! replicator arms it (stores 1) and then looks at the spool once more;
//! capture swaps it to 0 after every record it appends and, when it was 1,
//! writes a byte past the word, which is the notification. Both sides use
//! sequentially consistent operations on the word, so either the replicator's
//! last look sees the record or capture sees the armed word: no commit is
//! missed. An unarmed bell costs capture one atomic exchange on a mapped
//! page, no system call.
//!
//! Layout: 0 u32 armed (1) or not (0); 64 u8 written to ring. Anything the
//! file system cannot do (allocate, map) leaves the bell silent: replication
//! is unaffected, a sleeping replicator then relies on its periodic recheck.
const std = @import("std");
const builtin = @import("builtin");
const fileio = @import("fileio.zig");
const sidefolder = @import("sidefolder.zig");
const status = @import("status.zig");
const Error = status.Error;
const Paths = sidefolder.Paths;

const size: usize = 4096;
const ring_offset: u64 = 64;

fn word(m: fileio.Mapping) *u32 {
    return @ptrCast(m.ptr);
}

/// Opens the bell (creating it with the database's permissions), allocated
/// on disk before it is mapped, so a store to it never meets a hole on a
/// full disk (SIGBUS).
fn openMapped(paths: *const Paths) Error!struct { fd: fileio.Fd, map: fileio.Mapping } {
    const fd = try paths.create(&paths.bell);
    errdefer fileio.close(fd);
    // Only when short: an allocation is itself reported as a write, and a
    // replicator arming its bell must not wake itself. A full-size bell was
    // allocated by whoever made it so (only this function does).
    if (try fileio.size(fd) < size) switch (fileio.allocate(fd, 0, size)) {
        .ok => {},
        .failed, .unsupported => {
            status.set("cannot allocate {s}", .{Paths.z(&paths.bell)});
            return error.Io;
        },
    };
    return .{ .fd = fd, .map = try fileio.map(fd, 0, size) };
}

/// Capture's side: one per spool writer.
pub const Bell = struct {
    fd: fileio.Fd = -1,
    map: ?fileio.Mapping = null,
    /// Opening failed once: stay silent rather than retry at every commit.
    silent: bool = false,

    pub fn deinit(self: *Bell) void {
        if (self.map) |m| fileio.unmap(m);
        if (self.fd >= 0) fileio.close(self.fd);
        self.* = .{};
    }

    /// After a record is in the spool: wake a replicator that armed the bell.
    /// Never fails the commit it follows.
    pub fn ring(self: *Bell, paths: *const Paths) void {
        if (self.map == null) {
            if (self.silent) return;
            const opened = openMapped(paths) catch {
                self.silent = true;
                return;
            };
            self.fd = opened.fd;
            self.map = opened.map;
        }
        if (@atomicRmw(u32, word(self.map.?), .Xchg, 0, .seq_cst) == 0) return;
        fileio.pwriteAll(self.fd, &[_]u8{1}, ring_offset) catch {};
    }
};

/// The replicator's side: the next record appended rings the bell. The
/// caller looks at the spool after this returns, before it sleeps.
pub fn arm(paths: *const Paths) Error!void {
    const opened = try openMapped(paths);
    defer fileio.close(opened.fd);
    defer fileio.unmap(opened.map);
    @atomicStore(u32, word(opened.map), 1, .seq_cst);
}

/// Whether the bell is armed (for tests).
pub fn armed(paths: *const Paths) Error!bool {
    const fd = (try fileio.openIfExists(Paths.z(&paths.bell), false)) orelse return false;
    defer fileio.close(fd);
    var b: [4]u8 = undefined;
    const n = try fileio.preadAll(fd, &b, 0);
    return n == 4 and std.mem.readInt(u32, &b, builtin.cpu.arch.endian()) != 0;
}

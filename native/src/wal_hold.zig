//! Holding the WAL for the replicator. While more than a quarter of the WAL
//! is commits no replicator has acknowledged, the VFS refuses SQLite the
//! checkpoint lock and the lock a writer takes to restart the WAL, as a
//! reader still using those frames would. SQLite then appends to the WAL
//! instead of reusing it, and the replicator ships the frames from the WAL
//! itself. Without the hold, every WAL cycle a fast writer finished before
//! the next batch had its unshipped frames copied into the side folder and
//! the spool synced (materialize.zig), and SQLite checkpointed every 1,000
//! frames; with it, a checkpoint writes each page once for the whole
//! stretch, and the restart after it copies only the short unshipped tail.
//!
//! No application statement fails or waits for it: SQLite asks for both
//! locks without a busy handler and treats a refusal as "not now". The
//! automatic checkpoint ignores it; an explicit PASSIVE, FULL, RESTART or
//! TRUNCATE checkpoint reports busy, as it does while another connection
//! checkpoints. Litestream's long read transaction has the same effect.
//!
//! The hold is bounded: it ends when the WAL reaches `variable`'s size (64
//! MiB by default), and SQLite checkpoints and restarts as it would without
//! it (capture copies what is still unshipped). It never starts before some
//! replicator has read the spool (no `ack` file: its first snapshot covers
//! everything), nor for a connection that is closing (SQLite's exclusive
//! lock on the database file before its last checkpoint), nor for the
//! one-off capture before a delete, nor for libSQL's WAL methods (their
//! locks are not the VFS's).
const std = @import("std");
const builtin = @import("builtin");
const fileio = @import("fileio.zig");
const walfmt = @import("walfmt.zig");
const spool_ack = @import("spool_ack.zig");
const sidefolder = @import("sidefolder.zig");
const format = @import("spool_format.zig");
const Last = format.Last;
const env_bytes = @import("env_bytes.zig");

/// The most WAL a hold lets SQLite accumulate, by default: 16,384 frames
/// of 4 KiB pages (Litestream forces a checkpoint at 10,000 pages by
/// default). The variable sets another size; 0 turns holding off.
pub const variable = "LIBSQL_BOTTOMLESS_WAL_HOLD_BYTES";
pub const default_max_bytes: u64 = 64 << 20;

var setting = env_bytes.Setting{ .variable = variable, .default_text = "64 MiB" };

/// The WAL is reused (checkpointed, then restarted) once at most this part
/// of it is unshipped (1/4): the replicator's batches never catch up with a
/// writer that keeps writing, so the copy of a short tail is the price of
/// reusing the WAL. Until then SQLite's checkpoints wait too: a checkpoint
/// that writes every page once for many WAL frames, with its two syncs, is
/// what the application gains from the hold (Litestream's read transaction
/// has the same effect), and a checkpoint not followed by a restart would
/// be repeated after every commit.
const tail_shift = 2;

/// What the WAL looks like at the moment SQLite asks for the lock.
pub const Wal = struct {
    page_size: u32,
    salt1: u32,
    salt2: u32,
    /// The wal-index's last valid frame (mxFrame).
    mx_frame: u32,
};

pub const Hold = struct {
    /// The ack file, kept open: the replicator rewrites it in place, and the
    /// question is asked at every commit while a hold lasts.
    ack_fd: fileio.Fd = -1,
    /// The variable, read once per WAL handle (not at every commit).
    max_bytes: ?u64 = null,
    /// The newest acknowledged record as last read: its seq, and its
    /// commit frame when it is of the WAL cycle `acked_salts` names.
    acked_seq: u64 = 0,
    acked_frame: u32 = 0,
    acked_salts: [2]u32 = .{ 0, 0 },
    /// The acknowledgement as last read, and when (monotonic ns): SQLite
    /// asks at every commit while a hold lasts, a read of the file costs a
    /// system call, and an answer a millisecond old only holds a little
    /// longer.
    ack: spool_ack.Ack = .{},
    ack_read_ns: ?u64 = null,

    pub fn deinit(self: *Hold) void {
        if (self.ack_fd >= 0) fileio.close(self.ack_fd);
        self.ack_fd = -1;
    }

    /// Whether SQLite must not checkpoint or restart the WAL now: while more
    /// than a quarter of it is unshipped, up to its size. Anything it cannot
    /// tell means no hold (the copy is the safe path).
    pub fn wanted(self: *Hold, paths: *const sidefolder.Paths, spool_fd: fileio.Fd, last: ?Last, wal: Wal) bool {
        const newest = last orelse return false;
        if (wal.page_size == 0) return false;
        if (newest.wal_salt1 != wal.salt1 or newest.wal_salt2 != wal.salt2) return false;
        if (!self.covers(wal.page_size, wal.mx_frame)) return false;
        const ack = self.recentAck(paths) orelse return false;
        if (ack.acked_seq >= newest.seq) return false;
        return self.unshipped(spool_fd, ack, wal) > wal.mx_frame >> tail_shift;
    }

    /// Frames of the WAL after the newest acknowledged commit.
    fn unshipped(self: *Hold, spool_fd: fileio.Fd, ack: spool_ack.Ack, wal: Wal) u32 {
        if (ack.acked_seq != self.acked_seq) {
            self.acked_seq = ack.acked_seq;
            self.acked_frame = 0;
            self.acked_salts = .{ 0, 0 };
            const size = fileio.size(spool_fd) catch 0;
            if (format.readHeader(spool_fd, ack.last_record_offset, size) catch null) |h| {
                if (h.seq == ack.acked_seq) {
                    self.acked_frame = h.wal_commit_frame;
                    self.acked_salts = .{ h.wal_salt1, h.wal_salt2 };
                }
            }
        }
        const same_cycle = self.acked_salts[0] == wal.salt1 and self.acked_salts[1] == wal.salt2;
        return wal.mx_frame -| (if (same_cycle) self.acked_frame else 0);
    }

    /// Whether a WAL of `frames` frames is within what a hold keeps.
    pub fn covers(self: *Hold, page_size: u32, frames: u32) bool {
        const max = self.max_bytes orelse setting.get() orelse default_max_bytes;
        self.max_bytes = max;
        return within(page_size, frames, max);
    }

    fn recentAck(self: *Hold, paths: *const sidefolder.Paths) ?spool_ack.Ack {
        const now = monotonicNs();
        if (self.ack_read_ns) |then| {
            if (now -| then < ack_reuse_ns) return self.ack;
        }
        const fd = self.ackFd(paths) orelse return null;
        self.ack = spool_ack.readAckFd(fd) catch return null;
        self.ack_read_ns = now;
        return self.ack;
    }

    fn ackFd(self: *Hold, paths: *const sidefolder.Paths) ?fileio.Fd {
        if (self.ack_fd < 0) {
            self.ack_fd = (fileio.openIfExists(sidefolder.Paths.z(&paths.ack), false) catch return null) orelse return null;
        }
        return self.ack_fd;
    }
};

const ack_reuse_ns: u64 = 1_000_000;

fn monotonicNs() u64 {
    var ts: std.c.timespec = undefined;
    // The coarse clock costs no more than a memory read on Linux.
    const clock = if (builtin.os.tag == .linux) std.c.CLOCK.MONOTONIC_COARSE else std.c.CLOCK.MONOTONIC;
    _ = std.c.clock_gettime(clock, &ts);
    return @as(u64, @intCast(ts.sec)) * std.time.ns_per_s + @as(u64, @intCast(ts.nsec));
}

/// Whether a WAL of `frames` frames of `page_size` pages is under `max` bytes.
fn within(page_size: u32, frames: u32, max: u64) bool {
    const fsz: u64 = walfmt.frame_header_size + @as(u64, page_size);
    return walfmt.header_size + @as(u64, frames) * fsz < max;
}

test "a hold ends at its size, and a size of 0 holds nothing" {
    try std.testing.expect(within(4096, 16_000, default_max_bytes));
    try std.testing.expect(!within(4096, 16_400, default_max_bytes));
    try std.testing.expect(!within(4096, 0, 0));
}

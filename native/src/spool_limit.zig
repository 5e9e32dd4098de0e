//! How much the side folder may hold, and whether copying unshipped pages
//! out of the WAL is worth anything at all.
//!
//! Without a replicator acknowledging, every WAL restart copies the cycle's
//! pages again, so the folder would grow without bound where plain SQLite
//! reuses the WAL's space. LIBSQL_BOTTOMLESS_SPOOL_MAX_BYTES caps it
//! (default: the larger of 256 MiB and twice the database file). Past the
//! cap, unshipped history is dropped: the copies go, the seal says
//! `dropped`, and the next replicator starts a new generation from a
//! snapshot. Until one does, nothing more is copied: whatever a cycle held
//! is in that snapshot too.
const std = @import("std");
const sidefolder = @import("sidefolder.zig");
const spool_ack = @import("spool_ack.zig");
const Paths = sidefolder.Paths;
const seal = @import("seal.zig");
const fileio = @import("fileio.zig");
const env_bytes = @import("env_bytes.zig");

pub const variable = "LIBSQL_BOTTOMLESS_SPOOL_MAX_BYTES";
const min_default: u64 = 256 << 20;

var setting = env_bytes.Setting{ .variable = variable, .default_text = "the larger of 256 MiB and twice the database" };

/// The cap, in bytes, for the database at `paths`.
pub fn maxBytes(paths: *const Paths) u64 {
    if (setting.get()) |n| return n;
    const db = fileio.sizeOfPath(Paths.z(&paths.db)) orelse 0;
    return @max(min_default, 2 * db);
}

/// What the side folder's spool and copies occupy on disk.
pub fn usedBytes(spool_fd: fileio.Fd, pages_fd: ?fileio.Fd) u64 {
    var used = fileio.diskBytes(spool_fd);
    if (pages_fd) |p| used += fileio.diskBytes(p);
    return used;
}

pub const Decision = enum {
    /// Copy the unshipped pages before the WAL is reused.
    copy,
    /// No replicator ever read the spool: its first generation starts
    /// from a snapshot, which holds all of this.
    no_reader,
    /// History was dropped and no snapshot has been taken since: the next
    /// one holds all of this.
    dropped,
};

pub fn decide(paths: *const Paths) Decision {
    if (!spool_ack.hasReader(paths)) return .no_reader;
    const s = (seal.read(Paths.z(&paths.seal)) catch return .copy) orelse return .copy;
    if (s.kind != .dropped) return .copy;
    const ack = spool_ack.readAck(paths) catch return .copy;
    return if (ack.acked_seq < s.seq) .dropped else .copy;
}

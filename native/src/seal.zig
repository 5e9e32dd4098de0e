//! The seal: proof that the spool took every commit SQLite discarded from
//! the WAL, so that commits a capture missed (side folder not writable or
//! full, history dropped at the size limit, a writer without the extension,
//! rollback-journal writes between WAL periods) are noticed by the next
//! capture that works, instead of its records silently skipping them.
//!
//! `sealed` in the side folder names what may follow the spool's newest
//! record (`seq`):
//!   next     the WAL cycle with exactly these salts: written just before
//!            SQLite writes a new WAL header, once the old content is safe;
//!   emptied  a WAL that starts afresh, if the database file is still the
//!            one it was when the WAL was truncated or deleted (size,
//!            mtime, inode: its pages leave the WAL only by a checkpoint,
//!            which writes that file);
//!   dropped  nothing: history through `seq` was dropped at the size limit.
//! A seal is written only when the content it closes was itself proven:
//! the spool's newest record is in that cycle (reconcile just appended all
//! of it), or the previous seal named it. The first record of any other
//! cycle is flagged `gap_before`, and the replicator starts a new generation
//! from a snapshot instead of shipping a history with a hole in it.
//!
//! A seal lost to a crash reads as a gap: one needless snapshot, never a
//! missed one. (A checkpoint of missed commits within the file system's
//! timestamp granularity of the previous one, leaving the size unchanged,
//! would go unnoticed.)
const std = @import("std");
const builtin = @import("builtin");
const fileio = @import("fileio.zig");
const sidefolder = @import("sidefolder.zig");
const Last = @import("spool_format.zig").Last;
const Paths = sidefolder.Paths;
const status = @import("status.zig");
const Error = status.Error;

const magic: u32 = 0x4c534c42; // "BLSL"
pub const size = 64;

pub const Kind = enum(u32) { next = 1, emptied = 2, dropped = 3 };

/// What identifies the database file's content without reading it.
pub const Identity = struct {
    size: u64 = 0,
    mtime_ns: u64 = 0,
    ino: u64 = 0,

    pub fn of(path: [*:0]const u8) Identity {
        if (builtin.os.tag != .linux) return .{};
        const linux = std.os.linux;
        var st: linux.Statx = undefined;
        if (linux.statx(linux.AT.FDCWD, path, 0, .{ .SIZE = true, .MTIME = true, .INO = true }, &st) != 0) return .{};
        const ns = @as(u64, @intCast(st.mtime.sec)) * std.time.ns_per_s + st.mtime.nsec;
        return .{ .size = st.size, .mtime_ns = ns, .ino = st.ino };
    }
};

pub const Seal = struct {
    kind: Kind,
    /// The spool's newest record when the seal was written (0: none).
    seq: u64,
    salt1: u32 = 0,
    salt2: u32 = 0,
    db: Identity = .{},

    fn check(b: *const [56]u8) u64 {
        return std.hash.Wyhash.hash(magic, b);
    }

    pub fn encode(s: Seal, out: *[size]u8) void {
        @memset(out, 0);
        std.mem.writeInt(u32, out[0..4], magic, .little);
        std.mem.writeInt(u32, out[4..8], @intFromEnum(s.kind), .little);
        std.mem.writeInt(u64, out[8..16], s.seq, .little);
        std.mem.writeInt(u32, out[16..20], s.salt1, .little);
        std.mem.writeInt(u32, out[20..24], s.salt2, .little);
        std.mem.writeInt(u64, out[24..32], s.db.size, .little);
        std.mem.writeInt(u64, out[32..40], s.db.mtime_ns, .little);
        std.mem.writeInt(u64, out[40..48], s.db.ino, .little);
        std.mem.writeInt(u64, out[56..64], check(out[0..56]), .little);
    }

    pub fn decode(b: *const [size]u8) ?Seal {
        if (std.mem.readInt(u32, b[0..4], .little) != magic) return null;
        if (std.mem.readInt(u64, b[56..64], .little) != check(b[0..56])) return null;
        const kind = std.enums.fromInt(Kind, std.mem.readInt(u32, b[4..8], .little)) orelse return null;
        return .{
            .kind = kind,
            .seq = std.mem.readInt(u64, b[8..16], .little),
            .salt1 = std.mem.readInt(u32, b[16..20], .little),
            .salt2 = std.mem.readInt(u32, b[20..24], .little),
            .db = .{
                .size = std.mem.readInt(u64, b[24..32], .little),
                .mtime_ns = std.mem.readInt(u64, b[32..40], .little),
                .ino = std.mem.readInt(u64, b[40..48], .little),
            },
        };
    }

    fn names(s: Seal, last_seq: u64, salt1: u32, salt2: u32) bool {
        return s.kind == .next and s.seq == last_seq and s.salt1 == salt1 and s.salt2 == salt2;
    }
};

pub fn read(path: [*:0]const u8) Error!?Seal {
    const fd = (try fileio.openIfExists(path, false)) orelse return null;
    defer fileio.close(fd);
    var b: [size]u8 = undefined;
    if (try fileio.preadAll(fd, &b, 0) != b.len) return null;
    return Seal.decode(&b);
}

/// Writes the seal (not synced: see above).
pub fn store(paths: *const Paths, s: Seal) Error!void {
    var b: [size]u8 = undefined;
    s.encode(&b);
    const fd = try paths.create(&paths.seal);
    defer fileio.close(fd);
    try fileio.pwriteAll(fd, &b, 0);
}

/// Whether a record of WAL cycle (salt1, salt2) starting at frame `first`
/// directly follows the spool's newest record `last`.
pub fn follows(paths: *const Paths, last: Last, salt1: u32, salt2: u32, first: u32) bool {
    if (last.wal_salt1 == salt1 and last.wal_salt2 == salt2) return first == last.wal_commit_frame + 1;
    if (first != 1) return false;
    const s = (read(Paths.z(&paths.seal)) catch return false) orelse return false;
    return s.names(last.seq, salt1, salt2);
}

/// The WAL content that SQLite is about to discard, as capture found it
/// (after securing it): a cycle, or nothing (empty or headerless file).
pub const Closing = union(enum) {
    cycle: struct { salt1: u32, salt2: u32 },
    empty,
};

/// Whether everything up to the spool's newest record `last` and the WAL
/// content `closing` is accounted for, so a new seal may be written.
pub fn proven(paths: *const Paths, last: ?Last, closing: Closing) bool {
    const prev = read(Paths.z(&paths.seal)) catch return false;
    const last_seq: u64 = if (last) |l| l.seq else 0;
    switch (closing) {
        .cycle => |c| {
            if (last) |l| if (l.wal_salt1 == c.salt1 and l.wal_salt2 == c.salt2) return true;
            const p = prev orelse return last == null;
            return p.names(last_seq, c.salt1, c.salt2);
        },
        .empty => {
            const p = prev orelse return last == null;
            if (p.kind != .emptied or p.seq != last_seq) return false;
            return std.meta.eql(p.db, Identity.of(Paths.z(&paths.db)));
        },
    }
}

test "a seal names one successor of one record" {
    const s = Seal{ .kind = .next, .seq = 7, .salt1 = 0xffffffff, .salt2 = 3 };
    var b: [size]u8 = undefined;
    s.encode(&b);
    const d = Seal.decode(&b).?;
    try std.testing.expect(d.names(7, 0xffffffff, 3));
    try std.testing.expect(!d.names(7, 0, 3));
    try std.testing.expect(!d.names(6, 0xffffffff, 3));
    b[9] ^= 1;
    try std.testing.expect(Seal.decode(&b) == null);
}

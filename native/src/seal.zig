//! The seal: proof that the spool took every commit of a WAL cycle before
//! SQLite discarded it, so that a capture that failed (side folder not
//! writable or full, history dropped at the size limit, a writer without the
//! extension) is noticed by the next one that works, instead of its records
//! silently skipping transactions.
//!
//! After securing the WAL (every commit in the spool, unshipped pages
//! copied, spool synced) capture writes `sealed`: the seq of the spool's
//! newest record and the salts of the cycle that ends. When the spool next
//! takes the first record of another cycle, that cycle must directly follow
//! a sealed one: SQLite's restart adds one to salt1 (walRestartHdr), and a
//! deleted WAL (sealed as `deleted`) may come back with any salts. Anything
//! else means commits were lost: the record is flagged `gap_before`, and
//! the replicator starts a new generation from a snapshot instead of
//! shipping a history with a hole in it.
//!
//! A seal lost to a crash reads as a gap too: one needless snapshot, never a
//! missed one.
const std = @import("std");
const fileio = @import("fileio.zig");
const spool = @import("spool.zig");
const status = @import("status.zig");
const Error = status.Error;

const magic: u32 = 0x4c534c42; // "BLSL"

pub const Kind = enum(u32) {
    /// The WAL was restarted or truncated: the next cycle's salt1 is salt1+1.
    restart = 1,
    /// The WAL file was deleted: the next one starts with fresh salts.
    deleted = 2,
    /// Unshipped history up to `seq` was dropped at the size limit.
    dropped = 3,
};

pub const Seal = struct {
    kind: Kind,
    /// The spool's newest record when the seal was written (0: none).
    seq: u64,
    salt1: u32 = 0,
    salt2: u32 = 0,

    fn check(b: *const [24]u8) u32 {
        return @truncate(std.hash.Wyhash.hash(magic, b));
    }

    pub fn encode(s: Seal, out: *[32]u8) void {
        @memset(out, 0);
        std.mem.writeInt(u32, out[0..4], magic, .little);
        std.mem.writeInt(u32, out[4..8], @intFromEnum(s.kind), .little);
        std.mem.writeInt(u64, out[8..16], s.seq, .little);
        std.mem.writeInt(u32, out[16..20], s.salt1, .little);
        std.mem.writeInt(u32, out[20..24], s.salt2, .little);
        std.mem.writeInt(u32, out[24..28], check(out[0..24]), .little);
    }

    pub fn decode(b: *const [32]u8) ?Seal {
        if (std.mem.readInt(u32, b[0..4], .little) != magic) return null;
        if (std.mem.readInt(u32, b[24..28], .little) != check(b[0..24])) return null;
        const kind = std.enums.fromInt(Kind, std.mem.readInt(u32, b[4..8], .little)) orelse return null;
        return .{
            .kind = kind,
            .seq = std.mem.readInt(u64, b[8..16], .little),
            .salt1 = std.mem.readInt(u32, b[16..20], .little),
            .salt2 = std.mem.readInt(u32, b[20..24], .little),
        };
    }

    /// Whether a record of the cycle with salt1 `next_salt1` may directly
    /// follow record `last_seq` of another cycle.
    pub fn allows(s: Seal, last_seq: u64, next_salt1: u32) bool {
        if (s.seq != last_seq) return false;
        return switch (s.kind) {
            .restart => next_salt1 == s.salt1 +% 1,
            .deleted => true,
            .dropped => false,
        };
    }
};

/// Whether a record of WAL cycle (salt1, salt2) starting at frame `first`
/// directly follows the spool's newest record `last`.
pub fn follows(paths: *const spool.Paths, last: spool.Last, salt1: u32, salt2: u32, first: u32) bool {
    if (last.wal_salt1 == salt1 and last.wal_salt2 == salt2) return first == last.wal_commit_frame + 1;
    if (first != 1) return false;
    const s = (read(spool.Paths.z(&paths.seal)) catch return false) orelse return false;
    return s.allows(last.seq, salt1);
}

pub fn read(path: [*:0]const u8) Error!?Seal {
    const fd = (try fileio.openIfExists(path, false)) orelse return null;
    defer fileio.close(fd);
    var b: [32]u8 = undefined;
    if (try fileio.preadAll(fd, &b, 0) != b.len) return null;
    return Seal.decode(&b);
}

/// Writes the seal (not synced: see above).
pub fn store(paths: *const spool.Paths, s: Seal) Error!void {
    var b: [32]u8 = undefined;
    s.encode(&b);
    const fd = try paths.create(&paths.seal);
    defer fileio.close(fd);
    try fileio.pwriteAll(fd, &b, 0);
}

test "a restart seal allows only the next cycle after the same record" {
    const s = Seal{ .kind = .restart, .seq = 7, .salt1 = 0xffffffff, .salt2 = 3 };
    var b: [32]u8 = undefined;
    s.encode(&b);
    const d = Seal.decode(&b).?;
    try std.testing.expect(d.allows(7, 0));
    try std.testing.expect(!d.allows(7, 1));
    try std.testing.expect(!d.allows(6, 0));
    b[9] ^= 1;
    try std.testing.expect(Seal.decode(&b) == null);
}

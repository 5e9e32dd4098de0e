//! `ack` in the side folder: how far the replicator has shipped the spool.
//! Its existence also tells capture that some replicator reads this spool
//! (spool_limit.zig: until then a replicator's first snapshot covers
//! everything, so nothing is copied).
//!
//! File layout, 32 bytes, integers little-endian:
//!   0  u32  ack_magic
//!   4  u64  acked_seq           newest acknowledged record
//!  12  u64  next_offset         first byte not acknowledged (where reading starts)
//!  20  u64  last_record_offset  start of the newest acknowledged record
//!  28  u32  CRC32 of bytes 0..28
//! A file that is short or fails its check reads as "nothing acknowledged".
const std = @import("std");
const fileio = @import("fileio.zig");
const sidefolder = @import("sidefolder.zig");
const status = @import("status.zig");
const Error = status.Error;
const Paths = sidefolder.Paths;
const Crc = std.hash.Crc32;

const ack_magic: u32 = 0x4b534c42; // "BLSK"

pub const Ack = struct {
    acked_seq: u64 = 0,
    /// First byte not yet acknowledged (where the reader starts).
    next_offset: u64 = 0,
    /// Start of the newest acknowledged record (kept readable).
    last_record_offset: u64 = 0,
};

/// The file's bytes (the u64s are unaligned, as format version 4 has them).
const AckFile = extern struct {
    magic: u32,
    acked_seq: u64 align(1),
    next_offset: u64 align(1),
    last_record_offset: u64 align(1),
    crc: u32,

    const checked_len = @offsetOf(AckFile, "crc");

    fn crcOf(self: *const AckFile) u32 {
        return Crc.hash(std.mem.asBytes(self)[0..checked_len]);
    }
};

comptime {
    std.debug.assert(@sizeOf(AckFile) == 32);
    std.debug.assert(@offsetOf(AckFile, "acked_seq") == 4);
    std.debug.assert(@offsetOf(AckFile, "next_offset") == 12);
    std.debug.assert(@offsetOf(AckFile, "last_record_offset") == 20);
    std.debug.assert(@offsetOf(AckFile, "crc") == 28);
}

fn le(v: anytype) @TypeOf(v) {
    return std.mem.nativeToLittle(@TypeOf(v), v);
}

fn encode(ack: Ack) AckFile {
    var f = AckFile{ .magic = le(ack_magic), .acked_seq = le(ack.acked_seq), .next_offset = le(ack.next_offset), .last_record_offset = le(ack.last_record_offset), .crc = 0 };
    f.crc = le(f.crcOf());
    return f;
}

fn decode(f: *const AckFile) ?Ack {
    if (le(f.magic) != ack_magic or le(f.crc) != f.crcOf()) return null;
    return .{ .acked_seq = le(f.acked_seq), .next_offset = le(f.next_offset), .last_record_offset = le(f.last_record_offset) };
}

/// Whether an acknowledgement file exists: some replicator reads this
/// spool (Reader.open creates it).
pub fn hasReader(paths: *const Paths) bool {
    const fd = (fileio.openIfExists(Paths.z(&paths.ack), false) catch return true) orelse return false;
    fileio.close(fd);
    return true;
}

pub fn readAck(paths: *const Paths) Error!Ack {
    const fd = (try fileio.openIfExists(Paths.z(&paths.ack), false)) orelse return .{};
    defer fileio.close(fd);
    var f: AckFile = undefined;
    if (try fileio.preadAll(fd, std.mem.asBytes(&f), 0) != @sizeOf(AckFile)) return .{};
    return decode(&f) orelse .{};
}

pub fn writeAck(paths: *const Paths, ack: Ack) Error!void {
    const f = encode(ack);
    const fd = try paths.create(&paths.ack);
    defer fileio.close(fd);
    try fileio.pwriteAll(fd, std.mem.asBytes(&f), 0);
    try fileio.sync(fd);
}

test "the ack file is byte for byte what format version 4 wrote" {
    // acked_seq 5, next_offset 480, last_record_offset 384, by the
    // offset-arithmetic codec this file replaces.
    var want: [32]u8 = undefined;
    _ = try std.fmt.hexToBytes(&want, "424c534b0500000000000000e00100000000000080010000000000007a7d3810");
    const f = encode(.{ .acked_seq = 5, .next_offset = 480, .last_record_offset = 384 });
    try std.testing.expectEqualSlices(u8, &want, std.mem.asBytes(&f));
    try std.testing.expectEqual(Ack{ .acked_seq = 5, .next_offset = 480, .last_record_offset = 384 }, decode(&f).?);
    var bad = f;
    std.mem.asBytes(&bad)[13] ^= 1;
    try std.testing.expect(decode(&bad) == null);
}

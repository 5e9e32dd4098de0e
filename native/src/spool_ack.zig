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
const builtin = @import("builtin");
const fileio = @import("fileio.zig");
const sidefolder = @import("sidefolder.zig");
const status = @import("status.zig");
const Error = status.Error;
const Paths = sidefolder.Paths;
const Crc = std.hash.Crc32;

const ack_magic: u32 = 0x4b534c42; // "BLSK"

/// The replicator's position; the same struct is the file's 32 bytes (its
/// u64s unaligned, as format version 4 has them).
pub const Ack = extern struct {
    magic: u32 = ack_magic,
    acked_seq: u64 align(1) = 0,
    /// First byte not yet acknowledged (where the reader starts).
    next_offset: u64 align(1) = 0,
    /// Start of the newest acknowledged record (kept readable).
    last_record_offset: u64 align(1) = 0,
    /// CRC32 of the bytes before it.
    crc: u32 = 0,

    fn crcOf(self: *const Ack) u32 {
        return Crc.hash(std.mem.asBytes(self)[0..@offsetOf(Ack, "crc")]);
    }

    /// The file's bytes: checked, little-endian.
    fn encode(ack: Ack) Ack {
        var f = Ack{ .acked_seq = ack.acked_seq, .next_offset = ack.next_offset, .last_record_offset = ack.last_record_offset };
        toLittle(&f);
        f.crc = std.mem.nativeToLittle(u32, f.crcOf());
        return f;
    }

    fn decode(raw: *const Ack) ?Ack {
        var a = raw.*;
        toLittle(&a);
        if (a.magic != ack_magic or a.crc != raw.crcOf()) return null;
        return a;
    }
};

comptime {
    std.debug.assert(@sizeOf(Ack) == 32);
    std.debug.assert(@offsetOf(Ack, "acked_seq") == 4);
    std.debug.assert(@offsetOf(Ack, "next_offset") == 12);
    std.debug.assert(@offsetOf(Ack, "last_record_offset") == 20);
    std.debug.assert(@offsetOf(Ack, "crc") == 28);
}

fn toLittle(v: *Ack) void {
    if (builtin.cpu.arch.endian() == .big) std.mem.byteSwapAllFields(Ack, v);
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
    return readAckFd(fd);
}

/// The acknowledgement in an open ack file (the writer rewrites it in place).
pub fn readAckFd(fd: fileio.Fd) Error!Ack {
    var f: Ack = undefined;
    if (try fileio.preadAll(fd, std.mem.asBytes(&f), 0) != @sizeOf(Ack)) return .{};
    return Ack.decode(&f) orelse .{};
}

pub fn writeAck(paths: *const Paths, ack: Ack) Error!void {
    const f = ack.encode();
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
    const f = (Ack{ .acked_seq = 5, .next_offset = 480, .last_record_offset = 384 }).encode();
    try std.testing.expectEqualSlices(u8, &want, std.mem.asBytes(&f));
    const back = Ack.decode(&f).?;
    try std.testing.expectEqual(@as(u64, 5), back.acked_seq);
    try std.testing.expectEqual(@as(u64, 480), back.next_offset);
    try std.testing.expectEqual(@as(u64, 384), back.last_record_offset);
    var bad = f;
    std.mem.asBytes(&bad)[13] ^= 1;
    try std.testing.expect(Ack.decode(&bad) == null);
}

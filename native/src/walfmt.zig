//! SQLite's WAL format: header and frame layout and the chained checksum.
//! https://www.sqlite.org/fileformat2.html#walformat
const std = @import("std");

pub const header_size = 32;
pub const frame_header_size = 24;
pub const magic_le: u32 = 0x377f0682;
pub const magic_be: u32 = 0x377f0683;

pub const Chain = extern struct {
    salt1: u32,
    salt2: u32,
    cksum1: u32,
    cksum2: u32,
};

/// SQLite's walChecksumBytes: data.len must be a multiple of 8.
pub fn checksum(data: []const u8, big_endian: bool, s: *[2]u32) void {
    std.debug.assert(data.len % 8 == 0);
    var s1 = s[0];
    var s2 = s[1];
    var i: usize = 0;
    const endian: std.builtin.Endian = if (big_endian) .big else .little;
    while (i < data.len) : (i += 8) {
        const x0 = std.mem.readInt(u32, data[i..][0..4], endian);
        const x1 = std.mem.readInt(u32, data[i + 4 ..][0..4], endian);
        s1 +%= x0 +% s2;
        s2 +%= x1 +% s1;
    }
    s[0] = s1;
    s[1] = s2;
}

pub const WalHeader = struct {
    big_endian: bool,
    page_size: u32,
    salt1: u32,
    salt2: u32,
    cksum1: u32,
    cksum2: u32,

    /// Parses and verifies a WAL header; null if it is not a valid one.
    pub fn parse(b: *const [header_size]u8) ?WalHeader {
        const magic = std.mem.readInt(u32, b[0..4], .big);
        if (magic != magic_le and magic != magic_be) return null;
        const be = magic == magic_be;
        var s = [2]u32{ 0, 0 };
        checksum(b[0..24], be, &s);
        const c1 = std.mem.readInt(u32, b[24..28], .big);
        const c2 = std.mem.readInt(u32, b[28..32], .big);
        if (s[0] != c1 or s[1] != c2) return null;
        var ps = std.mem.readInt(u32, b[8..12], .big);
        if (ps == 1) ps = 65536;
        if (ps < 512 or ps > 65536 or (ps & (ps - 1)) != 0) return null;
        return .{
            .big_endian = be,
            .page_size = ps,
            .salt1 = std.mem.readInt(u32, b[16..20], .big),
            .salt2 = std.mem.readInt(u32, b[20..24], .big),
            .cksum1 = c1,
            .cksum2 = c2,
        };
    }
};

pub const FrameHeader = struct {
    pgno: u32,
    db_size: u32, // non-zero on a commit frame
    salt1: u32,
    salt2: u32,
    cksum1: u32,
    cksum2: u32,

    pub fn parse(b: *const [frame_header_size]u8) FrameHeader {
        return .{
            .pgno = std.mem.readInt(u32, b[0..4], .big),
            .db_size = std.mem.readInt(u32, b[4..8], .big),
            .salt1 = std.mem.readInt(u32, b[8..12], .big),
            .salt2 = std.mem.readInt(u32, b[12..16], .big),
            .cksum1 = std.mem.readInt(u32, b[16..20], .big),
            .cksum2 = std.mem.readInt(u32, b[20..24], .big),
        };
    }
};

/// Byte order of the checksum words in frames this library ships: what
/// SQLite writes on x86-64 and aarch64 (WAL magic 0x377f0682), and what
/// libSQL's bottomless checks (it reads words in the host's order).
pub const ship_big_endian = false;

/// Checks one frame of a local WAL against the running chain and advances
/// it. Returns false (chain untouched) when salts or checksum disagree.
pub fn verifyFrame(hdr: *const [frame_header_size]u8, page: []const u8, big_endian: bool, chain: *Chain) bool {
    const f = FrameHeader.parse(hdr);
    if (f.salt1 != chain.salt1 or f.salt2 != chain.salt2) return false;
    return verifyChecksum(hdr, page, big_endian, chain);
}

/// Checks only the chained checksum of a shipped frame (salts are the WAL's
/// own in libSQL's buckets, and neither libSQL nor SQLite's restore needs
/// them: the chain already ties each frame to the one before).
pub fn verifyChecksum(hdr: *const [frame_header_size]u8, page: []const u8, big_endian: bool, chain: *Chain) bool {
    const f = FrameHeader.parse(hdr);
    var s = [2]u32{ chain.cksum1, chain.cksum2 };
    checksum(hdr[0..8], big_endian, &s);
    checksum(page, big_endian, &s);
    if (s[0] != f.cksum1 or s[1] != f.cksum2) return false;
    chain.cksum1 = s[0];
    chain.cksum2 = s[1];
    return true;
}

/// Writes a frame header (checksum words in `ship_big_endian` order; header
/// fields big-endian, as SQLite stores them) for page and advances chain.
pub fn encodeFrame(out: *[frame_header_size]u8, pgno: u32, db_size: u32, page: []const u8, chain: *Chain) void {
    std.mem.writeInt(u32, out[0..4], pgno, .big);
    std.mem.writeInt(u32, out[4..8], db_size, .big);
    std.mem.writeInt(u32, out[8..12], chain.salt1, .big);
    std.mem.writeInt(u32, out[12..16], chain.salt2, .big);
    var s = [2]u32{ chain.cksum1, chain.cksum2 };
    checksum(out[0..8], ship_big_endian, &s);
    checksum(page, ship_big_endian, &s);
    chain.cksum1 = s[0];
    chain.cksum2 = s[1];
    std.mem.writeInt(u32, out[16..20], s[0], .big);
    std.mem.writeInt(u32, out[20..24], s[1], .big);
}

test "encode then verify round-trips and detects a flipped byte" {
    var page: [512]u8 = @splat(7);
    var hdr: [frame_header_size]u8 = undefined;
    var w = Chain{ .salt1 = 1, .salt2 = 2, .cksum1 = 3, .cksum2 = 4 };
    encodeFrame(&hdr, 5, 1, &page, &w);
    var r = Chain{ .salt1 = 1, .salt2 = 2, .cksum1 = 3, .cksum2 = 4 };
    try std.testing.expect(verifyFrame(&hdr, &page, ship_big_endian, &r));
    try std.testing.expectEqual(w, r);
    var other_order = Chain{ .salt1 = 1, .salt2 = 2, .cksum1 = 3, .cksum2 = 4 };
    try std.testing.expect(!verifyChecksum(&hdr, &page, !ship_big_endian, &other_order));
    page[100] ^= 1;
    var r2 = Chain{ .salt1 = 1, .salt2 = 2, .cksum1 = 3, .cksum2 = 4 };
    try std.testing.expect(!verifyFrame(&hdr, &page, ship_big_endian, &r2));
}

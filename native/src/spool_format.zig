//! The spool's on-disk record, 96 bytes, integers little-endian:
//!
//!   offset size  field
//!    0      64   header (Header), checked by `check` over its first 56 bytes
//!   64      24   mat slot (Mat): where the record's pages are, checked
//!                against the seq so a slot of another record never passes
//!   88       8   trailer (Trailer): trailer_magic and the low 32 bits of seq
//!
//! A record is complete only with its trailer, which the writer stores last
//! (spool_writer.zig); a record without it was torn by a crash. The layout
//! is declared as extern structs and pinned below with comptime size and
//! offset checks: changing a field moves bytes that existing spools hold.
//! Encoder and decoder live side by side here; nothing else parses records.
const std = @import("std");
const builtin = @import("builtin");
const walfmt = @import("walfmt.zig");
const fileio = @import("fileio.zig");
const status = @import("status.zig");
const Error = status.Error;

pub const record_magic: u32 = 0x50534c42; // "BLSP"
pub const trailer_magic: u32 = 0x45534c42; // "BLSE"
const mat_magic: u64 = 0x9e3779b97f4a7c15;
pub const version: u16 = 4;

/// A record header. The same struct is the file's bytes (encode) and the
/// checked value the code uses (decode): only magic, version and check
/// differ between a fresh one and one read back.
pub const Header = extern struct {
    magic: u32 = record_magic,
    version: u16 = version,
    reserved0: u16 = 0,
    seq: u64,
    unix_ms: u64,
    page_size: u32,
    db_size: u32,
    n_pages: u32,
    wal_salt1: u32,
    wal_salt2: u32,
    wal_commit_frame: u32,
    /// flag_gap_before: transactions between the previous record and this
    /// one were not captured (seal.zig); history cannot continue across it.
    flags: u32 = 0,
    reserved1: u32 = 0,
    /// headerCheck of the 56 bytes before it.
    check: u32 = 0,
    reserved2: u32 = 0,

    /// BOTTOMLESS_GAP_BEFORE of bottomless.h (checked in abi.zig).
    pub const flag_gap_before: u32 = 1;
    const checked_len = @offsetOf(Header, "check");

    pub fn firstFrame(h: Header) u32 {
        return h.wal_commit_frame - h.n_pages + 1;
    }

    /// The header as the file holds it: checked, little-endian.
    pub fn encode(h: Header) Header {
        var raw = h;
        raw.magic = record_magic;
        raw.version = version;
        raw.reserved0 = 0;
        raw.reserved1 = 0;
        raw.reserved2 = 0;
        raw.check = 0;
        toLittle(Header, &raw);
        raw.check = std.mem.nativeToLittle(u32, headerCheck(&raw));
        return raw;
    }

    /// Null for anything but a well-formed header: zeros, a hole punched
    /// by an acknowledgement, a torn or damaged write.
    pub fn decode(raw: *const Header) ?Header {
        var h = raw.*;
        toLittle(Header, &h); // little to native: the same swap
        if (h.magic != record_magic or h.version != version) return null;
        if (h.check != headerCheck(raw)) return null;
        if (h.page_size < 512 or h.page_size > 65536 or h.n_pages == 0 or h.n_pages > h.wal_commit_frame) return null;
        return h;
    }

    pub fn totalSize(_: Header) u64 {
        return record_size;
    }

    /// Size of this record's entry in `pages`: its WAL frames.
    pub fn entrySize(h: Header) u64 {
        return @as(u64, h.n_pages) * (walfmt.frame_header_size + @as(u64, h.page_size));
    }
};

/// A record's slot: where its pages are. A slot that fails its check (never
/// written, or torn by a crash) reads as "still in the WAL".
pub const Mat = extern struct {
    /// 0: in the WAL; else the offset of the copy in `pages`, plus one.
    at: u64 = 0,
    /// PayloadHash of the copy, seeded with the record's seq.
    hash: u64 = 0,
    /// checkOf(at, hash) bound to the record's seq, so a slot of another
    /// record never passes.
    check: u64 = 0,

    fn checkOf(raw: *const Mat, seq: u64) u64 {
        return std.hash.Wyhash.hash(mat_magic ^ seq, std.mem.asBytes(raw)[0..@offsetOf(Mat, "check")]);
    }

    pub fn encode(m: Mat, seq: u64) Mat {
        var raw = Mat{ .at = m.at, .hash = m.hash };
        toLittle(Mat, &raw);
        raw.check = std.mem.nativeToLittle(u64, checkOf(&raw, seq));
        return raw;
    }

    pub fn decode(raw: *const Mat, seq: u64) Mat {
        var m = raw.*;
        toLittle(Mat, &m);
        if (m.at == 0 or m.check != checkOf(raw, seq)) return .{};
        return m;
    }
};

pub const Trailer = extern struct {
    magic: u32,
    seq_low: u32,
};

pub const Record = extern struct {
    header: Header,
    mat: Mat,
    trailer: Trailer,
};

pub const header_size = @sizeOf(Header);
pub const mat_size = @sizeOf(Mat);
pub const trailer_size = @sizeOf(Trailer);
pub const record_size = @sizeOf(Record);

comptime {
    std.debug.assert(header_size == 64);
    std.debug.assert(@offsetOf(Header, "version") == 4);
    std.debug.assert(@offsetOf(Header, "seq") == 8);
    std.debug.assert(@offsetOf(Header, "unix_ms") == 16);
    std.debug.assert(@offsetOf(Header, "page_size") == 24);
    std.debug.assert(@offsetOf(Header, "db_size") == 28);
    std.debug.assert(@offsetOf(Header, "n_pages") == 32);
    std.debug.assert(@offsetOf(Header, "wal_salt1") == 36);
    std.debug.assert(@offsetOf(Header, "wal_salt2") == 40);
    std.debug.assert(@offsetOf(Header, "wal_commit_frame") == 44);
    std.debug.assert(@offsetOf(Header, "flags") == 48);
    std.debug.assert(@offsetOf(Header, "check") == 56);
    std.debug.assert(mat_size == 24 and @offsetOf(Mat, "check") == 16);
    std.debug.assert(trailer_size == 8);
    std.debug.assert(@offsetOf(Record, "mat") == 64);
    std.debug.assert(@offsetOf(Record, "trailer") == 88);
    std.debug.assert(record_size == 96);
    // Records start at multiples of 8 and the trailer is stored with one
    // aligned 8-byte store (spool_writer.zig).
    std.debug.assert(@alignOf(Record) == 8 and @offsetOf(Record, "trailer") % 8 == 0);
}

/// The file's integers are little-endian whatever the host: a no-op on
/// little-endian hosts, a swap of every field (either way) on others.
fn toLittle(comptime T: type, v: *T) void {
    if (builtin.cpu.arch.endian() == .big) std.mem.byteSwapAllFields(T, v);
}

/// The record header's check: Wyhash, since Zig 0.17's CRC32 goes a byte at
/// a time (about 150 ns for a header, paid at every commit and twice per
/// record at every WAL restart).
fn headerCheck(raw: *const Header) u32 {
    return @truncate(std.hash.Wyhash.hash(record_magic, std.mem.asBytes(raw)[0..Header.checked_len]));
}

pub fn trailerOf(seq: u64) Trailer {
    var t = Trailer{ .magic = trailer_magic, .seq_low = @truncate(seq) };
    toLittle(Trailer, &t);
    return t;
}

/// A fresh record: its header, an empty slot (pages in the WAL), its trailer.
pub fn encodeRecord(h: Header) Record {
    return .{ .header = h.encode(), .mat = .{}, .trailer = trailerOf(h.seq) };
}

/// What the writer remembers of the newest record, to continue the sequence
/// and to know which WAL commit it captured last (and what the seal names).
pub const Last = struct {
    seq: u64,
    offset: u64,
    wal_salt1: u32,
    wal_salt2: u32,
    wal_commit_frame: u32,
};

/// The header of a complete record (trailer included, so a torn record is
/// never reported complete), else null.
pub fn decodeComplete(rec: *const Record) ?Header {
    const h = Header.decode(&rec.header) orelse return null;
    if (!std.meta.eql(rec.trailer, trailerOf(h.seq))) return null;
    return h;
}

/// The record header at offset if a complete record starts there, else null.
pub fn readHeader(fd: fileio.Fd, offset: u64, file_size: u64) Error!?Header {
    if (offset + record_size > file_size) return null;
    var rec: Record = undefined;
    if (try fileio.preadAll(fd, std.mem.asBytes(&rec), offset) != record_size) return null;
    return decodeComplete(&rec);
}

/// The slot of the record at offset, whose seq is `seq`.
pub fn readMat(fd: fileio.Fd, offset: u64, seq: u64) Error!Mat {
    var raw: Mat = undefined;
    if (try fileio.preadAll(fd, std.mem.asBytes(&raw), offset + @offsetOf(Record, "mat")) != mat_size) return .{};
    return Mat.decode(&raw, seq);
}

// ---- tests ---------------------------------------------------------------

const testing = std.testing;

const sample = Header{ .seq = 0x0102030405060708, .unix_ms = 1764633600123, .page_size = 4096, .db_size = 77, .n_pages = 3, .wal_salt1 = 0xdeadbeef, .wal_salt2 = 0x01234567, .wal_commit_frame = 9, .flags = Header.flag_gap_before };

/// What the offset-arithmetic codec of spool format version 4 wrote for
/// `sample` with slot {at 4097, hash 0x1122334455667788}: existing spools
/// hold these bytes, so the extern structs must reproduce them exactly.
const sample_bytes = "424c53500400000008070605040302017be05bdc9a010000001000004d00000003000000efbeadde6745230109000000010000000000000067f521610000000001100000000000008877665544332211fddc342b13d1f9ac424c534508070605";

test "records are byte for byte what format version 4 wrote" {
    var rec = encodeRecord(sample);
    rec.mat = (Mat{ .at = 4097, .hash = 0x1122334455667788 }).encode(sample.seq);
    var want: [record_size]u8 = undefined;
    _ = try std.fmt.hexToBytes(&want, sample_bytes);
    try testing.expectEqualSlices(u8, &want, std.mem.asBytes(&rec));
}

test "a record decodes to what was encoded, its slot only under its own seq" {
    var rec: Record = undefined;
    _ = try std.fmt.hexToBytes(std.mem.asBytes(&rec), sample_bytes);
    var d = decodeComplete(&rec).?;
    try testing.expect(d.check != 0);
    d.check = 0;
    try testing.expectEqual(sample, d);
    const m = Mat.decode(&rec.mat, sample.seq);
    try testing.expectEqual(@as(u64, 4097), m.at);
    try testing.expectEqual(@as(u64, 0x1122334455667788), m.hash);
    try testing.expectEqual(@as(u64, 0), Mat.decode(&rec.mat, sample.seq + 1).at);
}

test "a torn record (no trailer) and a flipped bit are both refused" {
    var rec = encodeRecord(sample);
    rec.trailer = std.mem.zeroes(Trailer);
    try testing.expect(decodeComplete(&rec) == null);
    rec = encodeRecord(sample);
    std.mem.asBytes(&rec)[20] ^= 0x10; // inside unix_ms, under the check
    try testing.expect(decodeComplete(&rec) == null);
    rec = encodeRecord(sample);
    rec.trailer.seq_low ^= 1; // a trailer of another record
    try testing.expect(decodeComplete(&rec) == null);
    try testing.expect(decodeComplete(&std.mem.zeroes(Record)) == null);
}

test "a header of impossible sizes is refused even with a good check" {
    var h = sample;
    h.page_size = 100;
    var raw = h.encode();
    try testing.expect(Header.decode(&raw) == null);
    h = sample;
    h.n_pages = h.wal_commit_frame + 1;
    raw = h.encode();
    try testing.expect(Header.decode(&raw) == null);
}

//! The spool: the durable hand-off between capture (inside SQLite, under its
//! WAL write lock) and the replicator, in "<db>-bottomless/".
//!
//! `spool` is an append-only log with one small record per committed
//! transaction: which WAL frames hold it (salts of the WAL cycle, commit
//! frame, frame count), page size, database size and commit time. The pages
//! themselves stay in the WAL, which SQLite has already written (and synced,
//! with synchronous=FULL): the commit path writes 96 bytes, not a second copy
//! of every page. Before SQLite discards WAL content (restart, truncate,
//! delete) the frames of every record not yet acknowledged are copied into
//! `pages` and the record's slot points at the copy ("materialised").
//!
//! Record layout (little-endian integers), 96 bytes:
//!   header   64 bytes  see Header (checksummed)
//!   mat slot 24 bytes  offset+1 of the copy in `pages` (0: in the WAL), its
//!                      PayloadHash, and a check of both bound to the seq
//!   trailer   8 bytes  trailer_magic, low 32 bits of seq
//! The records end at the first incomplete one, not at the file size: the
//! file is allocated ahead with zeros (spool_tail.zig). A record without its
//! trailer was torn by a crash; whoever next holds the write lock clears it.
//! Acknowledged records are hole-punched, except the newest, which keeps the
//! sequence and WAL position readable.
//!
//! `pages` entry: the record's WAL frames as SQLite wrote them (header and
//! page each), nothing else, so the entries of consecutive records are one
//! stretch of the WAL, copied in the kernel with one copy_file_range
//! (materialize.zig). Their hash, seeded with the seq, is in the slot.
//!
//! Beside them: `ack` (the replicator's position; its existence tells
//! capture a replicator reads this spool, spool_limit.zig), `sealed` (what
//! may follow the newest record, seal.zig) and `pages.lock`. All take the
//! database file's permissions (sidefolder.zig).
const std = @import("std");
const walfmt = @import("walfmt.zig");
const walread = @import("walread.zig");
const spool_tail = @import("spool_tail.zig");
const builtin = @import("builtin");
const fileio = @import("fileio.zig");
const sidefolder = @import("sidefolder.zig");
const seal = @import("seal.zig");
const status = @import("status.zig");
const log = @import("log.zig");
const Error = status.Error;
const Crc = std.hash.Crc32;

/// Hash of materialised pages: Wyhash over 4 KiB blocks, chained through the
/// seed. With Zig 0.17 ReleaseFast here Wyhash takes about 190 ns per 4 KiB;
/// XxHash3 and CRC32 about 11 us (byte at a time). Fixed blocks keep writer
/// and reader, which read in other chunk sizes, in agreement.
pub const PayloadHash = struct {
    const block = 4096;
    state: u64,
    carry: [block]u8 = undefined,
    carried: usize = 0,

    pub fn init(seed: u64) PayloadHash {
        return .{ .state = seed };
    }

    pub fn update(self: *PayloadHash, input: []const u8) void {
        var data = input;
        if (self.carried > 0) {
            const take = @min(block - self.carried, data.len);
            @memcpy(self.carry[self.carried..][0..take], data[0..take]);
            self.carried += take;
            data = data[take..];
            if (self.carried < block) return;
            self.state = std.hash.Wyhash.hash(self.state, &self.carry);
            self.carried = 0;
        }
        while (data.len >= block) {
            self.state = std.hash.Wyhash.hash(self.state, data[0..block]);
            data = data[block..];
        }
        @memcpy(self.carry[0..data.len], data);
        self.carried = data.len;
    }

    pub fn final(self: *const PayloadHash) u64 {
        if (self.carried == 0) return self.state;
        return std.hash.Wyhash.hash(self.state, self.carry[0..self.carried]);
    }
};

test "payload hash does not depend on how the input is split" {
    var data: [10000]u8 = undefined;
    for (&data, 0..) |*b, i| b.* = @truncate(i *% 31);
    var a = PayloadHash.init(0);
    a.update(&data);
    var b = PayloadHash.init(0);
    b.update(data[0..3]);
    b.update(data[3..5000]);
    b.update(data[5000..]);
    try std.testing.expectEqual(a.final(), b.final());
}

pub const header_size = 64;
pub const mat_size = 24;
pub const trailer_size = 8;
pub const record_size = header_size + mat_size + trailer_size;

/// Walks the complete records from an offset a chunk at a time (one read per
/// 128 records) and writes changed materialisation slots back per chunk.
pub const RecordChunks = struct {
    const per = 128;
    writer: *Writer,
    buf: [per * record_size]u8 = undefined,
    chunk_off: u64,
    len: usize = 0,
    idx: usize = 0,
    dirty: bool = false,

    pub const Item = struct { header: ?Header, mat: Mat, index: usize, offset: u64 };

    pub fn init(writer: *Writer, from: u64) Error!RecordChunks {
        var c = RecordChunks{ .writer = writer, .chunk_off = from };
        try c.load(from);
        return c;
    }

    fn load(self: *RecordChunks, off: u64) Error!void {
        self.chunk_off = off;
        self.idx = 0;
        const want: usize = @intCast(@min(self.buf.len, self.writer.end -| off));
        self.len = try fileio.preadAll(self.writer.fd, self.buf[0..want], off) / record_size;
    }

    pub fn next(self: *RecordChunks) Error!?Item {
        if (self.idx == self.len) {
            try self.flush();
            if (self.len == 0) return null;
            try self.load(self.chunk_off + self.len * record_size);
            if (self.len == 0) return null;
        }
        const r = self.buf[self.idx * record_size ..][0..record_size];
        const offset = self.chunk_off + self.idx * record_size;
        self.idx += 1;
        const h = Header.decode(r[0..header_size]) orelse {
            // Hole-punched (wholly or, across a block boundary, in part):
            // the replicator acknowledged it after we read the ack position,
            // since acks do not take SQLite's lock. Nothing to do for it.
            if (offset < (try readAck(&self.writer.paths)).next_offset) {
                return .{ .header = null, .mat = .{}, .index = self.idx - 1, .offset = offset };
            }
            status.set("spool record at offset {d} is damaged", .{offset});
            return error.Corrupt;
        };
        return .{ .header = h, .mat = Mat.decode(r[header_size..][0..mat_size], h.seq), .index = self.idx - 1, .offset = offset };
    }

    pub fn setMat(self: *RecordChunks, item: Item, mat: Mat) void {
        const r = self.buf[item.index * record_size ..][0..record_size];
        mat.encode(r[header_size..][0..mat_size], item.header.?.seq);
        self.dirty = true;
    }

    pub fn flush(self: *RecordChunks) Error!void {
        if (!self.dirty) return;
        try fileio.pwriteAll(self.writer.fd, self.buf[0 .. self.len * record_size], self.chunk_off);
        self.dirty = false;
    }
};
const record_magic: u32 = 0x50534c42; // "BLSP"
const trailer_magic: u32 = 0x45534c42; // "BLSE"
const ack_magic: u32 = 0x4b534c42; // "BLSK"
const mat_magic: u64 = 0x9e3779b97f4a7c15;
const version: u16 = 4;

/// The record header's check: Wyhash, since Zig 0.17's CRC32 goes a byte at
/// a time (about 150 ns for a header, paid at every commit and twice per
/// record at every WAL restart).
fn headerCheck(b: []const u8) u32 {
    return @truncate(std.hash.Wyhash.hash(record_magic, b));
}

pub const Header = struct {
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

    pub const flag_gap_before: u32 = 1;

    pub fn firstFrame(h: Header) u32 {
        return h.wal_commit_frame - h.n_pages + 1;
    }

    pub fn encode(h: Header, out: *[header_size]u8) void {
        @memset(out, 0);
        std.mem.writeInt(u32, out[0..4], record_magic, .little);
        std.mem.writeInt(u16, out[4..6], version, .little);
        std.mem.writeInt(u64, out[8..16], h.seq, .little);
        std.mem.writeInt(u64, out[16..24], h.unix_ms, .little);
        std.mem.writeInt(u32, out[24..28], h.page_size, .little);
        std.mem.writeInt(u32, out[28..32], h.db_size, .little);
        std.mem.writeInt(u32, out[32..36], h.n_pages, .little);
        std.mem.writeInt(u32, out[36..40], h.wal_salt1, .little);
        std.mem.writeInt(u32, out[40..44], h.wal_salt2, .little);
        std.mem.writeInt(u32, out[44..48], h.wal_commit_frame, .little);
        std.mem.writeInt(u32, out[48..52], h.flags, .little);
        std.mem.writeInt(u32, out[56..60], headerCheck(out[0..56]), .little);
    }

    pub fn decode(b: *const [header_size]u8) ?Header {
        if (std.mem.readInt(u32, b[0..4], .little) != record_magic) return null;
        if (std.mem.readInt(u16, b[4..6], .little) != version) return null;
        if (std.mem.readInt(u32, b[56..60], .little) != headerCheck(b[0..56])) return null;
        const h = Header{
            .seq = std.mem.readInt(u64, b[8..16], .little),
            .unix_ms = std.mem.readInt(u64, b[16..24], .little),
            .page_size = std.mem.readInt(u32, b[24..28], .little),
            .db_size = std.mem.readInt(u32, b[28..32], .little),
            .n_pages = std.mem.readInt(u32, b[32..36], .little),
            .wal_salt1 = std.mem.readInt(u32, b[36..40], .little),
            .wal_salt2 = std.mem.readInt(u32, b[40..44], .little),
            .wal_commit_frame = std.mem.readInt(u32, b[44..48], .little),
            .flags = std.mem.readInt(u32, b[48..52], .little),
        };
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
pub const Mat = struct {
    /// 0: in the WAL; else the offset of the copy in `pages`, plus one.
    at: u64 = 0,
    /// PayloadHash of the copy, seeded with the record's seq.
    hash: u64 = 0,

    fn check(b: *const [16]u8, seq: u64) u64 {
        return std.hash.Wyhash.hash(mat_magic ^ seq, b);
    }

    pub fn encode(m: Mat, out: *[mat_size]u8, seq: u64) void {
        std.mem.writeInt(u64, out[0..8], m.at, .little);
        std.mem.writeInt(u64, out[8..16], m.hash, .little);
        std.mem.writeInt(u64, out[16..24], check(out[0..16], seq), .little);
    }

    pub fn decode(b: *const [mat_size]u8, seq: u64) Mat {
        const at = std.mem.readInt(u64, b[0..8], .little);
        if (at == 0 or std.mem.readInt(u64, b[16..24], .little) != check(b[0..16], seq)) return .{};
        return .{ .at = at, .hash = std.mem.readInt(u64, b[8..16], .little) };
    }
};

pub fn readMat(fd: fileio.Fd, offset: u64, seq: u64) Error!Mat {
    var b: [mat_size]u8 = undefined;
    if (try fileio.preadAll(fd, &b, offset + header_size) != b.len) return .{};
    return Mat.decode(&b, seq);
}


/// What the writer remembers of the newest record, to continue the sequence
/// and to know which WAL commit it captured last.
pub const Last = struct {
    seq: u64,
    offset: u64,
    wal_salt1: u32,
    wal_salt2: u32,
    wal_commit_frame: u32,
};

pub const Ack = struct {
    acked_seq: u64 = 0,
    /// First byte not yet acknowledged (where the reader starts).
    next_offset: u64 = 0,
    /// Start of the newest acknowledged record (kept readable).
    last_record_offset: u64 = 0,
};

pub fn timeMs() u64 {
    var ts: std.c.timespec = undefined;
    _ = std.c.clock_gettime(std.c.CLOCK.REALTIME, &ts);
    return @as(u64, @intCast(ts.sec)) * 1000 + @as(u64, @intCast(ts.nsec)) / 1_000_000;
}

/// Paths derived from the database path; fixed-size so the commit path
/// never allocates for them.
pub const Paths = struct {
    db: [4096]u8 = undefined,
    dir: [4096]u8 = undefined,
    spool: [4096]u8 = undefined,
    pages: [4096]u8 = undefined,
    ack: [4096]u8 = undefined,
    wal: [4096]u8 = undefined,
    pages_lock: [4096]u8 = undefined,
    seal: [4096]u8 = undefined,

    pub fn init(self: *Paths, db_path: []const u8) Error!void {
        _ = std.fmt.bufPrintSentinel(&self.db, "{s}", .{db_path}, 0) catch return tooLong(db_path);
        _ = std.fmt.bufPrintSentinel(&self.dir, "{s}-bottomless", .{db_path}, 0) catch return tooLong(db_path);
        _ = std.fmt.bufPrintSentinel(&self.spool, "{s}-bottomless/spool", .{db_path}, 0) catch return tooLong(db_path);
        _ = std.fmt.bufPrintSentinel(&self.pages, "{s}-bottomless/pages", .{db_path}, 0) catch return tooLong(db_path);
        _ = std.fmt.bufPrintSentinel(&self.ack, "{s}-bottomless/ack", .{db_path}, 0) catch return tooLong(db_path);
        _ = std.fmt.bufPrintSentinel(&self.wal, "{s}-wal", .{db_path}, 0) catch return tooLong(db_path);
        _ = std.fmt.bufPrintSentinel(&self.pages_lock, "{s}-bottomless/pages.lock", .{db_path}, 0) catch return tooLong(db_path);
        _ = std.fmt.bufPrintSentinel(&self.seal, "{s}-bottomless/sealed", .{db_path}, 0) catch return tooLong(db_path);
    }
    pub fn z(buf: *const [4096]u8) [*:0]const u8 {
        return @ptrCast(buf);
    }
    /// Opens one of the side folder's files read-write, creating it (and
    /// the folder) with the database file's permissions.
    pub fn create(self: *const Paths, file: *const [4096]u8) Error!fileio.Fd {
        return sidefolder.open(z(file), z(&self.dir), z(&self.db));
    }
    fn tooLong(p: []const u8) Error {
        status.set("database path too long ({d} bytes)", .{p.len});
        return error.Misuse;
    }
};

fn clearTorn(fd: fileio.Fd, at: u64) Error!void {
    var b: [record_size]u8 = undefined;
    const n = try fileio.preadAll(fd, &b, at);
    if (std.mem.allEqual(u8, b[0..n], 0)) return;
    @memset(&b, 0);
    try fileio.pwriteAll(fd, b[0..n], at);
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
    var b: [32]u8 = undefined;
    if (try fileio.preadAll(fd, &b, 0) != b.len) return .{};
    if (std.mem.readInt(u32, b[0..4], .little) != ack_magic) return .{};
    if (std.mem.readInt(u32, b[28..32], .little) != Crc.hash(b[0..28])) return .{};
    return .{
        .acked_seq = std.mem.readInt(u64, b[4..12], .little),
        .next_offset = std.mem.readInt(u64, b[12..20], .little),
        .last_record_offset = std.mem.readInt(u64, b[20..28], .little),
    };
}

fn writeAck(paths: *const Paths, ack: Ack) Error!void {
    var b: [32]u8 = undefined;
    std.mem.writeInt(u32, b[0..4], ack_magic, .little);
    std.mem.writeInt(u64, b[4..12], ack.acked_seq, .little);
    std.mem.writeInt(u64, b[12..20], ack.next_offset, .little);
    std.mem.writeInt(u64, b[20..28], ack.last_record_offset, .little);
    std.mem.writeInt(u32, b[28..32], Crc.hash(b[0..28]), .little);
    const fd = try paths.create(&paths.ack);
    defer fileio.close(fd);
    try fileio.pwriteAll(fd, &b, 0);
    try fileio.sync(fd);
}

/// The record header at offset if a complete record starts there (trailer
/// included, so a torn record is never reported complete), else null.
pub fn readHeader(fd: fileio.Fd, offset: u64, file_size: u64) Error!?Header {
    if (offset + record_size > file_size) return null;
    var b: [record_size]u8 = undefined;
    if (try fileio.preadAll(fd, &b, offset) != b.len) return null;
    const h = Header.decode(b[0..header_size]) orelse return null;
    const tr = b[header_size + mat_size ..];
    if (std.mem.readInt(u32, tr[0..4], .little) != trailer_magic) return null;
    if (std.mem.readInt(u32, tr[4..8], .little) != @as(u32, @truncate(h.seq))) return null;
    return h;
}

/// Walks complete records from offset (up to `upto`, if given); returns the
/// newest one found and the end of the last complete record.
pub fn scanTail(fd: fileio.Fd, from: u64, start_last: ?Last, upto: ?u64) Error!struct { last: ?Last, end: u64 } {
    const file_size = try fileio.size(fd);
    var off = from;
    var last = start_last;
    while (upto == null or off < upto.?) {
        const h = (try readHeader(fd, off, file_size)) orelse break;
        if (last) |l| if (h.seq != l.seq + 1 and l.offset != off) {
            status.set("spool sequence jumps from {d} to {d} at offset {d}", .{ l.seq, h.seq, off });
            return error.Corrupt;
        };
        last = .{ .seq = h.seq, .offset = off, .wal_salt1 = h.wal_salt1, .wal_salt2 = h.wal_salt2, .wal_commit_frame = h.wal_commit_frame };
        off += record_size;
    }
    return .{ .last = last, .end = off };
}

/// The capture side. One per WAL file handle (writers are serialised by
/// SQLite's WAL write lock). Other connections and processes append too:
/// a transaction that does not directly follow this writer's own last
/// record in the WAL rereads the spool's end first (upToDate).
pub const Writer = struct {
    paths: Paths = .{},
    fd: fileio.Fd = -1,
    wal_fd: fileio.Fd = -1,
    end: u64 = 0,
    last: ?Last = null,
    known: bool = false,
    /// One WAL frame, for reconcile and materialisation (not the commit path).
    frame_buf: []u8 = &.{},
    /// Bulk reads of the WAL for materialisation (not the commit path).
    copy_buf: []u8 = &.{},
    /// Where the next materialisation starts looking.
    mat_from: u64 = 0,
    /// The mapped end of the file that records are copied into.
    tail: spool_tail.Tail = .{},
    /// A gap, a drop was logged (once per writer).
    gap_reported: bool = false,
    drop_reported: bool = false,
    allocator: std.mem.Allocator,

    pub fn init(allocator: std.mem.Allocator, db_path: []const u8) Error!Writer {
        var w = Writer{ .allocator = allocator };
        try w.paths.init(db_path);
        return w;
    }

    pub fn deinit(self: *Writer) void {
        if (self.fd >= 0) fileio.close(self.fd);
        if (self.wal_fd >= 0) fileio.close(self.wal_fd);
        if (self.frame_buf.len > 0) self.allocator.free(self.frame_buf);
        if (self.copy_buf.len > 0) self.allocator.free(self.copy_buf);
        self.tail.deinit();
        self.* = undefined;
    }

    pub fn ensureOpen(self: *Writer) Error!void {
        if (self.fd >= 0) return;
        self.fd = try self.paths.create(&self.paths.spool);
    }

    pub fn walFd(self: *Writer) Error!?fileio.Fd {
        if (self.wal_fd >= 0) return self.wal_fd;
        self.wal_fd = (try fileio.openIfExists(Paths.z(&self.paths.wal), false)) orelse return null;
        return self.wal_fd;
    }

    pub fn closeWal(self: *Writer) void {
        if (self.wal_fd >= 0) fileio.close(self.wal_fd);
        self.wal_fd = -1;
    }

    /// Reused buffer for bulk reads of the WAL (materialisation).
    pub fn copyBuf(self: *Writer) Error![]u8 {
        if (self.copy_buf.len == 0) {
            self.copy_buf = self.allocator.alloc(u8, 1 << 20) catch return error.OutOfMemory;
        }
        return self.copy_buf;
    }

    pub fn frameBuf(self: *Writer) Error![]u8 {
        if (self.frame_buf.len == 0) {
            self.frame_buf = self.allocator.alloc(u8, walfmt.frame_header_size + 65536) catch return error.OutOfMemory;
        }
        return self.frame_buf;
    }

    /// Brings `end`/`last` up to date with what others appended, and drops a
    /// torn tail. Must be called with the WAL write lock held.
    pub fn refresh(self: *Writer) Error!void {
        try self.ensureOpen();
        const size = try fileio.size(self.fd);
        var from: u64 = 0;
        var start_last: ?Last = null;
        if (self.known and size >= self.end) {
            from = self.end;
            start_last = self.last;
        } else {
            from = (try readAck(&self.paths)).last_record_offset;
        }
        const r = try scanTail(self.fd, from, start_last, null);
        // Past the records the file holds zeros (allocated ahead by the
        // mapped tail) or the start of a record torn by a process that died
        // mid-append; we hold the write lock, so it is not running. Clear it,
        // so only a record in progress can ever look torn.
        if (r.end < size) try clearTorn(self.fd, r.end);
        self.end = r.end;
        self.last = r.last;
        self.known = true;
    }

    /// True when the spool's newest record is the commit just before frame
    /// `next` of the WAL cycle with these salts: nothing to reconcile.
    pub fn upToDate(self: *Writer, salt1: u32, salt2: u32, next: u32) Error!bool {
        // Our own record is the last commit before `next` in this very WAL
        // cycle: no other writer has committed since (it would have taken
        // frames after ours, or restarted the WAL with new salts), so no one
        // else has appended either. Saves a syscall on every commit.
        if (self.known) if (self.last) |l| {
            if (l.wal_salt1 == salt1 and l.wal_salt2 == salt2 and l.wal_commit_frame + 1 == next) return true;
        };
        try self.refresh();
        const l = self.last orelse return next <= 1;
        return l.wal_salt1 == salt1 and l.wal_salt2 == salt2 and l.wal_commit_frame + 1 >= next;
    }

    /// Appends the record of the transaction in WAL frames [first, commit]
    /// (already written by SQLite): one record, copied into the mapped tail.
    pub fn append(self: *Writer, page_size: u32, salt1: u32, salt2: u32, first: u32, commit: u32, db_size: u32) Error!void {
        std.debug.assert(first >= 1 and commit >= first);
        std.debug.assert(page_size >= 512 and page_size <= 65536);
        // upToDate() refreshed at the start of this transaction, and the WAL
        // write lock has kept other appenders out since.
        if (!self.known) try self.refresh();
        const seq = if (self.last) |l| l.seq + 1 else (try readAck(&self.paths)).acked_seq + 1;
        var flags: u32 = 0;
        if (self.last) |l| if (!seal.follows(&self.paths, l, salt1, salt2, first)) {
            flags |= Header.flag_gap_before;
            if (!self.gap_reported) log.warn("{s}: transactions before this one were not captured (the side folder was not writable, full, over LIBSQL_BOTTOMLESS_SPOOL_MAX_BYTES, or a writer bypassed the extension); the replicator starts a new generation from a snapshot", .{Paths.z(&self.paths.db)});
            self.gap_reported = true;
        };
        const h = Header{
            .seq = seq,
            .unix_ms = timeMs(),
            .page_size = page_size,
            .db_size = db_size,
            .n_pages = commit - first + 1,
            .wal_salt1 = salt1,
            .wal_salt2 = salt2,
            .wal_commit_frame = commit,
            .flags = flags,
        };
        var rec: [record_size]u8 = @splat(0);
        h.encode(rec[0..header_size]);
        std.mem.writeInt(u32, rec[header_size + mat_size ..][0..4], trailer_magic, .little);
        std.mem.writeInt(u32, rec[header_size + mat_size + 4 ..][0..4], @truncate(seq), .little);
        const start = self.end;
        if (self.tail.slot(self.fd, start, record_size)) |dst| {
            // Trailer last, as one aligned store (records start at multiples
            // of 8): a reader never sees it before the rest of the record.
            const body = record_size - trailer_size;
            @memcpy(dst[0..body], rec[0..body]);
            const trailer: *u64 = @ptrCast(@alignCast(dst[body..]));
            @atomicStore(u64, trailer, std.mem.readInt(u64, rec[body..], builtin.cpu.arch.endian()), .release);
        } else {
            try fileio.pwriteAll(self.fd, &rec, start);
        }
        self.end = start + record_size;
        self.last = .{ .seq = seq, .offset = start, .wal_salt1 = salt1, .wal_salt2 = salt2, .wal_commit_frame = commit };
    }

    /// Appends every transaction committed in the WAL after the newest one
    /// the spool holds, up to frame `limit` (all valid frames when null).
    /// Must be called with the WAL write lock held. Returns records appended.
    pub fn reconcile(self: *Writer, limit: ?u32) Error!u64 {
        try self.refresh();
        const wal = (try self.walFd()) orelse return 0;
        const wf = (try walread.WalFile.open(wal)) orelse return 0;
        var frame: u32 = 1;
        var chain = (try wf.chainAfter(0)).?;
        if (self.last) |l| {
            if (wf.sameCycle(l.wal_salt1, l.wal_salt2) and l.wal_commit_frame > 0) {
                if (limit) |lim| if (l.wal_commit_frame >= lim) return 0;
                chain = (try wf.chainAfter(l.wal_commit_frame)) orelse return 0;
                frame = l.wal_commit_frame + 1;
            }
        }
        const buf = try self.frameBuf();
        var txn_first = frame;
        var appended: u64 = 0;
        while (limit == null or frame <= limit.?) : (frame += 1) {
            const fh = (try wf.readVerified(frame, buf, &chain)) orelse break;
            if (fh.db_size != 0) {
                try self.append(wf.hdr.page_size, wf.hdr.salt1, wf.hdr.salt2, txn_first, frame, fh.db_size);
                appended += 1;
                txn_first = frame + 1;
            }
        }
        return appended;
    }

    pub fn sync(self: *Writer) Error!void {
        if (self.fd >= 0) try fileio.sync(self.fd);
    }
};

fn hashRange(fd: fileio.Fd, start: u64, len: u64, buf: []u8, hash: *PayloadHash) Error!void {
    var done: u64 = 0;
    while (done < len) {
        const want: usize = @intCast(@min(buf.len, len - done));
        if (try fileio.preadAll(fd, buf[0..want], start + done) != want) return error.Corrupt;
        hash.update(buf[0..want]);
        done += want;
    }
}

/// The replicator's side: read records in order, their pages (from the WAL
/// or their materialised copy), acknowledge, report.
pub const Reader = struct {
    paths: Paths = .{},
    fd: fileio.Fd = -1,
    wal_fd: fileio.Fd = -1,
    buf: []u8 = &.{},
    /// The newest record read from `pages`, and where its entry ends: once
    /// it is acknowledged, `pages` up to there can go (entries are laid out
    /// in record order).
    copied: ?struct { seq: u64, end: u64 } = null,
    allocator: std.mem.Allocator,

    pub fn open(allocator: std.mem.Allocator, db_path: []const u8) Error!Reader {
        var r = Reader{ .allocator = allocator };
        try r.paths.init(db_path);
        r.fd = try r.paths.create(&r.paths.spool);
        // A reader ships this spool: from now on capture keeps unshipped
        // history (until then a replicator's first snapshot covers it).
        if (try fileio.openIfExists(Paths.z(&r.paths.ack), false)) |fd| fileio.close(fd) else writeAck(&r.paths, .{}) catch |e| {
            fileio.close(r.fd);
            return e;
        };
        r.buf = allocator.alloc(u8, walfmt.frame_header_size + 65536) catch {
            fileio.close(r.fd);
            return error.OutOfMemory;
        };
        return r;
    }

    pub fn close(self: *Reader) void {
        fileio.close(self.fd);
        if (self.wal_fd >= 0) fileio.close(self.wal_fd);
        self.allocator.free(self.buf);
        self.* = undefined;
    }

    pub fn start(self: *Reader) Error!u64 {
        return (try readAck(&self.paths)).next_offset;
    }

    /// The record at offset, or null if none is complete there yet. A bad
    /// record is an error only when a good one follows it: at the tail it is
    /// an append in progress, or one a crash tore, which the next writer
    /// truncates.
    pub fn next(self: *Reader, offset: u64) Error!?Header {
        const size = try fileio.size(self.fd);
        if (try readHeader(self.fd, offset, size)) |h| return h;
        if (try readHeader(self.fd, offset + record_size, size) != null) {
            status.set("spool record at offset {d} is damaged (a valid record follows it)", .{offset});
            return error.Corrupt;
        }
        return null;
    }

    fn walFile(self: *Reader, h: Header) Error!?walread.WalFile {
        for (0..2) |attempt| {
            if (self.wal_fd < 0) self.wal_fd = (try fileio.openIfExists(Paths.z(&self.paths.wal), false)) orelse return null;
            if (try walread.WalFile.open(self.wal_fd)) |wf| {
                if (wf.sameCycle(h.wal_salt1, h.wal_salt2)) return wf;
            }
            // The WAL may have been deleted and created anew: reopen once.
            fileio.close(self.wal_fd);
            self.wal_fd = -1;
            if (attempt == 1) break;
        }
        return null;
    }

    /// Encodes pages [first, first+count) of the record at offset as WAL
    /// frames into out. Busy: the WAL is being rewritten, try again shortly.
    pub fn frames(self: *Reader, offset: u64, h: Header, first: u32, count: u32, chain: *walfmt.Chain, out: []u8) (Error || error{Busy})!void {
        if (@as(u64, first) + count > h.n_pages) return error.Misuse;
        const fsz: usize = walfmt.frame_header_size + h.page_size;
        if (out.len < @as(usize, count) * fsz) return error.BufferTooSmall;
        for (0..2) |_| {
            const mat = try readMat(self.fd, offset, h.seq);
            if (mat.at != 0) {
                self.copied = .{ .seq = h.seq, .end = mat.at - 1 + h.entrySize() };
                return self.framesFromCopy(mat, h, first, count, chain, out);
            }
            if (try self.framesFromWal(h, first, count, chain, out)) return;
        }
        // Not in the WAL (any more) and not copied: the WAL was reset by
        // something that bypassed the extension, or is being rewritten now.
        if (try self.walFile(h) == null) {
            status.set("the pages of transaction {d} are gone: {s}; a new generation is needed", .{ h.seq, self.whyGone(h.seq, "the WAL was reset without the bottomless extension, or the side folder could not take its copy") });
            return error.Corrupt;
        }
        return error.Busy;
    }

    /// Why the pages of record `seq` cannot be read: dropped at the size
    /// limit (the seal says so), else `otherwise`.
    fn whyGone(self: *Reader, seq: u64, otherwise: []const u8) []const u8 {
        const s = (seal.read(Paths.z(&self.paths.seal)) catch null) orelse return otherwise;
        if (s.kind == .dropped and seq <= s.seq) return "were dropped when the side folder reached LIBSQL_BOTTOMLESS_SPOOL_MAX_BYTES";
        return otherwise;
    }

    fn framesFromWal(self: *Reader, h: Header, first: u32, count: u32, chain: *walfmt.Chain, out: []u8) Error!bool {
        const wf = (try self.walFile(h)) orelse return false;
        const fsz: usize = walfmt.frame_header_size + h.page_size;
        var work = chain.*;
        for (0..h.n_pages) |i| {
            const idx: u32 = @intCast(i);
            const fh = (try wf.readFrame(h.firstFrame() + idx, self.buf)) orelse return false;
            if (idx < first or idx >= first + count) continue;
            const f = out[(idx - first) * fsz ..][0..fsz];
            @memcpy(f[walfmt.frame_header_size..], self.buf[walfmt.frame_header_size..][0..h.page_size]);
            const commit = if (idx == h.n_pages - 1) h.db_size else 0;
            walfmt.encodeFrame(f[0..walfmt.frame_header_size], fh.pgno, commit, f[walfmt.frame_header_size..], &work);
        }
        // A restart after we looked at the header may have overwritten what
        // we read: then the frames were copied out first; use the copy.
        if (!try wf.unchanged()) return false;
        chain.* = work;
        return true;
    }

    fn framesFromCopy(self: *Reader, mat: Mat, h: Header, first: u32, count: u32, chain: *walfmt.Chain, out: []u8) Error!void {
        const pages_fd = try fileio.open(Paths.z(&self.paths.pages), false, false);
        defer fileio.close(pages_fd);
        const at = mat.at - 1;
        const fsz: usize = walfmt.frame_header_size + h.page_size;
        var hash = PayloadHash.init(h.seq);
        try hashRange(pages_fd, at, h.entrySize(), self.buf, &hash);
        if (hash.final() != mat.hash) {
            status.set("the copied pages of transaction {d} {s}; a new generation is needed", .{ h.seq, self.whyGone(h.seq, "fail their checksum") });
            return error.Corrupt;
        }
        for (0..count) |j| {
            const i: u32 = first + @as(u32, @intCast(j));
            const f = out[j * fsz ..][0..fsz];
            if (try fileio.preadAll(pages_fd, f, at + @as(u64, i) * fsz) != fsz) return error.Corrupt;
            const pgno = walfmt.FrameHeader.parse(f[0..walfmt.frame_header_size]).pgno;
            const commit = if (i == h.n_pages - 1) h.db_size else 0;
            walfmt.encodeFrame(f[0..walfmt.frame_header_size], pgno, commit, f[walfmt.frame_header_size..], chain);
        }
    }

    pub fn ack(self: *Reader, offset: u64, h: Header) Error!void {
        const prev = try readAck(&self.paths);
        if (h.seq < prev.acked_seq) return;
        try writeAck(&self.paths, .{ .acked_seq = h.seq, .next_offset = offset + record_size, .last_record_offset = offset });
        fileio.punchPrefix(self.fd, offset / 4096 * 4096);
        // Entries in `pages` are in record order: everything up to the end
        // of the newest acknowledged record's entry (it may have been copied
        // after we read it from the WAL) or of the newest one we read from
        // `pages` can go.
        var end: u64 = 0;
        const mat = try readMat(self.fd, offset, h.seq);
        if (mat.at != 0) end = mat.at - 1 + h.entrySize();
        if (self.copied) |c| if (c.seq <= h.seq) {
            end = @max(end, c.end);
            self.copied = null;
        };
        if (end > 0) {
            if (try fileio.openIfExists(Paths.z(&self.paths.pages), true)) |pfd| {
                defer fileio.close(pfd);
                fileio.punchPrefix(pfd, end / 4096 * 4096);
            }
        }
    }

    pub const Stats = struct { records: u64 = 0, bytes: u64 = 0, disk_bytes: u64 = 0, oldest_unix_ms: u64 = 0, last_seq: u64 = 0, acked_seq: u64 = 0, gaps: u64 = 0, dropped_seq: u64 = 0 };

    pub fn stats(self: *Reader) Error!Stats {
        const ack_state = try readAck(&self.paths);
        var s = Stats{ .acked_seq = ack_state.acked_seq, .last_seq = ack_state.acked_seq, .disk_bytes = fileio.diskBytes(self.fd) };
        if (try fileio.openIfExists(Paths.z(&self.paths.pages), false)) |pfd| {
            defer fileio.close(pfd);
            s.disk_bytes += fileio.diskBytes(pfd);
        }
        const size = try fileio.size(self.fd);
        var off = ack_state.next_offset;
        while (try readHeader(self.fd, off, size)) |h| : (off += record_size) {
            if (s.records == 0) s.oldest_unix_ms = h.unix_ms;
            s.records += 1;
            // What shipping it will read: its pages, as frames.
            s.bytes += @as(u64, h.n_pages) * (walfmt.frame_header_size + h.page_size);
            s.last_seq = h.seq;
            if (h.flags & Header.flag_gap_before != 0) s.gaps += 1;
        }
        if (seal.read(Paths.z(&self.paths.seal)) catch null) |sl| {
            if (sl.kind == .dropped and sl.seq > ack_state.acked_seq) s.dropped_seq = sl.seq;
        }
        return s;
    }
};

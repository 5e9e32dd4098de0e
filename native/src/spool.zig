//! The spool: an append-only log of committed transactions in
//! "<db>-bottomless/spool", the durable hand-off between capture (inside
//! SQLite, under its WAL write lock) and the replicator.
//!
//! Record layout (little-endian integers):
//!   header  64 bytes   see Header
//!   pgnos   4*n bytes, padded to a multiple of 8
//!   pages   n * page_size bytes
//!   trailer 8 bytes    trailer_magic, low 32 bits of seq
//! A record whose trailer is missing was torn by a crash; whoever next holds
//! the write lock truncates it. Acknowledged records are hole-punched, except
//! the newest, which keeps the sequence and WAL position readable.
const std = @import("std");
const walfmt = @import("walfmt.zig");
const fileio = @import("fileio.zig");
const status = @import("status.zig");
const Error = status.Error;
const Crc = std.hash.Crc32;
/// Payload checksum: Wyhash over the payload in 4 KiB blocks, chained
/// through the seed. Measured with Zig 0.17 ReleaseFast on this project's
/// machines: Wyhash about 190 ns per 4 KiB, XxHash64 350 ns, while XxHash3
/// and CRC32 take about 11 us (byte at a time), which alone cost a third of
/// a single-row commit. Fixed blocks keep the writer and the reader (which
/// reads in other chunk sizes) in agreement.
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
pub const trailer_size = 8;
const record_magic: u32 = 0x50534c42; // "BLSP"
const trailer_magic: u32 = 0x45534c42; // "BLSE"
const ack_magic: u32 = 0x4b534c42; // "BLSK"
const version: u16 = 1;
/// Transactions up to this size are staged and written with one pwrite.
pub const staging_bytes = 512 << 10;

pub const Header = struct {
    seq: u64,
    unix_ms: u64,
    page_size: u32,
    db_size: u32,
    n_pages: u32,
    wal_salt1: u32,
    wal_salt2: u32,
    wal_commit_frame: u32,
    payload_hash: u64,

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
        std.mem.writeInt(u64, out[48..56], h.payload_hash, .little);
        std.mem.writeInt(u32, out[56..60], Crc.hash(out[0..56]), .little);
    }

    pub fn decode(b: *const [header_size]u8) ?Header {
        if (std.mem.readInt(u32, b[0..4], .little) != record_magic) return null;
        if (std.mem.readInt(u16, b[4..6], .little) != version) return null;
        if (std.mem.readInt(u32, b[56..60], .little) != Crc.hash(b[0..56])) return null;
        const h = Header{
            .seq = std.mem.readInt(u64, b[8..16], .little),
            .unix_ms = std.mem.readInt(u64, b[16..24], .little),
            .page_size = std.mem.readInt(u32, b[24..28], .little),
            .db_size = std.mem.readInt(u32, b[28..32], .little),
            .n_pages = std.mem.readInt(u32, b[32..36], .little),
            .wal_salt1 = std.mem.readInt(u32, b[36..40], .little),
            .wal_salt2 = std.mem.readInt(u32, b[40..44], .little),
            .wal_commit_frame = std.mem.readInt(u32, b[44..48], .little),
            .payload_hash = std.mem.readInt(u64, b[48..56], .little),
        };
        if (h.page_size < 512 or h.page_size > 65536 or h.n_pages == 0) return null;
        return h;
    }

    pub fn pgnoBytes(h: Header) u64 {
        return std.mem.alignForward(u64, @as(u64, h.n_pages) * 4, 8);
    }
    pub fn pagesOffset(h: Header) u64 {
        return header_size + h.pgnoBytes();
    }
    pub fn totalSize(h: Header) u64 {
        return h.pagesOffset() + @as(u64, h.n_pages) * h.page_size + trailer_size;
    }
};

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
    dir: [4096]u8 = undefined,
    spool: [4096]u8 = undefined,
    ack: [4096]u8 = undefined,
    wal: [4096]u8 = undefined,

    pub fn init(self: *Paths, db_path: []const u8) Error!void {
        _ = std.fmt.bufPrintSentinel(&self.dir, "{s}-bottomless", .{db_path}, 0) catch return tooLong(db_path);
        _ = std.fmt.bufPrintSentinel(&self.spool, "{s}-bottomless/spool", .{db_path}, 0) catch return tooLong(db_path);
        _ = std.fmt.bufPrintSentinel(&self.ack, "{s}-bottomless/ack", .{db_path}, 0) catch return tooLong(db_path);
        _ = std.fmt.bufPrintSentinel(&self.wal, "{s}-wal", .{db_path}, 0) catch return tooLong(db_path);
    }
    pub fn z(buf: *const [4096]u8) [*:0]const u8 {
        return @ptrCast(buf);
    }
    fn tooLong(p: []const u8) Error {
        status.set("database path too long ({d} bytes)", .{p.len});
        return error.Misuse;
    }
};

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
    const fd = try fileio.open(Paths.z(&paths.ack), true, true);
    defer fileio.close(fd);
    try fileio.pwriteAll(fd, &b, 0);
    try fileio.sync(fd);
}

/// Reads and checks the record header at offset, including its trailer (so a
/// torn record is never reported complete). Payload checksum is checked by
/// verifyPayload. Returns null when no complete record starts there.
pub fn readHeader(fd: fileio.Fd, offset: u64, file_size: u64) Error!?Header {
    if (offset + header_size > file_size) return null;
    var hb: [header_size]u8 = undefined;
    if (try fileio.preadAll(fd, &hb, offset) != header_size) return null;
    const h = Header.decode(&hb) orelse return null;
    const end = offset + h.totalSize();
    if (end > file_size) return null;
    var tb: [trailer_size]u8 = undefined;
    if (try fileio.preadAll(fd, &tb, end - trailer_size) != trailer_size) return null;
    if (std.mem.readInt(u32, tb[0..4], .little) != trailer_magic) return null;
    if (std.mem.readInt(u32, tb[4..8], .little) != @as(u32, @truncate(h.seq))) return null;
    return h;
}

/// Hash of pages then page numbers, in bounded chunks.
pub fn verifyPayload(fd: fileio.Fd, offset: u64, h: Header, buf: []u8) Error!bool {
    var crc = PayloadHash.init(0);
    const pages_len = @as(u64, h.n_pages) * h.page_size;
    try crcRange(fd, offset + h.pagesOffset(), pages_len, buf, &crc);
    try crcRange(fd, offset + header_size, @as(u64, h.n_pages) * 4, buf, &crc);
    return crc.final() == h.payload_hash;
}

fn crcRange(fd: fileio.Fd, start: u64, len: u64, buf: []u8, crc: *PayloadHash) Error!void {
    var done: u64 = 0;
    while (done < len) {
        const want: usize = @intCast(@min(buf.len, len - done));
        if (try fileio.preadAll(fd, buf[0..want], start + done) != want) return error.Corrupt;
        crc.update(buf[0..want]);
        done += want;
    }
}

/// Walks complete records from offset; returns the newest one found and the
/// end of the last complete record.
pub fn scanTail(fd: fileio.Fd, from: u64, start_last: ?Last) Error!struct { last: ?Last, end: u64 } {
    const file_size = try fileio.size(fd);
    var off = from;
    var last = start_last;
    while (try readHeader(fd, off, file_size)) |h| {
        if (last) |l| if (h.seq != l.seq + 1 and l.offset != off) {
            status.set("spool sequence jumps from {d} to {d} at offset {d}", .{ l.seq, h.seq, off });
            return error.Corrupt;
        };
        last = .{ .seq = h.seq, .offset = off, .wal_salt1 = h.wal_salt1, .wal_salt2 = h.wal_salt2, .wal_commit_frame = h.wal_commit_frame };
        off += h.totalSize();
    }
    return .{ .last = last, .end = off };
}

/// The frames of the transaction in progress, copied as SQLite writes them,
/// so the commit needs no read of the WAL: record header and page numbers
/// at the front, page images from a fixed offset, in frame order.
pub const Stage = struct {
    page_size: u32 = 0,
    first: u32 = 0,
    max_frames: u32 = 0,
    seen: u32 = 0,
    ok: bool = false,

    fn pagesBase(self: *const Stage) usize {
        return header_size + std.mem.alignForward(usize, @as(usize, self.max_frames) * 4, 8);
    }

    pub fn reset(self: *Stage, buf_len: usize, first: u32, page_size: u32) void {
        std.debug.assert(page_size >= 512 and page_size <= 65536);
        self.page_size = page_size;
        self.first = first;
        self.seen = 0;
        const room = buf_len - header_size - trailer_size - 8;
        self.max_frames = @intCast(room / (@as(usize, page_size) + 4));
        self.ok = self.max_frames > 0;
    }

    /// Copies one write of SQLite's into place. Only the shapes SQLite uses
    /// (a 24-byte frame header, a page, or both) are staged; anything else
    /// makes the commit read the frames back from the WAL instead.
    pub fn write(self: *Stage, buf: []u8, frame: u32, within: u64, data: []const u8) void {
        if (!self.ok) return;
        if (frame < self.first or frame - self.first >= self.max_frames) {
            self.ok = false;
            return;
        }
        const idx: usize = frame - self.first;
        const ps: usize = self.page_size;
        const fh = walfmt.frame_header_size;
        if (within == 0 and (data.len == fh or data.len == fh + ps)) {
            const pgno = std.mem.readInt(u32, data[0..4], .big);
            std.mem.writeInt(u32, buf[header_size + idx * 4 ..][0..4], pgno, .little);
            if (data.len == fh + ps) @memcpy(buf[self.pagesBase() + idx * ps ..][0..ps], data[fh..]);
        } else if (within == fh and data.len == ps) {
            @memcpy(buf[self.pagesBase() + idx * ps ..][0..ps], data);
        } else {
            self.ok = false;
            return;
        }
        if (idx + 1 > self.seen) self.seen = @intCast(idx + 1);
    }

    pub fn holds(self: *const Stage, first: u32, commit: u32) bool {
        return self.ok and first == self.first and commit >= first and commit - first + 1 <= self.seen;
    }
};

const IoVec = extern struct { base: [*]const u8, len: usize };
extern "c" fn pwritev(fd: c_int, iov: [*]const IoVec, iovcnt: c_int, offset: i64) isize;

/// The capture side of the spool. One per WAL file handle (writers are
/// serialised by SQLite's WAL write lock); revalidated against the file size
/// at every transaction, since other connections and processes append too.
pub const Writer = struct {
    paths: Paths = .{},
    fd: fileio.Fd = -1,
    wal_fd: fileio.Fd = -1,
    end: u64 = 0,
    last: ?Last = null,
    known: bool = false,
    staging: []u8 = &.{},
    stage: Stage = .{},
    /// Disk reserved ahead of the end (Linux), so appends do not allocate
    /// blocks one commit at a time.
    reserved_to: u64 = 0,
    allocator: std.mem.Allocator,

    pub fn init(allocator: std.mem.Allocator, db_path: []const u8) Error!Writer {
        var w = Writer{ .allocator = allocator };
        try w.paths.init(db_path);
        return w;
    }

    pub fn deinit(self: *Writer) void {
        if (self.fd >= 0) fileio.close(self.fd);
        if (self.wal_fd >= 0) fileio.close(self.wal_fd);
        if (self.staging.len > 0) self.allocator.free(self.staging);
        self.* = undefined;
    }

    fn ensureOpen(self: *Writer) Error!void {
        if (self.fd >= 0) return;
        try fileio.mkdir(Paths.z(&self.paths.dir));
        self.fd = try fileio.open(Paths.z(&self.paths.spool), true, true);
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

    /// Brings `end`/`last` up to date with what others appended, and drops a
    /// torn tail. Must be called with the WAL write lock held.
    pub fn refresh(self: *Writer) Error!void {
        try self.ensureOpen();
        const size = try fileio.size(self.fd);
        if (self.known and size == self.end) return;
        var from: u64 = 0;
        var start_last: ?Last = null;
        if (self.known and size > self.end) {
            from = self.end;
            start_last = self.last;
        } else {
            const ack = try readAck(&self.paths);
            from = ack.last_record_offset;
        }
        const r = try scanTail(self.fd, from, start_last);
        if (r.end < size) {
            // Only a process that died mid-append leaves bytes past the last
            // complete record; we hold the write lock, so it is not running.
            try fileio.truncate(self.fd, r.end);
        }
        self.end = r.end;
        self.last = r.last;
        self.known = true;
    }

    pub fn stageBegin(self: *Writer, first: u32, page_size: u32) void {
        const buf = self.staged() catch {
            self.stage.ok = false;
            return;
        };
        self.stage.reset(buf.len, first, page_size);
    }

    pub fn stageWrite(self: *Writer, frame: u32, within: u64, data: []const u8) void {
        if (self.staging.len == 0) return;
        self.stage.write(self.staging, frame, within, data);
    }

    /// Appends the staged transaction [first, commit] with one pwritev.
    pub fn appendStaged(self: *Writer, salt1: u32, salt2: u32, first: u32, commit: u32, db_size: u32) Error!void {
        std.debug.assert(self.stage.holds(first, commit));
        // upToDate() refreshed at the start of this transaction, and the WAL
        // write lock has kept other appenders out since.
        if (!self.known) try self.refresh();
        const n: u32 = commit - first + 1;
        const ps = self.stage.page_size;
        const seq = if (self.last) |l| l.seq + 1 else (try readAck(&self.paths)).acked_seq + 1;
        var h = Header{
            .seq = seq,
            .unix_ms = timeMs(),
            .page_size = ps,
            .db_size = db_size,
            .n_pages = n,
            .wal_salt1 = salt1,
            .wal_salt2 = salt2,
            .wal_commit_frame = commit,
            .payload_hash = 0,
        };
        const buf = self.staging;
        const pgno_len: usize = @intCast(h.pgnoBytes());
        @memset(buf[header_size + @as(usize, n) * 4 .. header_size + pgno_len], 0);
        const pages = buf[self.stage.pagesBase()..][0 .. @as(usize, n) * ps];
        var hash = PayloadHash.init(0);
        hash.update(pages);
        hash.update(buf[header_size..][0 .. @as(usize, n) * 4]);
        h.payload_hash = hash.final();
        h.encode(buf[0..header_size]);
        var tr: [trailer_size]u8 = undefined;
        std.mem.writeInt(u32, tr[0..4], trailer_magic, .little);
        std.mem.writeInt(u32, tr[4..8], @truncate(seq), .little);
        const iov = [_]IoVec{
            .{ .base = buf.ptr, .len = header_size + pgno_len },
            .{ .base = pages.ptr, .len = pages.len },
            .{ .base = &tr, .len = tr.len },
        };
        const total = h.totalSize();
        const start = self.end;
        try self.reserve(start + total);
        const written = pwritev(self.fd, &iov, iov.len, @intCast(start));
        if (written != @as(isize, @intCast(total))) {
            // Short or failed: fall back to the plain path, which reports why.
            var rec = try self.allocator.alloc(u8, @intCast(total));
            defer self.allocator.free(rec);
            @memcpy(rec[0 .. header_size + pgno_len], buf[0 .. header_size + pgno_len]);
            @memcpy(rec[header_size + pgno_len ..][0..pages.len], pages);
            @memcpy(rec[rec.len - trailer_size ..], &tr);
            try fileio.pwriteAll(self.fd, rec, start);
        }
        self.end = start + total;
        self.last = .{ .seq = seq, .offset = start, .wal_salt1 = salt1, .wal_salt2 = salt2, .wal_commit_frame = commit };
    }

    fn reserve(self: *Writer, upto: u64) Error!void {
        if (upto <= self.reserved_to) return;
        const chunk: u64 = 4 << 20;
        const from = @max(self.end, self.reserved_to);
        fileio.reserve(self.fd, from, upto + chunk - from);
        self.reserved_to = upto + chunk;
    }

    /// True when the spool's newest record is the commit just before frame
    /// `next` of the WAL cycle with these salts: nothing to reconcile.
    pub fn upToDate(self: *Writer, salt1: u32, salt2: u32, next: u32) Error!bool {
        try self.refresh();
        const l = self.last orelse return next <= 1;
        return l.wal_salt1 == salt1 and l.wal_salt2 == salt2 and l.wal_commit_frame + 1 >= next;
    }

    fn staged(self: *Writer) Error![]u8 {
        if (self.staging.len == 0) {
            self.staging = self.allocator.alloc(u8, staging_bytes + walfmt.frame_header_size + 65536) catch {
                status.set("out of memory for the spool staging buffer", .{});
                return error.OutOfMemory;
            };
        }
        return self.staging;
    }

    /// Appends the transaction whose frames are [first, commit] in the WAL
    /// (already written by SQLite). Reads the pages back from the WAL in
    /// bounded chunks.
    pub fn appendFromWal(self: *Writer, wal: fileio.Fd, page_size: u32, salt1: u32, salt2: u32, first: u32, commit: u32, db_size: u32) Error!void {
        std.debug.assert(first >= 1 and commit >= first);
        std.debug.assert(page_size >= 512 and page_size <= 65536);
        try self.refresh();
        const buf = try self.staged();
        const n: u32 = commit - first + 1;
        const seq = if (self.last) |l| l.seq + 1 else (try readAck(&self.paths)).acked_seq + 1;
        var h = Header{
            .seq = seq,
            .unix_ms = timeMs(),
            .page_size = page_size,
            .db_size = db_size,
            .n_pages = n,
            .wal_salt1 = salt1,
            .wal_salt2 = salt2,
            .wal_commit_frame = commit,
            .payload_hash = 0,
        };
        const start = self.end;
        const fsz: u64 = walfmt.frame_header_size + @as(u64, page_size);
        const frame_off = struct {
            fn at(frame: u32, size: u64) u64 {
                return walfmt.header_size + @as(u64, frame - 1) * size;
            }
        }.at;
        const total = h.totalSize();
        if (total <= staging_bytes) {
            // Fast path: assemble the whole record and write it once.
            const rec = buf[0..@intCast(total)];
            const pgnos = rec[header_size..][0..@intCast(h.pgnoBytes())];
            @memset(pgnos, 0);
            const pages = rec[@intCast(h.pagesOffset())..][0 .. @as(usize, n) * page_size];
            // Read all frames into the tail of the record buffer area, one
            // frame at a time straight into place (header into a small buffer).
            var i: u32 = 0;
            var crc = PayloadHash.init(0);
            while (i < n) : (i += 1) {
                var fh: [walfmt.frame_header_size]u8 = undefined;
                const off = frame_off(first + i, fsz);
                if (try fileio.preadAll(wal, &fh, off) != fh.len) return walShort(first + i);
                const page = pages[@as(usize, i) * page_size ..][0..page_size];
                if (try fileio.preadAll(wal, page, off + walfmt.frame_header_size) != page_size) return walShort(first + i);
                std.mem.writeInt(u32, pgnos[i * 4 ..][0..4], walfmt.FrameHeader.parse(&fh).pgno, .little);
            }
            crc.update(pages);
            crc.update(pgnos[0 .. @as(usize, n) * 4]);
            h.payload_hash = crc.final();
            h.encode(rec[0..header_size]);
            const tr = rec[rec.len - trailer_size ..];
            std.mem.writeInt(u32, tr[0..4], trailer_magic, .little);
            std.mem.writeInt(u32, tr[4..8], @truncate(seq), .little);
            try fileio.pwriteAll(self.fd, rec, start);
        } else {
            // Large transaction: copy in chunks; header and trailer last, so a
            // crash leaves a record that readers see as torn.
            var crc = PayloadHash.init(0);
            const per_chunk: u32 = @intCast(@max(1, staging_bytes / fsz));
            var i: u32 = 0;
            while (i < n) {
                const k = @min(per_chunk, n - i);
                const span: usize = @intCast(@as(u64, k) * fsz);
                if (try fileio.preadAll(wal, buf[0..span], frame_off(first + i, fsz)) != span) return walShort(first + i);
                var pg: [4]u8 = undefined;
                for (0..k) |j| {
                    const f = buf[j * @as(usize, @intCast(fsz)) ..][0..@intCast(fsz)];
                    const page = f[walfmt.frame_header_size..];
                    crc.update(page);
                    try fileio.pwriteAll(self.fd, page, start + h.pagesOffset() + @as(u64, i + @as(u32, @intCast(j))) * page_size);
                    std.mem.writeInt(u32, &pg, walfmt.FrameHeader.parse(f[0..walfmt.frame_header_size]).pgno, .little);
                    try fileio.pwriteAll(self.fd, &pg, start + header_size + @as(u64, i + @as(u32, @intCast(j))) * 4);
                }
                i += k;
            }
            // pages then pgnos: re-read the pgno array to extend the CRC in
            // the documented order.
            try crcRange(self.fd, start + header_size, @as(u64, n) * 4, buf, &crc);
            h.payload_hash = crc.final();
            var tr: [trailer_size]u8 = undefined;
            std.mem.writeInt(u32, tr[0..4], trailer_magic, .little);
            std.mem.writeInt(u32, tr[4..8], @truncate(seq), .little);
            try fileio.pwriteAll(self.fd, &tr, start + total - trailer_size);
            var hb: [header_size]u8 = undefined;
            h.encode(&hb);
            try fileio.pwriteAll(self.fd, &hb, start);
        }
        self.end = start + total;
        self.last = .{ .seq = seq, .offset = start, .wal_salt1 = salt1, .wal_salt2 = salt2, .wal_commit_frame = commit };
    }

    fn walShort(frame: u32) Error {
        status.set("WAL frame {d} could not be read back for the spool", .{frame});
        return error.Io;
    }

    /// Appends every transaction committed in the WAL after the newest one
    /// the spool holds, up to frame `limit` (all valid frames when null).
    /// The WAL is read the way SQLite's recovery reads it: frames count while
    /// their salts match the header and the checksum chain holds. Must be
    /// called with the WAL write lock held. Returns the records appended.
    pub fn reconcile(self: *Writer, limit: ?u32) Error!u64 {
        try self.refresh();
        const wal = (try self.walFd()) orelse return 0;
        var hb: [walfmt.header_size]u8 = undefined;
        if (try fileio.preadAll(wal, &hb, 0) != hb.len) return 0;
        const hdr = walfmt.WalHeader.parse(&hb) orelse return 0;
        const fsz: u64 = walfmt.frame_header_size + @as(u64, hdr.page_size);
        var chain = walfmt.Chain{ .salt1 = hdr.salt1, .salt2 = hdr.salt2, .cksum1 = hdr.cksum1, .cksum2 = hdr.cksum2 };
        var frame: u32 = 1;
        if (self.last) |l| {
            if (l.wal_salt1 == hdr.salt1 and l.wal_salt2 == hdr.salt2 and l.wal_commit_frame > 0) {
                if (limit) |lim| if (l.wal_commit_frame >= lim) return 0;
                var fb: [walfmt.frame_header_size]u8 = undefined;
                const off = walfmt.header_size + @as(u64, l.wal_commit_frame - 1) * fsz;
                if (try fileio.preadAll(wal, &fb, off) != fb.len) return 0;
                const fh = walfmt.FrameHeader.parse(&fb);
                if (fh.salt1 != hdr.salt1 or fh.salt2 != hdr.salt2) return 0;
                chain.cksum1 = fh.cksum1;
                chain.cksum2 = fh.cksum2;
                frame = l.wal_commit_frame + 1;
            }
        }
        const buf = try self.staged();
        var txn_first = frame;
        var appended: u64 = 0;
        while (limit == null or frame <= limit.?) : (frame += 1) {
            const off = walfmt.header_size + @as(u64, frame - 1) * fsz;
            const f = buf[0..@intCast(fsz)];
            if (try fileio.preadAll(wal, f, off) != f.len) break;
            const hdr_bytes = f[0..walfmt.frame_header_size];
            if (!walfmt.verifyFrame(hdr_bytes, f[walfmt.frame_header_size..], hdr.big_endian, &chain)) break;
            const fh = walfmt.FrameHeader.parse(hdr_bytes);
            if (fh.db_size != 0) {
                try self.appendFromWal(wal, hdr.page_size, hdr.salt1, hdr.salt2, txn_first, frame, fh.db_size);
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

/// The replicator's side: read records in order, acknowledge, report.
pub const Reader = struct {
    paths: Paths = .{},
    fd: fileio.Fd = -1,
    buf: []u8 = &.{},
    allocator: std.mem.Allocator,

    pub fn open(allocator: std.mem.Allocator, db_path: []const u8) Error!Reader {
        var r = Reader{ .allocator = allocator };
        try r.paths.init(db_path);
        try fileio.mkdir(Paths.z(&r.paths.dir));
        r.fd = try fileio.open(Paths.z(&r.paths.spool), true, true);
        r.buf = allocator.alloc(u8, 1 << 16) catch {
            fileio.close(r.fd);
            return error.OutOfMemory;
        };
        return r;
    }

    pub fn close(self: *Reader) void {
        fileio.close(self.fd);
        self.allocator.free(self.buf);
        self.* = undefined;
    }

    pub fn start(self: *Reader) Error!u64 {
        return (try readAck(&self.paths)).next_offset;
    }

    /// The record at offset with its payload verified, or null if none is
    /// complete there yet.
    pub fn next(self: *Reader, offset: u64) Error!?Header {
        const size = try fileio.size(self.fd);
        const h = (try readHeader(self.fd, offset, size)) orelse {
            if (offset < size and size - offset > header_size) {
                // Something is there but not a complete record: either an
                // append in progress or damage; only the former heals.
                var hb: [header_size]u8 = undefined;
                if (try fileio.preadAll(self.fd, &hb, offset) == header_size and Header.decode(&hb) == null and !std.mem.allEqual(u8, &hb, 0)) {
                    status.set("spool record at offset {d} has a bad header", .{offset});
                    return error.Corrupt;
                }
            }
            return null;
        };
        if (!try verifyPayload(self.fd, offset, h, self.buf)) {
            status.set("spool record {d} at offset {d} fails its checksum", .{ h.seq, offset });
            return error.Corrupt;
        }
        return h;
    }

    /// Encodes pages [first, first+count) of the record at offset as WAL
    /// frames into out.
    pub fn frames(self: *Reader, offset: u64, h: Header, first: u32, count: u32, chain: *walfmt.Chain, out: []u8) Error!void {
        if (@as(u64, first) + count > h.n_pages) return error.Misuse;
        const fsz: usize = walfmt.frame_header_size + h.page_size;
        if (out.len < @as(usize, count) * fsz) return error.BufferTooSmall;
        for (0..count) |j| {
            const i: u32 = first + @as(u32, @intCast(j));
            const f = out[j * fsz ..][0..fsz];
            var pg: [4]u8 = undefined;
            if (try fileio.preadAll(self.fd, &pg, offset + header_size + @as(u64, i) * 4) != 4) return error.Corrupt;
            const page = f[walfmt.frame_header_size..];
            if (try fileio.preadAll(self.fd, page, offset + h.pagesOffset() + @as(u64, i) * h.page_size) != page.len) return error.Corrupt;
            const commit = if (i == h.n_pages - 1) h.db_size else 0;
            walfmt.encodeFrame(f[0..walfmt.frame_header_size], std.mem.readInt(u32, &pg, .little), commit, page, chain);
        }
    }

    pub fn ack(self: *Reader, offset: u64, h: Header) Error!void {
        const prev = try readAck(&self.paths);
        if (h.seq < prev.acked_seq) return;
        try writeAck(&self.paths, .{ .acked_seq = h.seq, .next_offset = offset + h.totalSize(), .last_record_offset = offset });
        fileio.punchPrefix(self.fd, offset / 4096 * 4096);
    }

    pub const Stats = struct { records: u64 = 0, bytes: u64 = 0, disk_bytes: u64 = 0, oldest_unix_ms: u64 = 0, last_seq: u64 = 0, acked_seq: u64 = 0 };

    pub fn stats(self: *Reader) Error!Stats {
        const ack_state = try readAck(&self.paths);
        var s = Stats{ .acked_seq = ack_state.acked_seq, .last_seq = ack_state.acked_seq, .disk_bytes = fileio.diskBytes(self.fd) };
        const size = try fileio.size(self.fd);
        var off = ack_state.next_offset;
        while (try readHeader(self.fd, off, size)) |h| {
            if (s.records == 0) s.oldest_unix_ms = h.unix_ms;
            s.records += 1;
            s.bytes += h.totalSize();
            s.last_seq = h.seq;
            off += h.totalSize();
        }
        return s;
    }
};

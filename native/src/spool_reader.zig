//! The replicator's side of the spool: reads records in order and their
//! pages (from the WAL or their copy in `pages`), acknowledges, reports.
//! Format: spool_format.zig.
const std = @import("std");
const walfmt = @import("walfmt.zig");
const walread = @import("walread.zig");
const format = @import("spool_format.zig");
const spool_ack = @import("spool_ack.zig");
const PayloadHash = @import("payload_hash.zig").PayloadHash;
const fileio = @import("fileio.zig");
const sidefolder = @import("sidefolder.zig");
const seal = @import("seal.zig");
const status = @import("status.zig");
const Error = status.Error;
const Paths = sidefolder.Paths;
const Header = format.Header;
const Mat = format.Mat;
const record_size = format.record_size;
const readHeader = format.readHeader;
const readMat = format.readMat;
const readAck = spool_ack.readAck;
const writeAck = spool_ack.writeAck;

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
        return self.notFound(h);
    }

    /// Not in the WAL (any more) and not copied: the WAL was reset by
    /// something that bypassed the extension (Corrupt), or is being
    /// rewritten now (Busy).
    fn notFound(self: *Reader, h: Header) (Error || error{Busy}) {
        if (try self.walFile(h) == null) {
            status.set("the pages of transaction {d} are gone: {s}; a new generation is needed", .{ h.seq, self.whyGone(h.seq, "the WAL was reset without the bottomless extension, or the side folder could not take its copy") });
            return error.Corrupt;
        }
        return error.Busy;
    }

    /// The record's frames as stored (in the WAL, or its copy) into out,
    /// whole: page numbers in their headers, checksums not recomputed. For
    /// a batch, whose kept frames are re-encoded once duplicates are gone
    /// (batch_pages.Newest): one read per record, and no checksum over
    /// images that are about to be dropped. Busy as frames().
    pub fn rawFrames(self: *Reader, offset: u64, h: Header, out: []u8) (Error || error{Busy})!void {
        const len: usize = @intCast(h.entrySize());
        if (out.len < len) return error.BufferTooSmall;
        const entry = out[0..len];
        for (0..2) |_| {
            const mat = try readMat(self.fd, offset, h.seq);
            if (mat.at != 0) {
                self.copied = .{ .seq = h.seq, .end = mat.at - 1 + h.entrySize() };
                return self.rawFromCopy(mat, h, entry);
            }
            if (try self.rawFromWal(h, entry)) return;
        }
        return self.notFound(h);
    }

    fn rawFromWal(self: *Reader, h: Header, entry: []u8) Error!bool {
        const wf = (try self.walFile(h)) orelse return false;
        if (try fileio.preadAll(wf.fd, entry, wf.frameOffset(h.firstFrame())) != entry.len) return false;
        // A restart after we looked at the header may have overwritten what
        // we read: then the frames were copied out first; use the copy.
        return try wf.unchanged();
    }

    fn rawFromCopy(self: *Reader, mat: Mat, h: Header, entry: []u8) Error!void {
        const pages_fd = try fileio.open(Paths.z(&self.paths.pages), false, false);
        defer fileio.close(pages_fd);
        if (try fileio.preadAll(pages_fd, entry, mat.at - 1) != entry.len) return error.Corrupt;
        var hash = PayloadHash.init(h.seq);
        hash.update(entry);
        if (hash.final() != mat.hash) {
            status.set("the copied pages of transaction {d} {s}; a new generation is needed", .{ h.seq, self.whyGone(h.seq, "fail their checksum") });
            return error.Corrupt;
        }
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

//! The capture side of the spool: appends one record per committed
//! transaction, under SQLite's WAL write lock, and reconciles the spool with
//! the WAL after a crash. Format: spool_format.zig.
const std = @import("std");
const builtin = @import("builtin");
const walfmt = @import("walfmt.zig");
const walread = @import("walread.zig");
const spool_tail = @import("spool_tail.zig");
const format = @import("spool_format.zig");
const spool_ack = @import("spool_ack.zig");
const fileio = @import("fileio.zig");
const sidefolder = @import("sidefolder.zig");
const seal = @import("seal.zig");
const bell = @import("bell.zig");
const status = @import("status.zig");
const log = @import("log.zig");
const Error = status.Error;
const Paths = sidefolder.Paths;
const Header = format.Header;
const record_size = format.record_size;
const trailer_size = format.trailer_size;
const readHeader = format.readHeader;
const readAck = spool_ack.readAck;
const Last = format.Last;

pub fn timeMs() u64 {
    var ts: std.c.timespec = undefined;
    _ = std.c.clock_gettime(std.c.CLOCK.REALTIME, &ts);
    return @as(u64, @intCast(ts.sec)) * 1000 + @as(u64, @intCast(ts.nsec)) / 1_000_000;
}

fn clearTorn(fd: fileio.Fd, at: u64) Error!void {
    var b: [record_size]u8 = undefined;
    const n = try fileio.preadAll(fd, &b, at);
    if (std.mem.allEqual(u8, b[0..n], 0)) return;
    @memset(&b, 0);
    try fileio.pwriteAll(fd, b[0..n], at);
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
    /// Wakes a replicator sleeping on filesystem notifications.
    bell: bell.Bell = .{},
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
        self.bell.deinit();
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
        const record = format.encodeRecord(h);
        const rec = std.mem.asBytes(&record);
        const start = self.end;
        if (self.tail.slot(self.fd, start, record_size)) |dst| {
            // Trailer last, as one aligned store (records start at multiples
            // of 8): a reader never sees it before the rest of the record.
            const body = record_size - trailer_size;
            @memcpy(dst[0..body], rec[0..body]);
            const trailer: *u64 = @ptrCast(@alignCast(dst[body..]));
            @atomicStore(u64, trailer, std.mem.readInt(u64, rec[body..], builtin.cpu.arch.endian()), .release);
        } else {
            try fileio.pwriteAll(self.fd, rec, start);
        }
        self.end = start + record_size;
        self.last = .{ .seq = seq, .offset = start, .wal_salt1 = salt1, .wal_salt2 = salt2, .wal_commit_frame = commit };
        self.bell.ring(&self.paths);
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

//! Materialisation: before SQLite restarts, truncates or deletes the WAL,
//! the frames of every spool record not yet acknowledged are copied out of
//! the WAL into `pages`, and each record's slot is pointed at its copy.
//!
//! This is the one bulk cost capture adds (every frame no replicator
//! acknowledged in time is written twice), so it is done in few system
//! calls: consecutive records are one stretch of the WAL, and their entries
//! one stretch of `pages`, copied in the kernel at once. Their hashes come
//! from reading the WAL a megabyte at a time.
//!
//! Two passes: first every entry is written, then the records' slots are
//! pointed at them. Both the commit path (here, under SQLite's write lock)
//! and the background copier (copier.zig) copy, each holding
//! `pages.lock`: it orders their appends to `pages` and their slot
//! writes, and, since SQLite reuses the WAL only after materialize() has
//! taken it, keeps a restart from happening in the middle of a background
//! copy.
const std = @import("std");
const spool = @import("spool.zig");
const walread = @import("walread.zig");
const fileio = @import("fileio.zig");
const spool_limit = @import("spool_limit.zig");
const seal = @import("seal.zig");
const status = @import("status.zig");
const log = @import("log.zig");
const Error = status.Error;

pub const Outcome = struct {
    copied: u64 = 0,
    /// Unshipped history is (or stays) dropped: the seal must say so.
    dropped: bool = false,
    /// No replicator ever read the spool: nothing in it is needed (the
    /// first generation starts from a snapshot), so it need not be synced.
    unread: bool = false,
};

/// Copies the frames of every unacknowledged record that still lives in the
/// current WAL into `pages`, unless nothing could ship them or the side
/// folder would pass its cap (spool_limit.zig). Write lock held.
pub fn materialize(w: *spool.Writer) Error!Outcome {
    try w.refresh();
    switch (spool_limit.decide(&w.paths)) {
        .copy => {},
        .no_reader => {
            w.mat_from = w.end;
            return .{ .unread = true };
        },
        .dropped => {
            w.mat_from = w.end;
            return .{ .dropped = true };
        },
    }
    const lock = try fileio.lockExclusive(try w.paths.create(&w.paths.pages_lock));
    defer fileio.close(lock);
    const wal = (try w.walFd()) orelse return .{};
    const wf = (try walread.WalFile.open(wal)) orelse return .{};
    // Records before mat_from were seen by an earlier call: copied, or of a
    // cycle that had already ended. Without this every restart would rescan
    // the whole unacknowledged spool.
    const from = @max((try spool.readAck(&w.paths)).next_offset, w.mat_from);
    w.mat_from = w.end;
    if (from >= w.end) return .{};
    const pages = try fileio.openIfExists(spool.Paths.z(&w.paths.pages), true);
    defer if (pages) |p| fileio.close(p);
    // The cycle adds at most the WAL's size.
    const max = spool_limit.maxBytes(&w.paths);
    if (spool_limit.usedBytes(w.fd, pages) + try fileio.size(wal) > max) {
        try drop(w, pages, max);
        return .{ .dropped = true };
    }
    return .{ .copied = try copyRecords(w, wf, from, .write_lock) };
}

/// Frees every unshipped copy and seals the spool as `dropped` through its
/// newest record. Slots still name the punched copies; their hashes fail,
/// and the reader reports the records gone.
fn drop(w: *spool.Writer, pages: ?fileio.Fd, max: u64) Error!void {
    if (pages) |p| {
        const size = try fileio.size(p);
        fileio.punchPrefix(p, std.mem.alignForward(u64, size, 4096));
    }
    const newest: u64 = if (w.last) |l| l.seq else 0;
    try seal.store(&w.paths, .{ .kind = .dropped, .seq = newest });
    if (!w.drop_reported) log.warn("{s}: the side folder would pass {d} bytes ({s}) before a replicator shipped it; unshipped history through transaction {d} is dropped and the next replicator starts a new generation from a snapshot", .{ spool.Paths.z(&w.paths.db), max, spool_limit.variable, newest });
    w.drop_reported = true;
}

pub const Holder = enum {
    /// SQLite's write lock: the WAL cannot change.
    write_lock,
    /// Only `pages.lock`: a writer that bypasses the extension could still
    /// restart the WAL, so the copies count only if it did not.
    background,
};

/// Copies the records in [from, w.end) of the spool whose frames are in the
/// WAL cycle `wf` and that have no copy yet. The caller holds `pages.lock`.
pub fn copyRecords(w: *spool.Writer, wf: walread.WalFile, from: u64, holder: Holder) Error!u64 {
    const wal = wf.fd;
    const pages_fd = try w.paths.create(&w.paths.pages);
    defer fileio.close(pages_fd);
    var window = WalWindow{ .fd = wal, .file_size = try fileio.size(wal), .buf = try w.copyBuf() };
    var run = Run{ .wal = wal, .pages = pages_fd, .dst = try fileio.size(pages_fd), .buf = try w.frameBuf() };
    // Which record went where; the second pass applies exactly these,
    // whatever the replicator acknowledges (and punches) meanwhile.
    const Copy = struct { offset: u64, mat: spool.Mat };
    var copies: std.ArrayList(Copy) = .empty;
    defer copies.deinit(w.allocator);
    var it = try spool.RecordChunks.init(w, from);
    while (try it.next()) |rec| {
        const h = rec.header orelse continue; // acknowledged meanwhile
        if (!wf.sameCycle(h.wal_salt1, h.wal_salt2) or rec.mat.at != 0) continue;
        const off = wf.frameOffset(h.firstFrame());
        const len = h.entrySize();
        if (off + len > window.file_size) {
            // Left without a copy, the record reads as gone, and the
            // replicator starts a new generation rather than ship it wrong.
            if (holder == .background) continue; // materialize() decides
            log.err("transaction {d} is no longer whole in the WAL; a new generation will be needed", .{h.seq});
            continue;
        }
        const hash = try window.hash(off, len, h.seq);
        const at = try run.add(off, len);
        copies.append(w.allocator, .{ .offset = rec.offset, .mat = .{ .at = at + 1, .hash = hash } }) catch return error.OutOfMemory;
    }
    try run.flush();
    if (copies.items.len == 0) return 0;
    // Frames read after a restart would be the new cycle's: unreferenced,
    // such copies are only wasted space.
    if (holder == .background and !try wf.unchanged()) return 0;
    // No fsync of `pages` here: after a power loss a slot may name an entry
    // that did not reach the disk, which its hash exposes (the replicator
    // then starts a new generation from a snapshot). The spool itself is
    // synced by the caller before the WAL is reused.
    var next: usize = 0;
    it = try spool.RecordChunks.init(w, from);
    while (try it.next()) |rec| {
        if (next == copies.items.len) break;
        if (rec.offset != copies.items[next].offset) continue;
        if (rec.header != null) it.setMat(rec, copies.items[next].mat);
        next += 1;
    }
    try it.flush();
    return copies.items.len;
}

/// A stretch of the WAL read into memory with one pread, moved forward as
/// records need: consecutive records lie back to back in the WAL, so one
/// read serves hundreds of small ones.
const WalWindow = struct {
    fd: fileio.Fd,
    file_size: u64,
    buf: []u8,
    start: u64 = 0,
    len: usize = 0,

    /// PayloadHash of the WAL's bytes [off, off+len), which the file holds.
    fn hash(self: *WalWindow, off: u64, len: u64, seed: u64) Error!u64 {
        std.debug.assert(off + len <= self.file_size);
        var h = spool.PayloadHash.init(seed);
        var pos = off;
        const end = off + len;
        while (pos < end) {
            if (pos < self.start or pos >= self.start + self.len) {
                const want: usize = @intCast(@min(self.buf.len, self.file_size - pos));
                self.len = try fileio.preadAll(self.fd, self.buf[0..want], pos);
                self.start = pos;
                if (self.len == 0) {
                    status.set("the WAL shrank under the write lock while it was copied", .{});
                    return error.Io;
                }
            }
            const have = self.buf[@intCast(pos - self.start)..self.len];
            const take = have[0..@intCast(@min(have.len, end - pos))];
            h.update(take);
            pos += take.len;
        }
        return h.final();
    }
};

/// A stretch of the WAL waiting to be copied to the end of `pages`.
const Run = struct {
    wal: fileio.Fd,
    pages: fileio.Fd,
    /// Where the stretch lands in `pages`.
    dst: u64,
    src: u64 = 0,
    len: u64 = 0,
    /// For systems that cannot copy in the kernel.
    buf: []u8,

    /// Adds the WAL's bytes [off, off+len); returns where they land.
    fn add(self: *Run, off: u64, len: u64) Error!u64 {
        if (self.len > 0 and off != self.src + self.len) try self.flush();
        if (self.len == 0) self.src = off;
        const at = self.dst + self.len;
        self.len += len;
        return at;
    }

    fn flush(self: *Run) Error!void {
        if (self.len == 0) return;
        try fileio.copyRange(self.wal, self.src, self.pages, self.dst, self.len, self.buf);
        self.dst += self.len;
        self.len = 0;
    }
};

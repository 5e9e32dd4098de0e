//! The background copier: copies the frames of fresh spool records out of
//! the WAL on a thread of its own, so that when SQLite next restarts the WAL
//! the commit path (materialize) finds little or nothing left to copy.
//!
//! It runs only while copying is needed: a WAL capture starts it when a
//! restart had to copy unshipped frames (the replicator is not keeping up,
//! or not running), and it stops after a quiet spell or with the
//! connection. When the replicator acknowledges records before SQLite
//! reuses the WAL, no copy is needed and the copier never starts, so pages
//! are not written twice for nothing.
//!
//! It never takes SQLite's locks and never changes the spool's records,
//! only their copy slots, under `pages.lock` (see materialize.zig), and it
//! never clears a torn record: at the end of the spool that may be an
//! append in progress.
const std = @import("std");
const spool = @import("spool.zig");
const walread = @import("walread.zig");
const materialize = @import("materialize.zig");
const spool_limit = @import("spool_limit.zig");
const fileio = @import("fileio.zig");
const status = @import("status.zig");
const log = @import("log.zig");
const Error = status.Error;

/// How long the copier waits between looks at the spool: short while
/// commits pour in, longer when few do (each look costs a few system calls,
/// worth paying for a batch, not for a record or two).
const busy_pause_ns = 1_000_000;
const calm_pause_ns = 8_000_000;
/// A look that finds fewer records than this counts as calm.
const calm_records = 16;
/// The copier stops after this long without a new record.
const quiet_limit_ns = 2_000_000_000;
/// Records copied per hold of `pages.lock`, which materialize() may be
/// waiting for on the commit path.
const batch_records = 512;

pub const Copier = struct {
    writer: spool.Writer,
    thread: std.Thread = undefined,
    stop: std.atomic.Value(bool) = .init(false),
    finished: std.atomic.Value(bool) = .init(false),
    /// Threads do not survive fork(): a child must not join its parent's.
    owner: std.c.pid_t,
    /// Next spool offset to look at.
    pos: u64,

    /// Starts a copier for the spool at `paths` from offset `from`
    /// (the end of what the commit path has just copied). Null when it
    /// cannot; the commit path then copies everything itself, as before.
    pub fn start(paths: *const spool.Paths, from: u64) ?*Copier {
        const self = std.heap.c_allocator.create(Copier) catch return null;
        self.* = .{
            .writer = .{ .allocator = std.heap.c_allocator, .paths = paths.* },
            .owner = std.c.getpid(),
            .pos = from,
        };
        self.thread = std.Thread.spawn(.{ .stack_size = 256 * 1024 }, run, .{self}) catch {
            log.warn("could not start the background copier; restarts of the WAL copy everything themselves", .{});
            self.writer.deinit();
            std.heap.c_allocator.destroy(self);
            return null;
        };
        return self;
    }

    /// Whether it stopped by itself (quiet, or an error).
    pub fn done(self: *const Copier) bool {
        return self.finished.load(.acquire);
    }

    /// Stops the thread, waits for it and frees the copier.
    pub fn destroy(self: *Copier) void {
        if (std.c.getpid() != self.owner) return; // a forked child: not ours to join or free
        self.stop.store(true, .release);
        self.thread.join();
        self.writer.deinit();
        std.heap.c_allocator.destroy(self);
    }

    fn run(self: *Copier) void {
        var quiet_ns: u64 = 0;
        while (!self.stop.load(.acquire) and quiet_ns < quiet_limit_ns) {
            const taken = (self.step() catch {
                log.warn("background copier stopped: {s}", .{std.mem.span(status.message())});
                break;
            }) orelse break;
            const pause: u64 = if (taken >= batch_records) 0 else if (taken >= calm_records) busy_pause_ns else calm_pause_ns;
            quiet_ns = if (taken > 0) 0 else quiet_ns + pause;
            if (pause > 0) {
                const ts = std.c.timespec{ .sec = 0, .nsec = @intCast(pause) };
                _ = std.c.nanosleep(&ts, null);
            }
        }
        self.finished.store(true, .release);
    }

    /// Copies the complete records after pos (up to a batch), except the
    /// newest: SQLite may still be rewriting the frame headers of the
    /// transaction it just committed (walRewriteChecksums runs after the
    /// commit frame is written), and only a later commit proves it done.
    /// Returns how many records it took on; null when copying is no longer
    /// wanted (spool_limit.zig: the restart decides what to drop).
    fn step(self: *Copier) Error!?u64 {
        const w = &self.writer;
        try w.ensureOpen();
        if (spool_limit.decide(&w.paths) != .copy) return null;
        const r = try spool.scanTail(w.fd, self.pos, null, self.pos + (batch_records + 1) * spool.record_size);
        if (r.end < self.pos + 2 * spool.record_size) return 0;
        const end = r.end - spool.record_size;
        const newest = r.last.?; // the cycle the WAL should be in
        {
            const lock = try fileio.lockExclusive(try w.paths.create(&w.paths.pages_lock));
            defer fileio.close(lock);
            if (try self.walOf(newest)) |wf| {
                const pages = try fileio.openIfExists(spool.Paths.z(&w.paths.pages), false);
                defer if (pages) |p| fileio.close(p);
                if (spool_limit.usedBytes(w.fd, pages) + try fileio.size(wf.fd) > spool_limit.maxBytes(&w.paths)) return null;
                w.end = end; // what copyRecords walks; never refresh(): see above
                const from = @max((try spool.readAck(&w.paths)).next_offset, self.pos);
                if (from < end) _ = try materialize.copyRecords(w, wf, from, .background);
            }
        }
        const taken = (end - self.pos) / spool.record_size;
        self.pos = end;
        return taken;
    }

    /// The WAL holding the cycle of record `rec`, reopened when the file was
    /// replaced (the last connection deletes it on close); null when the
    /// cycle is no longer there.
    fn walOf(self: *Copier, rec: spool.Last) Error!?walread.WalFile {
        const w = &self.writer;
        for (0..2) |_| {
            const fd = (try w.walFd()) orelse return null;
            if (try walread.WalFile.open(fd)) |wf| {
                if (wf.sameCycle(rec.wal_salt1, rec.wal_salt2)) return wf;
            }
            w.closeWal();
        }
        return null;
    }
};

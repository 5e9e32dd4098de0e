//! Capture: watches SQLite's writes to one -wal file and turns every
//! committed transaction into one spool record, exactly once.
//!
//! SQLite writes a transaction's frames after the last committed frame
//! (mxFrame), may overwrite its own uncommitted frames in place, and marks
//! the last frame of a commit with the database size. When the page of that
//! commit frame has been written, a record naming the frames [first, commit]
//! is appended to the spool. Frames of a transaction or savepoint that rolls
//! back are overwritten later and never named.
//!
//! Before SQLite discards WAL content (restart at offset 0, truncate,
//! delete), secureWal() appends any commit the spool lacks (a crash between
//! the WAL write and the spool append), copies the pages of unshipped
//! records out of the WAL and syncs the spool, so the WAL is the spool's
//! source until that moment.
const std = @import("std");
const walfmt = @import("walfmt.zig");
const spool = @import("spool.zig");
const materialize = @import("materialize.zig").materialize;
const seal_mod = @import("seal.zig");
const problems = @import("problems.zig");
const Copier = @import("copier.zig").Copier;
const wal_hold = @import("wal_hold.zig");
const status = @import("status.zig");
const log = @import("log.zig");
const fileio = @import("fileio.zig");
const Error = status.Error;

pub const WalCapture = struct {
    writer: spool.Writer,
    page_size: u32 = 0,
    salt1: u32 = 0,
    salt2: u32 = 0,
    txn_active: bool = false,
    txn_first: u32 = 0,
    pending_commit: u32 = 0,
    pending_db_size: u32 = 0,
    /// Highest frame of this WAL cycle already captured: writes at or below
    /// it outside a transaction are SQLite rewriting checksums, not new data.
    last_commit_frame: u32 = 0,
    /// Last write-lock epoch of the main database seen; a change means a new
    /// write transaction began (after a rollback, say).
    epoch: u64 = 0,
    /// Whether this capture may start a background copier (a WAL handle
    /// SQLite keeps open, not a one-off check before deleting the WAL).
    copy_ahead: bool = false,
    copier: ?*Copier = null,
    /// Keeps SQLite from reusing WAL frames not yet shipped (wal_hold.zig).
    hold: wal_hold.Hold = .{},
    /// A capture step failed and was logged; the next failure is not (one
    /// line per episode, not per commit), the next success says so.
    failing: bool = false,

    pub fn init(db_path: []const u8) Error!WalCapture {
        return .{ .writer = try spool.Writer.init(std.heap.c_allocator, db_path) };
    }

    pub fn deinit(self: *WalCapture) void {
        if (self.copier) |cp| cp.destroy();
        self.hold.deinit();
        self.writer.deinit();
    }

    /// Logs a capture failure (status.message() says what failed) once
    /// per episode. SQLite's write goes ahead regardless.
    pub fn problem(self: *WalCapture, comptime what: []const u8, args: anytype) void {
        if (self.failing) return;
        self.failing = true;
        if (!problems.start(std.mem.span(spool.Paths.z(&self.writer.paths.db)))) return;
        var buf: [512]u8 = undefined;
        const text = std.fmt.bufPrint(&buf, what, args) catch what;
        log.err("{s}: {s} ({s}); SQLite goes on: what the WAL still holds is captured later, anything lost is covered by a new generation from a snapshot", .{ spool.Paths.z(&self.writer.paths.db), text, std.mem.span(status.message()) });
    }

    /// The WAL's content was secured again: the episode is over.
    fn recovered(self: *WalCapture) void {
        // Also when this handle never failed: another one (or the check
        // before a delete) may have started the episode.
        self.failing = false;
        if (problems.end(std.mem.span(spool.Paths.z(&self.writer.paths.db)))) log.warn("{s}: capture works again", .{spool.Paths.z(&self.writer.paths.db)});
    }

    /// A new write transaction starts (libSQL's xBeginWriteTransaction, or
    /// the main file's WAL write lock being taken).
    pub fn beginTransaction(self: *WalCapture) void {
        self.txn_active = false;
        self.pending_commit = 0;
    }

    pub fn observeEpoch(self: *WalCapture, epoch: u64) void {
        if (epoch != self.epoch) {
            self.epoch = epoch;
            self.beginTransaction();
        }
    }

    /// Whether SQLite must not checkpoint or restart the WAL `wal` now
    /// (wal_hold.zig): only a WAL handle SQLite keeps open holds it.
    pub fn holdsWal(self: *WalCapture, wal: wal_hold.Wal) bool {
        if (!self.copy_ahead or self.writer.fd < 0) return false;
        const held = self.hold.wanted(&self.writer.paths, self.writer.fd, self.writer.last, wal);
        // Half way to the hold's size and still far behind: the hold may
        // well end at its size, and the restart then would copy all that is
        // unshipped under the write lock. Copy it in the background
        // meanwhile, from the first unacknowledged record.
        if (held and !self.hold.covers(wal.page_size, wal.mx_frame *| 2)) self.startCopier(self.hold.ack.next_offset);
        return held;
    }

    /// Reads the current WAL header (another process may have restarted the
    /// WAL since we last looked).
    fn loadHeader(self: *WalCapture) Error!bool {
        const fd = (try self.writer.walFd()) orelse return false;
        var hb: [walfmt.header_size]u8 = undefined;
        if (try fileio.preadAll(fd, &hb, 0) != hb.len) return false;
        const h = walfmt.WalHeader.parse(&hb) orelse return false;
        if (h.salt1 != self.salt1 or h.salt2 != self.salt2) self.last_commit_frame = 0;
        self.page_size = h.page_size;
        self.salt1 = h.salt1;
        self.salt2 = h.salt2;
        return true;
    }

    /// What SQLite does to the WAL after secureWal.
    pub const Ending = union(enum) {
        /// Writes a new header: the cycle with these salts begins.
        header: ?struct { salt1: u32, salt2: u32 },
        /// Truncates or deletes it.
        emptied,
    };

    /// Everything committed in the WAL reaches the spool, which is then made
    /// durable and sealed (seal.zig): called before SQLite discards WAL
    /// content.
    pub fn secureWal(self: *WalCapture, ending: Ending) Error!void {
        const closing = try self.closingContent();
        const n = try self.writer.reconcile(null);
        if (n > 0) log.warn("recovered {d} committed transaction(s) from the WAL into the spool", .{n});
        const outcome = try materialize(&self.writer);
        const copied = outcome.copied;
        if (copied > 0) log.info("copied the pages of {d} unshipped transaction(s) out of the WAL before SQLite reuses it", .{copied});
        // What SQLite syncs before it reuses the WAL (the database, at the
        // checkpoint), we sync too: the spool's records and the slots naming
        // their copies. A spool no replicator ever read holds nothing anyone
        // needs, and this fdatasync was the VFS's one system call per WAL
        // cycle beyond SQLite's own.
        if (!outcome.unread) try self.writer.sync();
        if (!outcome.dropped and seal_mod.proven(&self.writer.paths, self.writer.last, closing)) {
            const newest: u64 = if (self.writer.last) |l| l.seq else 0;
            switch (ending) {
                .header => |h| if (h) |salts| try seal_mod.store(&self.writer.paths, .{ .kind = .next, .seq = newest, .salt1 = salts.salt1, .salt2 = salts.salt2 }),
                .emptied => try seal_mod.store(&self.writer.paths, .{ .kind = .emptied, .seq = newest, .db = seal_mod.Identity.of(spool.Paths.z(&self.writer.paths.db)) }),
            }
        }
        // The replicator did not keep up with this cycle even while the WAL
        // was held (or nothing holds it): copy the next one in the
        // background as it is written. A short unshipped tail, copied when
        // a held WAL is reused, is no reason to copy everything.
        if (copied > 0 and self.copy_ahead and !self.hold.covers(self.page_size, self.last_commit_frame)) self.startCopier(self.writer.end);
        self.recovered();
    }

    /// The WAL's current cycle, read before SQLite changes it.
    fn closingContent(self: *WalCapture) Error!seal_mod.Closing {
        const fd = (try self.writer.walFd()) orelse return .empty;
        var hb: [walfmt.header_size]u8 = undefined;
        if (try fileio.preadAll(fd, &hb, 0) != hb.len) return .empty;
        const h = walfmt.WalHeader.parse(&hb) orelse return .empty;
        return .{ .cycle = .{ .salt1 = h.salt1, .salt2 = h.salt2 } };
    }

    /// Starts the background copier at spool offset `from`, unless it runs.
    fn startCopier(self: *WalCapture, from: u64) void {
        if (self.copier) |cp| {
            if (!cp.done()) return;
            cp.destroy();
            self.copier = null;
        }
        self.copier = Copier.start(&self.writer.paths, from);
    }

    /// Called before SQLite's write reaches the WAL file. An error never
    /// fails the write (the application always wins): the caller logs it,
    /// and the seal lets the next working capture flag the gap.
    pub fn beforeWrite(self: *WalCapture, data: []const u8, offset: u64) Error!void {
        if (offset == 0) {
            // A new WAL header: restart (or first use). Capture the old
            // cycle's commits first; the new cycle's transaction starts at 1.
            const new = if (data.len >= walfmt.header_size) walfmt.WalHeader.parse(data[0..walfmt.header_size]) else null;
            const secured = self.secureWal(.{ .header = if (new) |h| .{ .salt1 = h.salt1, .salt2 = h.salt2 } else null });
            if (new) |h| {
                self.page_size = h.page_size;
                self.salt1 = h.salt1;
                self.salt2 = h.salt2;
            }
            self.last_commit_frame = 0;
            self.txn_active = true;
            self.txn_first = 1;
            self.pending_commit = 0;
            return secured;
        }
        if (self.page_size == 0) {
            if (!try self.loadHeader()) return;
        }
        if (offset < walfmt.header_size) return;
        var caught_up: Error!void = {};
        const fsz: u64 = walfmt.frame_header_size + @as(u64, self.page_size);
        const rel = offset - walfmt.header_size;
        const frame: u32 = @intCast(rel / fsz + 1);
        const within = rel % fsz;
        if (!self.txn_active) {
            // The salts of the cycle come with every frame header SQLite
            // writes; read the WAL header only when this write has none.
            if (within == 0 and data.len >= 16) {
                const s1 = std.mem.readInt(u32, data[8..12], .big);
                const s2 = std.mem.readInt(u32, data[12..16], .big);
                if (s1 != self.salt1 or s2 != self.salt2) {
                    self.salt1 = s1;
                    self.salt2 = s2;
                    self.last_commit_frame = 0; // another connection restarted the WAL
                }
            } else if (!try self.loadHeader()) return;
            if (frame <= self.last_commit_frame) return; // checksum rewrite
            self.txn_active = true;
            self.txn_first = frame;
            self.pending_commit = 0;
            // The spool must hold every commit before this transaction; it
            // lacks some only after a crash or a writer without the VFS.
            // Failing that, the commit at the end of this write must still
            // be seen: the error is returned after it.
            caught_up = self.catchUp(frame);
        }
        if (frame < self.txn_first) self.txn_first = frame;
        if (within == 0 and data.len >= 8) {
            const db_size = std.mem.readInt(u32, data[4..8], .big);
            if (db_size != 0) {
                self.pending_commit = frame;
                self.pending_db_size = db_size;
            } else if (self.pending_commit == frame) {
                self.pending_commit = 0;
            }
        }
        return caught_up;
    }

    fn catchUp(self: *WalCapture, frame: u32) Error!void {
        if (!try self.writer.upToDate(self.salt1, self.salt2, frame)) {
            const n = try self.writer.reconcile(frame - 1);
            if (n > 0) log.warn("recovered {d} committed transaction(s) from the WAL into the spool", .{n});
        }
    }

    /// Called after SQLite's write reached the WAL. When it completed a
    /// commit frame, the transaction goes to the spool. A failure here cannot
    /// undo the commit, so it is logged and repaired by reconcile() at the
    /// next transaction or checkpoint.
    pub fn afterWrite(self: *WalCapture, len: usize, offset: u64) void {
        if (self.pending_commit == 0 or offset < walfmt.header_size) return;
        const fsz: u64 = walfmt.frame_header_size + @as(u64, self.page_size);
        const frame_end = walfmt.header_size + @as(u64, self.pending_commit) * fsz;
        if (offset + len != frame_end) return;
        const commit = self.pending_commit;
        self.pending_commit = 0;
        self.txn_active = false;
        self.last_commit_frame = commit;
        self.writer.append(self.page_size, self.salt1, self.salt2, self.txn_first, commit, self.pending_db_size) catch {
            self.problem("could not append the commit at WAL frame {d} to the spool", .{commit});
            // Make the next transaction's reconcile see the gap.
            self.writer.known = false;
            return;
        };
    }

    /// SQLite truncates the WAL (TRUNCATE checkpoint, journal_size_limit).
    pub fn beforeTruncate(self: *WalCapture) Error!void {
        try self.secureWal(.emptied);
    }

    pub fn afterTruncate(self: *WalCapture) void {
        self.last_commit_frame = 0;
        self.page_size = 0;
        self.salt1 = 0;
        self.salt2 = 0;
        self.txn_active = false;
        self.writer.closeWal();
    }
};

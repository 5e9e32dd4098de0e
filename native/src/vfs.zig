//! The "bottomless" VFS: a shim over the host's default VFS. Every file is
//! forwarded untouched; the -wal file of a database additionally feeds
//! capture, and the main file reports when the WAL write lock is taken.
const std = @import("std");
const builtin = @import("builtin");
const native_endian = builtin.cpu.arch.endian();
const sqlite = @import("sqlite.zig");
const capture = @import("capture.zig");
const wal_hold = @import("wal_hold.zig");
const spool = @import("spool.zig");
const status = @import("status.zig");
const log = @import("log.zig");
const sidefolder = @import("sidefolder.zig");
const wal_handles = @import("wal_handles.zig");
const autostart = @import("autostart.zig");

pub const name = "bottomless";

const Kind = enum(u8) { main, wal, other };

/// Our file object; the real VFS's file object follows it in the same
/// allocation (SQLite allocates szOsFile bytes for us).
const BFile = extern struct {
    base: sqlite.File,
    real: *sqlite.File,
    kind: Kind,
    /// Main db: bumped every time this connection takes the WAL write lock.
    write_epoch: u64,
    /// WAL: capture state, and the main db's file object when it is ours.
    cap: ?*capture.WalCapture,
    main: ?*BFile,
    lib: *Registration,
    /// Main db: its path (SQLite keeps the name alive until xClose).
    path: ?[*:0]const u8 = null,
    /// Main db: page 0 of the wal-index (its header), once mapped.
    shm0: ?*anyopaque = null,
    /// Main db: what this connection's read transaction sees of the WAL,
    /// from the wal-index header at the moment its read lock was granted.
    view: ReadView = .{},
    /// Main db: this connection holds the WAL write lock, and has rebuilt
    /// the wal-index (recovery after a crash) while holding it.
    holds_write: bool = false,
    recovered: bool = false,
    /// Main db: the WAL file object SQLite opened for this connection,
    /// when it is ours.
    wal: ?*BFile = null,
    /// Main db: this connection holds SQLite's EXCLUSIVE lock on the
    /// database file (it is closing, or in exclusive locking mode).
    exclusive: bool = false,
    /// Main db: this connection holds the checkpoint lock (it checkpoints).
    holds_ckpt: bool = false,
};

/// The WAL as one read transaction sees it: the cycle (salts as in the WAL
/// header) and the last frame it reads (mxFrame, always a commit).
pub const ReadView = extern struct {
    salt1: u32 = 0,
    salt2: u32 = 0,
    mx_frame: u32 = 0,
    valid: bool = false,
};

pub const read_view_pragma = "bottomless_read_position";

const header_bytes = std.mem.alignForward(usize, @sizeOf(BFile), 16);

/// One per SQLite library in the process (Python's libsqlite3 and apsw's
/// bundled copy can coexist), since a VFS struct is linked into one library.
pub const Registration = struct {
    vfs: sqlite.Vfs,
    real: *sqlite.Vfs,
    fns: sqlite.Fns,
    used: std.atomic.Value(bool) = std.atomic.Value(bool).init(false),
};

var registrations: [8]Registration = undefined;
var registration_count = std.atomic.Value(usize).init(0);
var registry_lock: std.c.pthread_mutex_t = std.c.PTHREAD_MUTEX_INITIALIZER;

fn regOf(vfs: *sqlite.Vfs) *Registration {
    return @fieldParentPtr("vfs", vfs);
}

/// Registers the VFS into the library `fns` belongs to; a no-op when it is
/// there already. Returns the registration (also used by the libSQL door).
pub fn register(fns: sqlite.Fns) status.Error!*Registration {
    _ = std.c.pthread_mutex_lock(&registry_lock);
    defer _ = std.c.pthread_mutex_unlock(&registry_lock);
    if (fns.vfs_find(name)) |existing| {
        for (registrations[0..registration_count.load(.acquire)]) |*r| {
            if (&r.vfs == existing) return r;
        }
        status.set("another VFS named \"bottomless\" is already registered", .{});
        return error.Misuse;
    }
    const real = fns.vfs_find(null) orelse {
        status.set("the host has no default VFS", .{});
        return error.Unsupported;
    };
    const n = registration_count.load(.acquire);
    if (n == registrations.len) {
        status.set("too many SQLite libraries in one process", .{});
        return error.Unsupported;
    }
    const r = &registrations[n];
    r.* = .{ .vfs = real.*, .real = real, .fns = fns };
    r.vfs.iVersion = @min(real.iVersion, 3);
    r.vfs.szOsFile = @intCast(header_bytes + @as(usize, @intCast(real.szOsFile)));
    r.vfs.pNext = null;
    r.vfs.zName = name;
    r.vfs.xOpen = &xOpen;
    r.vfs.xDelete = &xDelete;
    const rc = fns.vfs_register(&r.vfs, 0);
    if (rc != sqlite.OK) {
        status.set("sqlite3_vfs_register failed with code {d}", .{rc});
        return error.Unsupported;
    }
    registration_count.store(n + 1, .release);
    return r;
}

fn realOf(f: *sqlite.File) *sqlite.File {
    return @ptrFromInt(@intFromPtr(f) + header_bytes);
}

fn bfile(f: *sqlite.File) *BFile {
    return @ptrCast(@alignCast(f));
}

fn isWalName(p: []const u8) bool {
    return std.mem.endsWith(u8, p, "-wal");
}

fn xOpen(vfs: *sqlite.Vfs, zname: ?[*:0]const u8, file: *sqlite.File, flags: c_int, out_flags: ?*c_int) callconv(.c) c_int {
    const reg = regOf(vfs);
    const bf = bfile(file);
    const real = realOf(file);
    bf.* = .{ .base = .{ .methods = null }, .real = real, .kind = .other, .write_epoch = 0, .cap = null, .main = null, .lib = reg };
    if (flags & sqlite.OPEN_MAIN_DB != 0) {
        if (zname) |z| autostart.beforeMainDbOpen(std.mem.span(z));
    }
    const rc = reg.real.xOpen.?(reg.real, zname, real, flags, out_flags);
    if (rc != sqlite.OK or real.methods == null) return rc;
    if (flags & sqlite.OPEN_MAIN_DB != 0) {
        bf.kind = .main;
        bf.path = zname;
    } else if (flags & sqlite.OPEN_WAL != 0 and zname != null) {
        const path = std.mem.span(zname.?);
        if (isWalName(path)) {
            bf.kind = .wal;
            const cap = std.heap.c_allocator.create(capture.WalCapture) catch {
                _ = real.methods.?.xClose.?(real);
                return sqlite.IOERR_NOMEM;
            };
            cap.* = capture.WalCapture.init(path[0 .. path.len - 4]) catch {
                // The application wins: the WAL works, uncaptured.
                std.heap.c_allocator.destroy(cap);
                log.err("cannot capture {s}: {s}; SQLite goes on without a backup of it", .{ path, std.mem.span(status.message()) });
                bf.base.methods = &io_methods;
                return rc;
            };
            cap.copy_ahead = true;
            bf.cap = cap;
            if (reg.fns.database_file_object) |dfo| {
                if (dfo(zname.?)) |mf| {
                    if (mf.methods == &io_methods) {
                        bf.main = bfile(mf);
                        bfile(mf).wal = bf;
                    }
                }
            }
            wal_handles.noteOpened(bf);
        }
    }
    bf.base.methods = &io_methods;
    return rc;
}

fn xDelete(vfs: *sqlite.Vfs, zname: [*:0]const u8, sync_dir: c_int) callconv(.c) c_int {
    const reg = regOf(vfs);
    const path = std.mem.span(zname);
    if (isWalName(path)) secureBeforeDelete(path[0 .. path.len - 4]);
    // Whatever capture managed, the delete SQLite asked for happens and
    // SQLite gets the real VFS's answer.
    return reg.real.xDelete.?(reg.real, zname, sync_dir);
}

/// The last connection deletes the WAL after checkpointing it, under an
/// exclusive lock: the spool takes all of it first. Only a database whose
/// WAL was captured has a side folder; nothing is created for another.
fn secureBeforeDelete(db_path: []const u8) void {
    var cap = capture.WalCapture.init(db_path) catch return;
    defer cap.deinit();
    if (!sidefolder.exists(spool.Paths.z(&cap.writer.paths.dir))) return;
    cap.secureWal(.emptied) catch cap.problem("could not secure the WAL before SQLite deleted it", .{});
}

// ---- io methods: forward everything, observe WAL writes -------------------

fn m(f: *sqlite.File) *const sqlite.IoMethods {
    return bfile(f).real.methods.?;
}

fn ioClose(f: *sqlite.File) callconv(.c) c_int {
    const bf = bfile(f);
    const rc = m(f).xClose.?(bf.real);
    if (bf.main) |main| {
        if (main.wal == bf) main.wal = null;
    }
    if (bf.cap) |cap| {
        wal_handles.noteClosed(bf);
        cap.deinit();
        std.heap.c_allocator.destroy(cap);
        bf.cap = null;
    }
    return rc;
}

fn ioRead(f: *sqlite.File, buf: ?*anyopaque, amt: c_int, off: i64) callconv(.c) c_int {
    return m(f).xRead.?(bfile(f).real, buf, amt, off);
}

fn ioWrite(f: *sqlite.File, buf: ?*const anyopaque, amt: c_int, off: i64) callconv(.c) c_int {
    const bf = bfile(f);
    const cap = bf.cap orelse return m(f).xWrite.?(bf.real, buf, amt, off);
    std.debug.assert(amt >= 0 and off >= 0);
    const data: []const u8 = if (buf) |p| @as([*]const u8, @ptrCast(p))[0..@intCast(amt)] else &.{};
    if (bf.main) |mf| cap.observeEpoch(mf.write_epoch);
    cap.beforeWrite(data, @intCast(off)) catch cap.problem("capture failed before a WAL write", .{});
    const rc = m(f).xWrite.?(bf.real, buf, amt, off);
    if (rc == sqlite.OK) cap.afterWrite(data.len, @intCast(off));
    return rc;
}

fn ioTruncate(f: *sqlite.File, size: i64) callconv(.c) c_int {
    const bf = bfile(f);
    if (bf.cap) |cap| {
        cap.beforeTruncate() catch cap.problem("could not secure the WAL before SQLite truncated it", .{});
    }
    const rc = m(f).xTruncate.?(bf.real, size);
    if (bf.cap) |cap| if (rc == sqlite.OK) cap.afterTruncate();
    return rc;
}

fn ioSync(f: *sqlite.File, flags: c_int) callconv(.c) c_int {
    return m(f).xSync.?(bfile(f).real, flags);
}
fn ioFileSize(f: *sqlite.File, out: *i64) callconv(.c) c_int {
    return m(f).xFileSize.?(bfile(f).real, out);
}
fn ioLock(f: *sqlite.File, l: c_int) callconv(.c) c_int {
    const rc = m(f).xLock.?(bfile(f).real, l);
    if (rc == sqlite.OK and l == sqlite.LOCK_EXCLUSIVE) bfile(f).exclusive = true;
    return rc;
}
fn ioUnlock(f: *sqlite.File, l: c_int) callconv(.c) c_int {
    if (l < sqlite.LOCK_EXCLUSIVE) bfile(f).exclusive = false;
    return m(f).xUnlock.?(bfile(f).real, l);
}
fn ioCheckReservedLock(f: *sqlite.File, out: *c_int) callconv(.c) c_int {
    return m(f).xCheckReservedLock.?(bfile(f).real, out);
}
fn ioFileControl(f: *sqlite.File, op: c_int, arg: ?*anyopaque) callconv(.c) c_int {
    const bf = bfile(f);
    if (op == sqlite.FCNTL_PRAGMA and bf.kind == .main) if (arg) |a| {
        // azArg[0] is the answer, [1] the pragma's name, [2] its value.
        const args: *[3]?[*:0]u8 = @ptrCast(@alignCast(a));
        if (args[1]) |pname| if (std.ascii.eqlIgnoreCase(std.mem.span(pname), read_view_pragma)) return answerReadView(bf, args);
    };
    return m(f).xFileControl.?(bf.real, op, arg);
}

/// PRAGMA bottomless_read_position: "salt1 salt2 mx_frame" of the read
/// transaction this connection is in, or "none" outside of one. A snapshot
/// copied through that transaction is tied to the spool by it
/// (snapshot_point.zig) without taking any lock a writer could meet.
fn answerReadView(bf: *BFile, args: *[3]?[*:0]u8) c_int {
    const alloc = bf.lib.fns.malloc orelse return sqlite.NOTFOUND;
    const out: [*]u8 = @ptrCast(alloc(40) orelse return sqlite.IOERR_NOMEM);
    const v = bf.view;
    const text = if (v.valid)
        std.fmt.bufPrintSentinel(out[0..40], "{d} {d} {d}", .{ v.salt1, v.salt2, v.mx_frame }, 0) catch unreachable
    else
        std.fmt.bufPrintSentinel(out[0..40], "none", .{}, 0) catch unreachable;
    args[0] = text.ptr;
    return sqlite.OK;
}
fn ioSectorSize(f: *sqlite.File) callconv(.c) c_int {
    return m(f).xSectorSize.?(bfile(f).real);
}
fn ioDeviceCharacteristics(f: *sqlite.File) callconv(.c) c_int {
    return m(f).xDeviceCharacteristics.?(bfile(f).real);
}
fn ioShmMap(f: *sqlite.File, pg: c_int, pgsz: c_int, extend: c_int, pp: *?*anyopaque) callconv(.c) c_int {
    const bf = bfile(f);
    const x = m(f).xShmMap orelse return sqlite.IOERR;
    const rc = x(bf.real, pg, pgsz, extend, pp);
    if (rc == sqlite.OK and pg == 0) bf.shm0 = pp.*;
    return rc;
}

fn covers(ofst: c_int, n: c_int, slot: c_int) bool {
    return ofst <= slot and ofst + n > slot;
}

fn ioShmLock(f: *sqlite.File, ofst: c_int, n: c_int, flags: c_int) callconv(.c) c_int {
    const bf = bfile(f);
    const x = m(f).xShmLock orelse return sqlite.IOERR;
    const exclusive = flags & sqlite.SHM_EXCLUSIVE != 0;
    if (flags & sqlite.SHM_UNLOCK != 0) {
        if (exclusive and bf.recovered and bf.holds_write and covers(ofst, n, sqlite.WAL_RECOVER_LOCK)) {
            // The wal-index was rebuilt from the WAL (a writer died): the
            // spool may lack commits the WAL holds. We still hold the write
            // lock, so no writer can race the catch-up.
            bf.recovered = false;
            if (bf.path) |p| reconcileAfterRecovery(std.mem.span(p));
        }
        const rc = x(bf.real, ofst, n, flags);
        if (exclusive and covers(ofst, n, sqlite.WAL_WRITE_LOCK)) {
            bf.holds_write = false;
            bf.recovered = false;
        }
        if (exclusive and covers(ofst, n, sqlite.WAL_CKPT_LOCK)) bf.holds_ckpt = false;
        if (!exclusive and n == 1 and ofst >= sqlite.WAL_READ_LOCK0) bf.view.valid = false;
        return rc;
    }
    if (exclusive and holdsWal(bf, ofst, n)) return sqlite.BUSY;
    const rc = x(bf.real, ofst, n, flags);
    if (rc != sqlite.OK) return rc;
    if (exclusive) {
        if (covers(ofst, n, sqlite.WAL_WRITE_LOCK)) {
            bf.write_epoch +%= 1;
            bf.holds_write = true;
        }
        if (covers(ofst, n, sqlite.WAL_RECOVER_LOCK)) bf.recovered = true;
        if (ofst == sqlite.WAL_CKPT_LOCK and n == 1) bf.holds_ckpt = true;
    } else if (n == 1 and ofst >= sqlite.WAL_READ_LOCK0 and ofst < sqlite.WAL_READ_LOCK0 + sqlite.WAL_NREADER) {
        bf.view = readView(bf.shm0);
    }
    return rc;
}

/// Whether this exclusive request is SQLite's checkpoint lock, or a
/// writer's lock to restart the WAL (all read marks but the first), that
/// capture wants refused for now (wal_hold.zig).
fn holdsWal(bf: *BFile, ofst: c_int, n: c_int) bool {
    const ckpt = ofst == sqlite.WAL_CKPT_LOCK and n == 1;
    const restart = ofst == sqlite.WAL_READ_LOCK0 + 1 and n == sqlite.WAL_NREADER - 1;
    if (!ckpt and !restart) return false;
    if (bf.kind != .main or bf.exclusive) return false;
    // A RESTART or TRUNCATE checkpoint under way asks for the restart lock
    // through the application's busy handler: refused, it would wait.
    // Having been let in, it finishes, and the restart copies the tail.
    if (restart and bf.holds_ckpt) return false;
    const cap = (bf.wal orelse return false).cap orelse return false;
    const view = readView(bf.shm0);
    if (!view.valid) return false;
    return cap.holdsWal(.{ .page_size = cap.page_size, .salt1 = view.salt1, .salt2 = view.salt2, .mx_frame = view.mx_frame });
}

/// The wal-index header as SQLite left it when this read lock was granted.
/// SQLite compares it with its own copy right after the lock and retries
/// (another lock call, another read here) if a writer changed it meanwhile,
/// so the last read before a read transaction proceeds is its view.
fn readView(shm0: ?*anyopaque) ReadView {
    const p: [*]const volatile u8 = @ptrCast(shm0 orelse return .{});
    var hdr: [48]u8 = undefined;
    for (&hdr, 0..) |*b, i| b.* = p[i];
    if (hdr[12] == 0) return .{}; // isInit
    return .{
        .mx_frame = std.mem.readInt(u32, hdr[16..20], native_endian),
        // aSalt holds the WAL header's bytes as they are in the file.
        .salt1 = std.mem.readInt(u32, hdr[32..36], .big),
        .salt2 = std.mem.readInt(u32, hdr[36..40], .big),
        .valid = true,
    };
}

/// Appends what the WAL holds and the spool lacks, right after SQLite's
/// recovery and under the write lock it took for it.
fn reconcileAfterRecovery(db_path: []const u8) void {
    var cap = capture.WalCapture.init(db_path) catch return;
    defer cap.deinit();
    if (!sidefolder.exists(spool.Paths.z(&cap.writer.paths.dir))) return;
    const n = cap.writer.reconcile(null) catch {
        cap.problem("could not catch the spool up with the WAL after recovery", .{});
        return;
    };
    cap.writer.sync() catch {};
    if (n > 0) log.warn("recovered {d} committed transaction(s) from the WAL into the spool", .{n});
}
fn ioShmBarrier(f: *sqlite.File) callconv(.c) void {
    if (m(f).xShmBarrier) |x| x(bfile(f).real);
}
fn ioShmUnmap(f: *sqlite.File, del: c_int) callconv(.c) c_int {
    const bf = bfile(f);
    bf.shm0 = null;
    bf.view.valid = false;
    const x = m(f).xShmUnmap orelse return sqlite.OK;
    return x(bf.real, del);
}
fn ioFetch(f: *sqlite.File, off: i64, amt: c_int, pp: *?*anyopaque) callconv(.c) c_int {
    const mm = m(f);
    if (mm.iVersion < 3 or mm.xFetch == null) {
        pp.* = null;
        return sqlite.OK;
    }
    return mm.xFetch.?(bfile(f).real, off, amt, pp);
}
fn ioUnfetch(f: *sqlite.File, off: i64, p: ?*anyopaque) callconv(.c) c_int {
    const mm = m(f);
    if (mm.iVersion < 3 or mm.xUnfetch == null) return sqlite.OK;
    return mm.xUnfetch.?(bfile(f).real, off, p);
}

const io_methods = sqlite.IoMethods{
    .iVersion = 3,
    .xClose = &ioClose,
    .xRead = &ioRead,
    .xWrite = &ioWrite,
    .xTruncate = &ioTruncate,
    .xSync = &ioSync,
    .xFileSize = &ioFileSize,
    .xLock = &ioLock,
    .xUnlock = &ioUnlock,
    .xCheckReservedLock = &ioCheckReservedLock,
    .xFileControl = &ioFileControl,
    .xSectorSize = &ioSectorSize,
    .xDeviceCharacteristics = &ioDeviceCharacteristics,
    .xShmMap = &ioShmMap,
    .xShmLock = &ioShmLock,
    .xShmBarrier = &ioShmBarrier,
    .xShmUnmap = &ioShmUnmap,
    .xFetch = &ioFetch,
    .xUnfetch = &ioUnfetch,
};

/// The capture behind a WAL file object opened through this VFS.
pub fn captureOf(f: *anyopaque) ?*capture.WalCapture {
    return bfile(@ptrCast(@alignCast(f))).cap;
}

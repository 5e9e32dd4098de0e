//! The "bottomless" VFS: a shim over the host's default VFS. Every file is
//! forwarded untouched; the -wal file of a database additionally feeds
//! capture, and the main file reports when the WAL write lock is taken.
const std = @import("std");
const sqlite = @import("sqlite.zig");
const capture = @import("capture.zig");
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
};

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
                    if (mf.methods == &io_methods) bf.main = bfile(mf);
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
    return m(f).xLock.?(bfile(f).real, l);
}
fn ioUnlock(f: *sqlite.File, l: c_int) callconv(.c) c_int {
    return m(f).xUnlock.?(bfile(f).real, l);
}
fn ioCheckReservedLock(f: *sqlite.File, out: *c_int) callconv(.c) c_int {
    return m(f).xCheckReservedLock.?(bfile(f).real, out);
}
fn ioFileControl(f: *sqlite.File, op: c_int, arg: ?*anyopaque) callconv(.c) c_int {
    return m(f).xFileControl.?(bfile(f).real, op, arg);
}
fn ioSectorSize(f: *sqlite.File) callconv(.c) c_int {
    return m(f).xSectorSize.?(bfile(f).real);
}
fn ioDeviceCharacteristics(f: *sqlite.File) callconv(.c) c_int {
    return m(f).xDeviceCharacteristics.?(bfile(f).real);
}
fn ioShmMap(f: *sqlite.File, pg: c_int, pgsz: c_int, extend: c_int, pp: *?*anyopaque) callconv(.c) c_int {
    const x = m(f).xShmMap orelse return sqlite.IOERR;
    return x(bfile(f).real, pg, pgsz, extend, pp);
}
fn ioShmLock(f: *sqlite.File, ofst: c_int, n: c_int, flags: c_int) callconv(.c) c_int {
    const bf = bfile(f);
    const x = m(f).xShmLock orelse return sqlite.IOERR;
    const rc = x(bf.real, ofst, n, flags);
    const want = sqlite.SHM_LOCK | sqlite.SHM_EXCLUSIVE;
    if (rc == sqlite.OK and flags & want == want and ofst <= sqlite.WAL_WRITE_LOCK and ofst + n > sqlite.WAL_WRITE_LOCK) {
        bf.write_epoch +%= 1;
    }
    return rc;
}
fn ioShmBarrier(f: *sqlite.File) callconv(.c) void {
    if (m(f).xShmBarrier) |x| x(bfile(f).real);
}
fn ioShmUnmap(f: *sqlite.File, del: c_int) callconv(.c) c_int {
    const x = m(f).xShmUnmap orelse return sqlite.OK;
    return x(bfile(f).real, del);
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

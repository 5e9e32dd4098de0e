//! The libSQL 0.2 door: WAL methods named "bottomless" that wrap libSQL's
//! "default" methods. The wrapper opens the WAL through the bottomless VFS,
//! so capture is the same code as for stock SQLite; libSQL's own write
//! transaction hook marks transaction boundaries. ABI facts:
//! shared/reference/libsql-0.2-wal-abi.md (declared here, checked against
//! real headers with -Dlibsql-include).
const std = @import("std");
const sqlite = @import("sqlite.zig");
const vfs = @import("vfs.zig");
const wal_handles = @import("wal_handles.zig");
const autostart = @import("autostart.zig");
const status = @import("status.zig");
const log = @import("log.zig");

pub const Wal = wal_handles.Wal;

pub const Pghdr = extern struct {
    pPage: ?*anyopaque,
    pData: ?*anyopaque,
    pExtra: ?*anyopaque,
    pCache: ?*anyopaque,
    pDirty: ?*Pghdr,
    pPager: ?*anyopaque,
    pgno: u32,
    pageHash: u32,
    flags: u16,
    nRef: u64,
    pDirtyNext: ?*Pghdr,
    pDirtyPrev: ?*Pghdr,
};

const Fp = ?*const anyopaque;

pub const WalMethods = extern struct {
    iVersion: c_int,
    xOpen: ?*const fn (*sqlite.Vfs, *sqlite.File, [*:0]const u8, c_int, i64, *WalMethods, *?Wal) callconv(.c) c_int,
    xClose: ?*const fn (Wal, ?*anyopaque, c_int, c_int, ?[*]u8) callconv(.c) c_int,
    xLimit: Fp,
    xBeginReadTransaction: Fp,
    xEndReadTransaction: Fp,
    xFindFrame: Fp,
    xReadFrame: Fp,
    xDbsize: Fp,
    xBeginWriteTransaction: ?*const fn (Wal) callconv(.c) c_int,
    xEndWriteTransaction: Fp,
    xUndo: Fp,
    xSavepoint: Fp,
    xSavepointUndo: Fp,
    xFrames: Fp,
    xCheckpoint: Fp,
    xCallback: Fp,
    xExclusiveMode: Fp,
    xHeapMemory: Fp,
    xSnapshotGet: Fp,
    xSnapshotOpen: Fp,
    xSnapshotRecover: Fp,
    xSnapshotCheck: Fp,
    xSnapshotUnlock: Fp,
    xFramesize: Fp,
    xFile: Fp,
    xWriteLock: Fp,
    xDb: Fp,
    xPathnameLen: Fp,
    xGetWalPathname: Fp,
    xPreMainDbOpen: ?*const fn (*WalMethods, ?[*:0]const u8) callconv(.c) c_int,
    bUsesShm: c_int,
    zName: ?[*:0]const u8,
    pNext: ?*WalMethods,
};

pub const ApiRoutines = extern struct {
    wal_methods_find: ?*const fn (?[*:0]const u8) callconv(.c) ?*WalMethods,
    wal_methods_register: ?*const fn (*WalMethods) callconv(.c) c_int,
    wal_methods_unregister: ?*const fn (*WalMethods) callconv(.c) c_int,
};

comptime {
    if (@sizeOf(usize) == 8) {
        std.debug.assert(@sizeOf(WalMethods) == 272);
        std.debug.assert(@offsetOf(WalMethods, "xFrames") == 112);
        std.debug.assert(@sizeOf(Pghdr) == 88);
        std.debug.assert(@offsetOf(Pghdr, "pgno") == 48);
        std.debug.assert(@offsetOf(Pghdr, "flags") == 56);
        std.debug.assert(@offsetOf(Pghdr, "nRef") == 64);
    }
}

// Registered methods live as long as the process (libSQL links, not copies).
var methods: WalMethods = undefined;
var default_methods: *WalMethods = undefined;
var our_vfs: ?*vfs.Registration = null;
var registered = std.atomic.Value(bool).init(false);

fn xOpen(v: *sqlite.Vfs, db_file: *sqlite.File, wal_name: [*:0]const u8, no_shm: c_int, max_size: i64, meth: *WalMethods, out: *?Wal) callconv(.c) c_int {
    // Open the -wal file through the bottomless VFS when the connection uses
    // the VFS we wrap, so its writes feed capture.
    const use: *sqlite.Vfs = if (our_vfs) |r| (if (v == r.real or v == &r.vfs) &r.vfs else v) else v;
    _ = wal_handles.takeOpened();
    const rc = default_methods.xOpen.?(use, db_file, wal_name, no_shm, max_size, meth, out);
    const opened = wal_handles.takeOpened();
    if (rc == sqlite.OK) {
        if (out.*) |w| if (opened) |f| wal_handles.remember(w, f);
    }
    return rc;
}

fn xClose(w: Wal, db: ?*anyopaque, sync_flags: c_int, n_buf: c_int, buf: ?[*]u8) callconv(.c) c_int {
    wal_handles.forget(w);
    return default_methods.xClose.?(w, db, sync_flags, n_buf, buf);
}

fn xBeginWriteTransaction(w: Wal) callconv(.c) c_int {
    const rc = default_methods.xBeginWriteTransaction.?(w);
    if (rc == sqlite.OK) {
        if (wal_handles.lookup(w)) |f| if (vfs.captureOf(f)) |cap| cap.beginTransaction();
    }
    return rc;
}

fn xPreMainDbOpen(meth: *WalMethods, path: ?[*:0]const u8) callconv(.c) c_int {
    _ = meth;
    // Temporary databases (VACUUM's, TEMP) come without a path.
    if (path) |p| {
        const s = std.mem.span(p);
        if (s.len > 0) autostart.beforeMainDbOpen(s);
    }
    if (default_methods.xPreMainDbOpen) |f| return f(default_methods, path);
    return sqlite.OK;
}

/// Registers the WAL methods (idempotent). `reg` is the VFS registration in
/// the same library, used to open WAL files.
pub fn register(api: *const ApiRoutines, reg: *vfs.Registration) status.Error!void {
    if (registered.load(.acquire)) return;
    const find = api.wal_methods_find orelse return misuse();
    const reg_fn = api.wal_methods_register orelse return misuse();
    if (find("bottomless") != null) {
        registered.store(true, .release);
        return;
    }
    const def = find(null) orelse {
        status.set("libSQL has no default WAL methods", .{});
        return error.Unsupported;
    };
    std.debug.assert(def.xOpen != null and def.xBeginWriteTransaction != null and def.xClose != null);
    default_methods = def;
    our_vfs = reg;
    methods = def.*;
    methods.zName = "bottomless";
    methods.pNext = null;
    methods.xOpen = &xOpen;
    methods.xClose = &xClose;
    methods.xBeginWriteTransaction = &xBeginWriteTransaction;
    methods.xPreMainDbOpen = &xPreMainDbOpen;
    const rc = reg_fn(&methods);
    if (rc != sqlite.OK) {
        status.set("libsql_wal_methods_register failed with code {d}", .{rc});
        return error.Unsupported;
    }
    registered.store(true, .release);
}

fn misuse() status.Error {
    status.set("libSQL API routines are incomplete", .{});
    return error.Misuse;
}

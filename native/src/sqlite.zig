//! The parts of SQLite's C interface the extension touches, declared here so
//! the build needs no SQLite header. Layouts follow sqlite3.h (3.x, stable
//! since the structs are append-only).
const std = @import("std");

pub const OK: c_int = 0;
pub const ERROR: c_int = 1;
pub const BUSY: c_int = 5;
pub const MISUSE: c_int = 21;
pub const NOTFOUND: c_int = 12;
pub const IOERR: c_int = 10;
pub const IOERR_WRITE: c_int = IOERR | (3 << 8);
pub const IOERR_NOMEM: c_int = IOERR | (12 << 8);
pub const CANTOPEN: c_int = 14;
pub const OK_LOAD_PERMANENTLY: c_int = 256;
pub const NOTFOUND_FCNTL: c_int = 12;

/// xLock's strongest level: a WAL database takes it only to close (or in
/// exclusive locking mode).
pub const LOCK_EXCLUSIVE: c_int = 4;

pub const OPEN_MAIN_DB: c_int = 0x00000100;
pub const OPEN_WAL: c_int = 0x00080000;

pub const SHM_UNLOCK: c_int = 1;
pub const SHM_LOCK: c_int = 2;
pub const SHM_SHARED: c_int = 4;
pub const SHM_EXCLUSIVE: c_int = 8;
/// The shared-memory lock slots of the checkpointer, WAL recovery and the
/// readers.
pub const WAL_CKPT_LOCK: c_int = 1;
pub const WAL_RECOVER_LOCK: c_int = 2;
pub const WAL_READ_LOCK0: c_int = 3;
pub const WAL_NREADER: c_int = 5;
pub const FCNTL_PRAGMA: c_int = 14;
/// Slot of the WAL writer lock in the shared-memory lock array.
pub const WAL_WRITE_LOCK: c_int = 0;

pub const File = extern struct {
    methods: ?*const IoMethods,
};

pub const IoMethods = extern struct {
    iVersion: c_int,
    xClose: ?*const fn (*File) callconv(.c) c_int,
    xRead: ?*const fn (*File, ?*anyopaque, c_int, i64) callconv(.c) c_int,
    xWrite: ?*const fn (*File, ?*const anyopaque, c_int, i64) callconv(.c) c_int,
    xTruncate: ?*const fn (*File, i64) callconv(.c) c_int,
    xSync: ?*const fn (*File, c_int) callconv(.c) c_int,
    xFileSize: ?*const fn (*File, *i64) callconv(.c) c_int,
    xLock: ?*const fn (*File, c_int) callconv(.c) c_int,
    xUnlock: ?*const fn (*File, c_int) callconv(.c) c_int,
    xCheckReservedLock: ?*const fn (*File, *c_int) callconv(.c) c_int,
    xFileControl: ?*const fn (*File, c_int, ?*anyopaque) callconv(.c) c_int,
    xSectorSize: ?*const fn (*File) callconv(.c) c_int,
    xDeviceCharacteristics: ?*const fn (*File) callconv(.c) c_int,
    xShmMap: ?*const fn (*File, c_int, c_int, c_int, *?*anyopaque) callconv(.c) c_int,
    xShmLock: ?*const fn (*File, c_int, c_int, c_int) callconv(.c) c_int,
    xShmBarrier: ?*const fn (*File) callconv(.c) void,
    xShmUnmap: ?*const fn (*File, c_int) callconv(.c) c_int,
    xFetch: ?*const fn (*File, i64, c_int, *?*anyopaque) callconv(.c) c_int,
    xUnfetch: ?*const fn (*File, i64, ?*anyopaque) callconv(.c) c_int,
};

pub const Vfs = extern struct {
    iVersion: c_int,
    szOsFile: c_int,
    mxPathname: c_int,
    pNext: ?*Vfs,
    zName: ?[*:0]const u8,
    pAppData: ?*anyopaque,
    xOpen: ?*const fn (*Vfs, ?[*:0]const u8, *File, c_int, ?*c_int) callconv(.c) c_int,
    xDelete: ?*const fn (*Vfs, [*:0]const u8, c_int) callconv(.c) c_int,
    xAccess: ?*const anyopaque,
    xFullPathname: ?*const anyopaque,
    xDlOpen: ?*const anyopaque,
    xDlError: ?*const anyopaque,
    xDlSym: ?*const anyopaque,
    xDlClose: ?*const anyopaque,
    xRandomness: ?*const anyopaque,
    xSleep: ?*const anyopaque,
    xCurrentTime: ?*const anyopaque,
    xGetLastError: ?*const anyopaque,
    xCurrentTimeInt64: ?*const anyopaque,
    xSetSystemCall: ?*const anyopaque,
    xGetSystemCall: ?*const anyopaque,
    xNextSystemCall: ?*const anyopaque,
};

pub const VfsFind = *const fn (?[*:0]const u8) callconv(.c) ?*Vfs;
pub const VfsRegister = *const fn (*Vfs, c_int) callconv(.c) c_int;
pub const DatabaseFileObject = *const fn ([*:0]const u8) callconv(.c) ?*File;
pub const LibVersionNumber = *const fn () callconv(.c) c_int;
pub const SourceId = *const fn () callconv(.c) ?[*:0]const u8;
pub const PrepareV2 = *const fn (*anyopaque, [*:0]const u8, c_int, *?*anyopaque, ?*?[*:0]const u8) callconv(.c) c_int;
pub const Malloc = *const fn (c_int) callconv(.c) ?*anyopaque;
pub const Finalize = *const fn (?*anyopaque) callconv(.c) c_int;

/// sqlite3_api_routines is a long table of function pointers that only ever
/// grows at the end; the extension needs a handful of them, by index.
pub const Api = extern struct {
    fns: [252]?*const anyopaque,

    pub const finalize = 57;
    pub const libversion_number = 67;
    pub const malloc = 68;
    pub const prepare_v2 = 116;
    pub const vfs_find = 141;
    pub const vfs_register = 142;
    pub const sourceid = 169;
    /// Added in SQLite 3.31.0.
    pub const database_file_object = 251;

    pub fn get(self: *const Api, comptime T: type, comptime idx: usize) ?T {
        const p = self.fns[idx] orelse return null;
        return @ptrCast(@alignCast(p));
    }
};

/// What the extension needs from whichever SQLite it was loaded into.
pub const Fns = struct {
    vfs_find: VfsFind,
    vfs_register: VfsRegister,
    database_file_object: ?DatabaseFileObject,
    /// sqlite3_malloc: what a PRAGMA answered by the VFS returns must come
    /// from the host's allocator (it frees it with sqlite3_free).
    malloc: ?Malloc = null,
};

pub fn fnsFromApi(api: *const Api) ?Fns {
    const version_fn = api.get(LibVersionNumber, Api.libversion_number) orelse return null;
    const version = version_fn();
    return .{
        .vfs_find = api.get(VfsFind, Api.vfs_find) orelse return null,
        .vfs_register = api.get(VfsRegister, Api.vfs_register) orelse return null,
        .database_file_object = if (version >= 3031000) api.get(DatabaseFileObject, Api.database_file_object) else null,
        .malloc = api.get(Malloc, Api.malloc),
    };
}

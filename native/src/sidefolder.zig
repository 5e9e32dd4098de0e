//! The side folder "<db>-bottomless/": its name and the names of the files
//! capture keeps in it (spelled here only), their paths, and their
//! permissions. The replicator's files in the same folder (replicator.json,
//! replicator.lock, ...) are named by the Python package (side_files.py).
//!
//! The folder and the files in it take the database file's permissions, as SQLite's own -wal and -shm do (unix VFS,
//! findCreateFileMode and robustFchown): the same mode bits whatever the
//! umask (a folder gets x where the file has r, to be enterable), and, when
//! the process is root, the database file's owner and group. So any user who
//! may write the database may write its side folder, whoever wrote first.
const std = @import("std");
const builtin = @import("builtin");
const c = std.c;
const linux = std.os.linux;
extern "c" fn fchmod(fd: c_int, mode: c.mode_t) c_int;
extern "c" fn fchown(fd: c_int, uid: c.uid_t, gid: c.gid_t) c_int;
const fileio = @import("fileio.zig");
const status = @import("status.zig");
const Error = status.Error;

/// The folder beside the database: "<db>" ++ suffix.
pub const suffix = "-bottomless";
/// The append-only log of records (spool_format.zig).
pub const spool_file = "spool";
/// Copies of WAL frames taken before SQLite reused the WAL (materialize.zig).
pub const pages_file = "pages";
/// Serialises writers of `pages` (the commit path and the copier).
pub const pages_lock_file = "pages.lock";
/// The replicator's acknowledgement (spool_ack.zig).
pub const ack_file = "ack";
/// What may follow the newest record (seal.zig).
pub const seal_file = "sealed";
/// Wakes a replicator that sleeps on filesystem notifications (bell.zig).
pub const bell_file = "bell";

/// Paths derived from the database path; fixed-size so the commit path
/// never allocates for them.
pub const Paths = struct {
    db: [4096]u8 = undefined,
    dir: [4096]u8 = undefined,
    spool: [4096]u8 = undefined,
    pages: [4096]u8 = undefined,
    ack: [4096]u8 = undefined,
    wal: [4096]u8 = undefined,
    pages_lock: [4096]u8 = undefined,
    seal: [4096]u8 = undefined,
    bell: [4096]u8 = undefined,

    pub fn init(self: *Paths, db_path: []const u8) Error!void {
        try put(&self.db, db_path, "");
        try put(&self.dir, db_path, suffix);
        try put(&self.spool, db_path, suffix ++ "/" ++ spool_file);
        try put(&self.pages, db_path, suffix ++ "/" ++ pages_file);
        try put(&self.ack, db_path, suffix ++ "/" ++ ack_file);
        try put(&self.wal, db_path, "-wal");
        try put(&self.pages_lock, db_path, suffix ++ "/" ++ pages_lock_file);
        try put(&self.seal, db_path, suffix ++ "/" ++ seal_file);
        try put(&self.bell, db_path, suffix ++ "/" ++ bell_file);
    }

    fn put(buf: *[4096]u8, db_path: []const u8, comptime tail: []const u8) Error!void {
        _ = std.fmt.bufPrintSentinel(buf, "{s}" ++ tail, .{db_path}, 0) catch {
            status.set("database path too long ({d} bytes)", .{db_path.len});
            return error.Misuse;
        };
    }

    pub fn z(buf: *const [4096]u8) [*:0]const u8 {
        return @ptrCast(buf);
    }

    /// Opens one of the side folder's files read-write, creating it (and
    /// the folder) with the database file's permissions.
    pub fn create(self: *const Paths, file: *const [4096]u8) Error!fileio.Fd {
        return open(z(file), z(&self.dir), z(&self.db));
    }
};

test "every path is the database path and one fixed tail" {
    var p: Paths = .{};
    try p.init("/d/x.db");
    try std.testing.expectEqualStrings("/d/x.db-bottomless/spool", std.mem.span(Paths.z(&p.spool)));
    try std.testing.expectEqualStrings("/d/x.db-bottomless/pages.lock", std.mem.span(Paths.z(&p.pages_lock)));
    try std.testing.expectEqualStrings("/d/x.db-wal", std.mem.span(Paths.z(&p.wal)));
    var long: [5000]u8 = @splat('a');
    try std.testing.expectError(error.Misuse, p.init(&long));
}

/// Permissions to give: the database file's.
pub const Owner = struct {
    mode: c.mode_t,
    uid: c.uid_t,
    gid: c.gid_t,

    fn dirMode(self: Owner) c.mode_t {
        const r = self.mode & 0o444;
        return self.mode | (r >> 2);
    }
};

/// The permissions of a path (or, with an empty path, of the open fd).
fn statOf(fd: c_int, path: [*:0]const u8) ?Owner {
    if (builtin.os.tag != .linux) return null;
    var st: linux.Statx = undefined;
    const flags: u32 = if (path[0] == 0) 0x1000 else 0; // AT_EMPTY_PATH
    if (linux.statx(fd, path, flags, .{ .MODE = true, .UID = true, .GID = true }, &st) != 0) return null;
    return .{ .mode = @intCast(st.mode & 0o777), .uid = st.uid, .gid = st.gid };
}

/// The database file's permissions; null when it cannot be read (then the
/// defaults apply: 0644 files, 0755 folder, the process's owner).
pub fn ownerOf(db_path: [*:0]const u8) ?Owner {
    return statOf(linux.AT.FDCWD, db_path);
}

fn errnoValue() c_int {
    return c._errno().*;
}

/// Gives a just-created file or folder the owner's permissions. Failure is
/// not an error: the file works, only other users may be refused later.
fn adopt(fd: fileio.Fd, owner: Owner, mode: c.mode_t) void {
    const st = statOf(fd, "") orelse return;
    if (c.geteuid() == 0 and (st.uid != owner.uid or st.gid != owner.gid)) {
        _ = fchown(fd, owner.uid, owner.gid);
    }
    if (st.mode != mode) _ = fchmod(fd, mode);
}

/// Creates the side folder if it is missing.
pub fn ensureDir(dir: [*:0]const u8, db_path: [*:0]const u8) Error!void {
    const owner = ownerOf(db_path);
    const mode: c.mode_t = if (owner) |o| o.dirMode() else 0o755;
    if (c.mkdir(dir, mode) != 0) {
        if (errnoValue() == @intFromEnum(c.E.EXIST)) return;
        status.set("cannot create directory {s}: errno {d}", .{ std.mem.span(dir), errnoValue() });
        return error.Io;
    }
    const o = owner orelse return;
    const fd = c.open(dir, .{ .ACCMODE = .RDONLY, .DIRECTORY = true, .CLOEXEC = true }, @as(c.mode_t, 0));
    if (fd < 0) return;
    defer fileio.close(fd);
    adopt(fd, o, o.dirMode());
}

/// Whether the side folder exists (capture creates it only when a WAL write
/// of a database needs it).
pub fn exists(dir: [*:0]const u8) bool {
    return c.access(dir, 0) == 0;
}

/// Opens a file of the side folder read-write, creating it (and the folder)
/// with the database file's permissions when it is missing.
pub fn open(path: [*:0]const u8, dir: [*:0]const u8, db_path: [*:0]const u8) Error!fileio.Fd {
    if (try fileio.openIfExists(path, true)) |fd| return fd;
    try ensureDir(dir, db_path);
    const owner = ownerOf(db_path);
    const fd = try fileio.open(path, true, true);
    if (owner) |o| adopt(fd, o, o.mode);
    return fd;
}

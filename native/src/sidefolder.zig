//! The side folder "<db>-bottomless/" and the files in it take the database
//! file's permissions, as SQLite's own -wal and -shm do (unix VFS,
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

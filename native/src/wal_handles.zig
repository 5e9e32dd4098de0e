//! Which of the VFS's WAL file objects (vfs.zig) belongs to which libSQL
//! WAL handle (libsql.zig), so libSQL's write-transaction hook reaches the
//! capture of the right file. Its own file so that the VFS, which notes
//! opens and closes, and the libSQL door, which asks, need not import each
//! other.
const std = @import("std");
const log = @import("log.zig");

/// A libSQL WAL handle (opaque to us).
pub const Wal = *opaque {};

/// WAL objects of the default implementation mapped to our WAL file objects.
const Entry = struct { wal: ?Wal = null, file: ?*anyopaque = null };
var table: [256]Entry = @splat(.{});
var table_lock: std.c.pthread_mutex_t = std.c.PTHREAD_MUTEX_INITIALIZER;
threadlocal var last_opened: ?*anyopaque = null;

pub fn noteOpened(file: *anyopaque) void {
    last_opened = file;
}

pub fn noteClosed(file: *anyopaque) void {
    _ = std.c.pthread_mutex_lock(&table_lock);
    defer _ = std.c.pthread_mutex_unlock(&table_lock);
    for (&table) |*e| if (e.file == file) {
        e.* = .{};
    };
}

pub fn remember(w: Wal, file: *anyopaque) void {
    _ = std.c.pthread_mutex_lock(&table_lock);
    defer _ = std.c.pthread_mutex_unlock(&table_lock);
    for (&table) |*e| if (e.wal == null) {
        e.* = .{ .wal = w, .file = file };
        return;
    };
    log.warn("too many open libSQL WAL connections; transaction boundaries fall back to WAL writes", .{});
}

pub fn lookup(w: Wal) ?*anyopaque {
    _ = std.c.pthread_mutex_lock(&table_lock);
    defer _ = std.c.pthread_mutex_unlock(&table_lock);
    for (&table) |*e| if (e.wal == w) return e.file;
    return null;
}

pub fn forget(w: Wal) void {
    _ = std.c.pthread_mutex_lock(&table_lock);
    defer _ = std.c.pthread_mutex_unlock(&table_lock);
    for (&table) |*e| if (e.wal == w) {
        e.* = .{};
    };
}

/// The WAL file object the VFS opened last on this thread (null if none),
/// clearing it: libSQL's xOpen opens the WAL file through the VFS.
pub fn takeOpened() ?*anyopaque {
    const f = last_opened;
    last_opened = null;
    return f;
}

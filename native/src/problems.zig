//! Which databases' capture is failing right now, process-wide, so a
//! problem is logged once per episode however many WAL handles (and the
//! one-off capture before SQLite deletes the WAL) run into it.
const std = @import("std");

var lock: std.c.pthread_mutex_t = std.c.PTHREAD_MUTEX_INITIALIZER;
/// Hashes of the failing databases' paths; 0 is a free slot. When full,
/// problems of further databases are logged every time (never lost).
var failing: [32]u64 = @splat(0);
/// How many slots are taken: the common case (nothing failing) is one load.
var taken = std.atomic.Value(u32).init(0);

fn key(path: []const u8) u64 {
    return std.hash.Wyhash.hash(0x5eed, path) | 1;
}

/// Marks the database failing; true when it was not already (log then).
pub fn start(path: []const u8) bool {
    const k = key(path);
    _ = std.c.pthread_mutex_lock(&lock);
    defer _ = std.c.pthread_mutex_unlock(&lock);
    for (failing) |f| if (f == k) return false;
    for (&failing) |*f| if (f.* == 0) {
        f.* = k;
        _ = taken.fetchAdd(1, .release);
        return true;
    };
    return true;
}

/// The database's capture works again; true when it had been failing.
pub fn end(path: []const u8) bool {
    if (taken.load(.acquire) == 0) return false;
    const k = key(path);
    _ = std.c.pthread_mutex_lock(&lock);
    defer _ = std.c.pthread_mutex_unlock(&lock);
    for (&failing) |*f| if (f.* == k) {
        f.* = 0;
        _ = taken.fetchSub(1, .release);
        return true;
    };
    return false;
}

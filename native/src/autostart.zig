//! Hooks for hosts without a replicator of their own (the sqlite3 and libSQL
//! shells). Restore-on-open and starting a replicator are done by the Python
//! package; until that is wired in, these hooks only log.
const std = @import("std");
const log = @import("log.zig");

pub fn beforeMainDbOpen(path: []const u8) void {
    log.info("opening {s}", .{path});
}

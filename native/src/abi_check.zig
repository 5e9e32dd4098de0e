//! Compiled only with -Dlibsql-include=DIR: compares our declarations of the
//! libSQL 0.2 WAL ABI with the real headers' translation.
const std = @import("std");
const c = @import("libsql_c");
const ours = @import("libsql.zig");

fn sameLayout(comptime A: type, comptime B: type, comptime fields: []const []const u8) void {
    if (@sizeOf(A) != @sizeOf(B)) @compileError(std.fmt.comptimePrint("size of {s} differs: ours {d}, libSQL {d}", .{ @typeName(A), @sizeOf(A), @sizeOf(B) }));
    for (fields) |f| {
        if (@offsetOf(A, f) != @offsetOf(B, f)) @compileError("offset of " ++ f ++ " differs from libSQL's");
    }
}

comptime {
    sameLayout(ours.WalMethods, c.libsql_wal_methods, &.{ "iVersion", "xOpen", "xClose", "xBeginWriteTransaction", "xFrames", "xCheckpoint", "xPreMainDbOpen", "bUsesShm", "zName", "pNext" });
    sameLayout(ours.Pghdr, c.libsql_pghdr, &.{ "pData", "pDirty", "pgno", "flags", "nRef" });
}

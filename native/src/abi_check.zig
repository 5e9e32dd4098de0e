//! Compiled only with -Dlibsql-include=DIR: compares our declarations of the
//! libSQL 0.2 WAL ABI with the real headers' translation.
const c = @import("libsql_c");
const ours = @import("libsql.zig");
const sameOffsets = @import("abi_layout.zig").sameOffsets;

comptime {
    sameOffsets(ours.WalMethods, c.libsql_wal_methods, &.{ "iVersion", "xOpen", "xClose", "xBeginWriteTransaction", "xFrames", "xCheckpoint", "xPreMainDbOpen", "bUsesShm", "zName", "pNext" });
    sameOffsets(ours.Pghdr, c.libsql_pghdr, &.{ "pData", "pDirty", "pgno", "flags", "nRef" });
}

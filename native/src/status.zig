//! Status codes of the C ABI and the thread-local "last error" message.
//! Every exported function turns a Zig error into one of these codes and a
//! message, so a Zig error never crosses into the host.
const std = @import("std");

// The codes are bottomless.h's enum bottomless_status, translated by the
// build: defined there only.
const h = @import("bottomless_h");
pub const OK: c_int = h.BOTTOMLESS_OK;
pub const DONE: c_int = h.BOTTOMLESS_DONE;
pub const BUSY: c_int = h.BOTTOMLESS_BUSY;
pub const ERROR: c_int = h.BOTTOMLESS_ERROR;
pub const CORRUPT: c_int = h.BOTTOMLESS_CORRUPT;
pub const NOMEM: c_int = h.BOTTOMLESS_NOMEM;
pub const IO: c_int = h.BOTTOMLESS_IO;
pub const MISUSE: c_int = h.BOTTOMLESS_MISUSE;
pub const BUFFER: c_int = h.BOTTOMLESS_BUFFER;

/// Every failure the core can report. Kept explicit so the mapping to status
/// codes below is total.
pub const Error = error{
    Corrupt,
    OutOfMemory,
    Io,
    Misuse,
    BufferTooSmall,
    Unsupported,
};

threadlocal var last_message: [1024]u8 = undefined;
threadlocal var last_len: usize = 0;

/// Records a message for bottomless_last_error(); truncates rather than fails.
pub fn set(comptime fmt: []const u8, args: anytype) void {
    const out = std.fmt.bufPrint(last_message[0 .. last_message.len - 1], fmt, args) catch blk: {
        break :blk last_message[0 .. last_message.len - 1];
    };
    last_len = out.len;
    last_message[last_len] = 0;
}

pub fn message() [*:0]const u8 {
    if (last_len == 0) return "no error";
    last_message[last_len] = 0;
    return @ptrCast(&last_message);
}

pub fn clear() void {
    last_len = 0;
}

/// Maps an error to its status code; the message was set where it arose,
/// or is filled in here from the error's name.
pub fn code(err: Error) c_int {
    if (last_len == 0) set("{s}", .{@errorName(err)});
    return switch (err) {
        error.Corrupt => CORRUPT,
        error.OutOfMemory => NOMEM,
        error.Io => IO,
        error.Misuse => MISUSE,
        error.BufferTooSmall => BUFFER,
        error.Unsupported => ERROR,
    };
}

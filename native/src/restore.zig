//! Restore's last step on the file: its final size, made durable (the
//! pages themselves are written by newest.zig).
const std = @import("std");
const fileio = @import("fileio.zig");
const status = @import("status.zig");
const Error = status.Error;

pub fn finish(path: [*:0]const u8, page_size: u32, db_size: u32) Error!void {
    const fd = try fileio.open(path, true, true);
    defer fileio.close(fd);
    try fileio.truncate(fd, @as(u64, db_size) * page_size);
    try fileio.sync(fd);
}

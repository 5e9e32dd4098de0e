//! A byte count set by an environment variable that capture reads in the
//! application's process. The replicator's Config refuses a bad value when
//! it starts; here one cannot fail SQLite's call, so it is logged once and
//! the default stands.
const std = @import("std");
const log = @import("log.zig");

pub const Setting = struct {
    variable: [:0]const u8,
    /// The default, as the message about a bad value names it.
    default_text: []const u8,
    reported: std.atomic.Value(bool) = .init(false),

    /// The variable's value; null when it is unset or not a number of bytes.
    pub fn get(self: *Setting) ?u64 {
        const v = std.mem.span(std.c.getenv(self.variable) orelse return null);
        return std.fmt.parseInt(u64, v, 10) catch {
            if (!self.reported.swap(true, .acq_rel)) {
                log.err("{s}={s} is not a number of bytes; using the default ({s})", .{ self.variable, v, self.default_text });
            }
            return null;
        };
    }
};

//! Native logging to stderr, at the level RUST_LOG or BOTTOMLESS_LOG names
//! (error, warn, info, debug, trace; default warn), like the seed.
const std = @import("std");

pub const Level = enum(u8) { off, err, warn, info, debug, trace };

var cached = std.atomic.Value(u8).init(255);

fn parse(v: []const u8) Level {
    // Accept "info" and "bottomless=info,other=warn" forms.
    var it = std.mem.tokenizeScalar(u8, v, ',');
    var found: ?Level = null;
    while (it.next()) |part| {
        const eq = std.mem.indexOfScalar(u8, part, '=');
        const name = if (eq) |i| part[i + 1 ..] else part;
        const target = if (eq) |i| part[0..i] else "";
        if (target.len != 0 and !std.mem.startsWith(u8, target, "bottomless")) continue;
        const lvl: ?Level = if (std.ascii.eqlIgnoreCase(name, "error")) .err else if (std.ascii.eqlIgnoreCase(name, "warn")) .warn else if (std.ascii.eqlIgnoreCase(name, "info")) .info else if (std.ascii.eqlIgnoreCase(name, "debug")) .debug else if (std.ascii.eqlIgnoreCase(name, "trace")) .trace else if (std.ascii.eqlIgnoreCase(name, "off")) .off else null;
        if (lvl) |l| found = l;
    }
    return found orelse .warn;
}

pub fn level() Level {
    const c = cached.load(.monotonic);
    if (c != 255) return @enumFromInt(c);
    var l: Level = .warn;
    if (std.c.getenv("BOTTOMLESS_LOG")) |v| {
        l = parse(std.mem.span(v));
    } else if (std.c.getenv("RUST_LOG")) |v| {
        l = parse(std.mem.span(v));
    }
    cached.store(@intFromEnum(l), .monotonic);
    return l;
}

fn emit(comptime tag: []const u8, comptime fmt: []const u8, args: anytype) void {
    var buf: [1024]u8 = undefined;
    const line = std.fmt.bufPrint(&buf, tag ++ " bottomless: " ++ fmt ++ "\n", args) catch buf[0..];
    _ = std.c.write(2, line.ptr, line.len);
}

pub fn warn(comptime fmt: []const u8, args: anytype) void {
    if (@intFromEnum(level()) >= @intFromEnum(Level.warn)) emit("WARN", fmt, args);
}
pub fn info(comptime fmt: []const u8, args: anytype) void {
    if (@intFromEnum(level()) >= @intFromEnum(Level.info)) emit("INFO", fmt, args);
}
pub fn err(comptime fmt: []const u8, args: anytype) void {
    if (@intFromEnum(level()) >= @intFromEnum(Level.err)) emit("ERROR", fmt, args);
}

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

var json_cached = std.atomic.Value(u8).init(255);

/// BOTTOMLESS_LOG_FORMAT=json (what `bottomless-cli --log-format json` sets
/// for its own process and its children): the same one JSON object per line
/// as the Python side writes, so a log shipper reads a single format.
fn jsonFormat() bool {
    const c = json_cached.load(.monotonic);
    if (c != 255) return c == 1;
    const on = if (std.c.getenv("BOTTOMLESS_LOG_FORMAT")) |v| std.ascii.eqlIgnoreCase(std.mem.span(v), "json") else false;
    json_cached.store(@intFromBool(on), .monotonic);
    return on;
}

fn emit(comptime tag: []const u8, comptime level_name: []const u8, comptime fmt: []const u8, args: anytype) void {
    var buf: [1024]u8 = undefined;
    if (!jsonFormat()) {
        const line = std.fmt.bufPrint(&buf, tag ++ " bottomless: " ++ fmt ++ "\n", args) catch buf[0..];
        _ = std.c.write(2, line.ptr, line.len);
        return;
    }
    const message = std.fmt.bufPrint(&buf, fmt, args) catch buf[0..]; // cut at 1 KiB, as the text line is
    var out: [json_max]u8 = undefined;
    const line = jsonLine(&out, nowMs(), level_name, message);
    _ = std.c.write(2, line.ptr, line.len);
}

/// Room for a 1 KiB message with every byte escaped (\u00XX) and the fields.
const json_max = 6 * 1024 + 160;

fn nowMs() i64 {
    var ts: std.c.timespec = undefined;
    _ = std.c.clock_gettime(std.c.CLOCK.REALTIME, &ts);
    return @as(i64, @intCast(ts.sec)) * 1000 + @divTrunc(@as(i64, @intCast(ts.nsec)), 1_000_000);
}

/// `{"time": ..., "level": ..., "logger": "bottomless.native", "message": ...}`
/// and a newline, in `out` (at least json_max bytes for a 1 KiB message).
fn jsonLine(out: []u8, unix_ms: i64, level_name: []const u8, message: []const u8) []const u8 {
    std.debug.assert(message.len <= 1024 and out.len >= json_max);
    const secs = @divFloor(unix_ms, 1000);
    const day = civil(@divFloor(secs, 86400));
    const in_day: u64 = @intCast(@mod(secs, 86400));
    var n = (std.fmt.bufPrint(out, "{{\"time\": \"{d:0>4}-{d:0>2}-{d:0>2}T{d:0>2}:{d:0>2}:{d:0>2}.{d:0>3}Z\", \"level\": \"{s}\", \"logger\": \"bottomless.native\", \"message\": \"", .{
        @as(u64, @intCast(day.year)), day.month, day.day, in_day / 3600, in_day / 60 % 60, in_day % 60, @as(u64, @intCast(@mod(unix_ms, 1000))), level_name,
    }) catch unreachable).len;
    // Bytes that are not valid UTF-8 (a path can hold any) are escaped one
    // by one, so the line is always valid JSON.
    const utf8 = std.unicode.utf8ValidateSlice(message);
    for (message) |ch| {
        const escaped: ?[]const u8 = switch (ch) {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\t' => "\\t",
            else => null,
        };
        if (escaped) |e| {
            @memcpy(out[n..][0..e.len], e);
            n += e.len;
        } else if (ch < 0x20 or ch == 0x7f or (ch >= 0x80 and !utf8)) {
            n += (std.fmt.bufPrint(out[n..], "\\u{x:0>4}", .{ch}) catch unreachable).len;
        } else {
            out[n] = ch;
            n += 1;
        }
    }
    const tail = "\"}\n";
    @memcpy(out[n..][0..tail.len], tail);
    return out[0 .. n + tail.len];
}

const Civil = struct { year: i64, month: u32, day: u32 };

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// civil_from_days).
fn civil(days: i64) Civil {
    const z = days + 719468;
    const era = @divFloor(z, 146097);
    const doe = z - era * 146097;
    const yoe = @divFloor(doe - @divFloor(doe, 1460) + @divFloor(doe, 36524) - @divFloor(doe, 146096), 365);
    const doy = doe - (365 * yoe + @divFloor(yoe, 4) - @divFloor(yoe, 100));
    const mp = @divFloor(5 * doy + 2, 153);
    const day = doy - @divFloor(153 * mp + 2, 5) + 1;
    const month = if (mp < 10) mp + 3 else mp - 9;
    return .{ .year = yoe + era * 400 + @intFromBool(month <= 2), .month = @intCast(month), .day = @intCast(day) };
}

test "civil dates" {
    try std.testing.expectEqual(Civil{ .year = 1970, .month = 1, .day = 1 }, civil(0));
    try std.testing.expectEqual(Civil{ .year = 1969, .month = 12, .day = 31 }, civil(-1));
    try std.testing.expectEqual(Civil{ .year = 2000, .month = 2, .day = 29 }, civil(11016));
    try std.testing.expectEqual(Civil{ .year = 2025, .month = 12, .day = 2 }, civil(20424));
}

test "a json line escapes what JSON must" {
    var out: [json_max]u8 = undefined;
    const line = jsonLine(&out, 1796178109539, "error", "a \"b\"\\c\nd\x01 \xc3\xa9");
    try std.testing.expectEqualStrings(
        "{\"time\": \"2026-12-02T02:21:49.539Z\", \"level\": \"error\", \"logger\": \"bottomless.native\", \"message\": \"a \\\"b\\\"\\\\c\\nd\\u0001 \xc3\xa9\"}\n",
        line,
    );
    const bad = jsonLine(&out, 0, "warning", "\xff");
    try std.testing.expectEqualStrings("{\"time\": \"1970-01-01T00:00:00.000Z\", \"level\": \"warning\", \"logger\": \"bottomless.native\", \"message\": \"\\u00ff\"}\n", bad);
    var long: [1024]u8 = undefined;
    @memset(&long, 0x01);
    try std.testing.expect(jsonLine(&out, 0, "warning", &long).len < json_max);
}

pub fn warn(comptime fmt: []const u8, args: anytype) void {
    if (@intFromEnum(level()) >= @intFromEnum(Level.warn)) emit("WARN", "warning", fmt, args);
}
pub fn info(comptime fmt: []const u8, args: anytype) void {
    if (@intFromEnum(level()) >= @intFromEnum(Level.info)) emit("INFO", "info", fmt, args);
}
pub fn err(comptime fmt: []const u8, args: anytype) void {
    if (@intFromEnum(level()) >= @intFromEnum(Level.err)) emit("ERROR", "error", fmt, args);
}

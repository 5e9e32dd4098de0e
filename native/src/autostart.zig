//! Shells (sqlite3, libSQL) have no replicator of their own. When one opens a
//! database through the extension, a missing or empty database is first
//! restored from S3, then a replicator process is started that ships the
//! spool while the shell lives and until the spool is empty after it exits
//! (`bottomless-cli replicate --exit-when-idle --parent-pid`). One replicator
//! per database wins its lock; the others wait or exit.
//!
//! Both steps run the Python package: BOTTOMLESS_PYTHON names the
//! interpreter (default python3). LIBSQL_BOTTOMLESS_AUTOSTART=0 turns this
//! off, as does a Python host that runs its own replicator.
const std = @import("std");
const log = @import("log.zig");

const c = std.c;
extern "c" fn posix_spawnp(pid: *c.pid_t, file: [*:0]const u8, actions: ?*const anyopaque, attr: ?*const anyopaque, argv: [*:null]const ?[*:0]const u8, envp: [*:null]const ?[*:0]const u8) c_int;
extern "c" fn waitpid(pid: c.pid_t, status: *c_int, options: c_int) c.pid_t;
extern "c" var environ: [*:null]const ?[*:0]const u8;
extern "c" fn realpath(path: [*:0]const u8, resolved: ?[*]u8) ?[*:0]u8;

var disabled = std.atomic.Value(bool).init(false);

/// A host that replicates in process (bottomless.connect) opts out.
pub fn disable() void {
    disabled.store(true, .release);
}

fn enabled() bool {
    if (disabled.load(.acquire)) return false;
    const v = c.getenv("LIBSQL_BOTTOMLESS_AUTOSTART") orelse return true;
    const s = std.mem.span(v);
    return !(std.mem.eql(u8, s, "0") or std.ascii.eqlIgnoreCase(s, "false") or std.ascii.eqlIgnoreCase(s, "no") or std.ascii.eqlIgnoreCase(s, "off"));
}

fn python() [*:0]const u8 {
    return c.getenv("BOTTOMLESS_PYTHON") orelse "python3";
}

fn run(argv: [*:null]const ?[*:0]const u8, wait: bool) void {
    var pid: c.pid_t = 0;
    const rc = posix_spawnp(&pid, argv[0].?, null, null, argv, environ);
    if (rc != 0) {
        log.warn("cannot start {s} (error {d}); set BOTTOMLESS_PYTHON to an interpreter with the bottomless package", .{ std.mem.span(argv[0].?), rc });
        return;
    }
    if (wait) {
        var status: c_int = 0;
        while (waitpid(pid, &status, 0) < 0 and c._errno().* == @intFromEnum(c.E.INTR)) {}
        if (status != 0) log.warn("{s} exited with status {d}", .{ std.mem.span(argv[2].?), status });
    }
}

const Content = enum { missing_or_empty, database, other };

/// What the file holds, judged by SQLite's header string. Read without
/// opening a descriptor SQLite could lose its locks through: the file is
/// not open in this process yet (called before SQLite opens it).
fn contentOf(path: [*:0]const u8) Content {
    const fd = c.open(path, .{ .ACCMODE = .RDONLY, .CLOEXEC = true }, @as(c.mode_t, 0));
    if (fd < 0) return .missing_or_empty;
    defer _ = c.close(fd);
    var head: [16]u8 = undefined;
    const n = c.pread(fd, &head, head.len, 0);
    if (n == 0) return .missing_or_empty;
    if (n == head.len and std.mem.eql(u8, &head, "SQLite format 3\x00")) return .database;
    return .other;
}

/// Called before the main database file of a connection is opened.
pub fn beforeMainDbOpen(path: []const u8) void {
    if (!enabled() or path.len == 0 or path.len >= 4000) return;
    if (std.mem.eql(u8, path, ":memory:")) return;
    var raw: [4096]u8 = undefined;
    const rawz = std.fmt.bufPrintSentinel(&raw, "{s}", .{path}, 0) catch return;
    // The replicator runs from another directory: give it an absolute path.
    var abs_buf: [4096]u8 = undefined;
    var dir_buf: [4096]u8 = undefined;
    const abs: [*:0]const u8 = realpath(rawz, &abs_buf) orelse blk: {
        // Not there yet: resolve its directory instead.
        const slash = std.mem.lastIndexOfScalar(u8, path, '/');
        const dir = if (slash) |i| (if (i == 0) "/" else path[0..i]) else ".";
        const dirz = std.fmt.bufPrintSentinel(&dir_buf, "{s}", .{dir}, 0) catch return;
        var dabs: [4096]u8 = undefined;
        const d = realpath(dirz, &dabs) orelse return;
        const base = if (slash) |i| path[i + 1 ..] else path;
        break :blk (std.fmt.bufPrintSentinel(&abs_buf, "{s}/{s}", .{ std.mem.span(d), base }, 0) catch return).ptr;
    };
    const content = contentOf(abs);
    // Not a SQLite database (SQLite will say so): nothing to restore or
    // replicate, and nothing is created beside it.
    if (content == .other) return;
    if (content == .missing_or_empty) {
        log.info("{s} is missing or empty: restoring it from S3 if a backup exists", .{std.mem.span(abs)});
        const argv = [_:null]?[*:0]const u8{ python(), "-m", "bottomless_cli", "-d", abs, "restore-missing" };
        run(&argv, true);
    }
    var pid_buf: [32]u8 = undefined;
    const pid = std.fmt.bufPrintSentinel(&pid_buf, "{d}", .{c.getpid()}, 0) catch return;
    var log_buf: [4200]u8 = undefined;
    const logpath = std.fmt.bufPrintSentinel(&log_buf, "{s}-bottomless/replicator.log", .{std.mem.span(abs)}, 0) catch return;
    var dir_path: [4200]u8 = undefined;
    const spool_dir = std.fmt.bufPrintSentinel(&dir_path, "{s}-bottomless", .{std.mem.span(abs)}, 0) catch return;
    var db_z: [4096]u8 = undefined;
    const dbz = std.fmt.bufPrintSentinel(&db_z, "{s}", .{std.mem.span(abs)}, 0) catch return;
    @import("sidefolder.zig").ensureDir(spool_dir, dbz) catch {};
    // sh puts the replicator in the background in its own session and exits,
    // so the shell never has to reap it.
    const script = "setsid \"$0\" -m bottomless_cli -d \"$1\" replicate --exit-when-idle --parent-pid \"$2\" >>\"$3\" 2>&1 </dev/null &";
    const argv = [_:null]?[*:0]const u8{ "/bin/sh", "-c", script, python(), abs, pid, logpath };
    run(&argv, true);
    log.info("started a replicator for {s} (log: {s})", .{ std.mem.span(abs), logpath });
}

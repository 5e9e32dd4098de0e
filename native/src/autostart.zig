//! Shells (sqlite3, libSQL) have no replicator of their own. When one opens a
//! database through the extension, `bottomless-cli on-open` restores a
//! missing or empty database from S3, then starts a replicator in the
//! background that ships the spool while the shell lives and until the spool
//! is empty after it exits. One replicator per database wins its lock; the
//! others wait or exit. The shell waits for the checks (so a refused setting
//! is said in the shell), not for the replicator.
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

/// Runs `argv` and waits. The child's stderr is the host's, so what it says
/// (a refused setting, a failed restore) reaches the shell's user.
fn run(argv: [*:null]const ?[*:0]const u8, db: []const u8) void {
    var pid: c.pid_t = 0;
    const rc = posix_spawnp(&pid, argv[0].?, null, null, argv, environ);
    if (rc != 0) {
        log.warn("cannot start {s} to replicate {s} (error {d}); set BOTTOMLESS_PYTHON to an interpreter with the bottomless package", .{ std.mem.span(argv[0].?), db, rc });
        return;
    }
    var status: c_int = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (c._errno().* != @intFromEnum(c.E.INTR)) return;
    }
    const raw: u32 = @bitCast(status);
    const signal = raw & 0x7f;
    if (signal != 0) {
        log.warn("opening {s}: bottomless-cli on-open was killed by signal {d}; {s} is not being replicated", .{ db, signal, db });
    } else if ((raw >> 8) & 0xff != 0) {
        log.warn("opening {s}: bottomless-cli on-open failed with exit code {d} (its message is above)", .{ db, (raw >> 8) & 0xff });
    }
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
    var pid_buf: [32]u8 = undefined;
    const pid = std.fmt.bufPrintSentinel(&pid_buf, "{d}", .{c.getpid()}, 0) catch return;
    // One Python command restores a missing database and starts its
    // replicator in the background; the package owns that command line,
    // the side folder and the replicator's log.
    const argv = [_:null]?[*:0]const u8{ python(), "-m", "bottomless_cli", "-d", abs, "on-open", "--parent-pid", pid };
    run(&argv, std.mem.span(abs));
}

//! Exported symbols: the SQLite/libSQL extension entry point and the C ABI of
//! native/include/bottomless.h. Every function here catches every Zig error
//! and returns a status code; nothing unwinds into the host.
const std = @import("std");
const sqlite = @import("sqlite.zig");
const vfs = @import("vfs.zig");
const libsql = @import("libsql.zig");
const spool = @import("spool.zig");
const walfmt = @import("walfmt.zig");
const frames_run = @import("frames_run.zig");
const spool_offer = @import("spool_offer.zig");
const snapshot_point = @import("snapshot_point.zig");
const restore = @import("restore.zig");
const restore_abi = @import("restore_abi.zig");
const bell = @import("bell.zig");
const sidefolder = @import("sidefolder.zig");
// The restore pipeline's exports live in restore_abi.zig; named here so
// abi.checkExports sees them.
pub const bottomless_check_frames = restore_abi.bottomless_check_frames;
pub const bottomless_write_newest = restore_abi.bottomless_write_newest;
pub const bottomless_write_image = restore_abi.bottomless_write_image;
const status = @import("status.zig");
const log = @import("log.zig");
const abi = @import("abi.zig");
const autostart = @import("autostart.zig");
const build_options = @import("build_options");

comptime {
    if (build_options.check_libsql_abi) _ = @import("abi_check.zig");
    abi.checkExports(@This());
}

fn fail(err: status.Error) c_int {
    return status.code(err);
}

// ---- extension entry point ------------------------------------------------

/// libSQL 0.2 accepts syntax stock SQLite rejects. Preparing (never
/// stepping) such a statement tells the hosts apart without touching the
/// database or reading an argument the host may not have passed. (The
/// source id is no help: Debian's stock SQLite also ends it in "alt1".)
fn isLibsql(db: ?*anyopaque, api: *const sqlite.Api) bool {
    const handle = db orelse return false;
    const prepare = api.get(sqlite.PrepareV2, sqlite.Api.prepare_v2) orelse return false;
    const finalize = api.get(sqlite.Finalize, sqlite.Api.finalize) orelse return false;
    var stmt: ?*anyopaque = null;
    const rc = prepare(handle, "CREATE TEMP TABLE bottomless_probe(x) RANDOM ROWID", -1, &stmt, null);
    _ = finalize(stmt);
    return rc == sqlite.OK;
}

fn setErr(api: *const sqlite.Api, pz: ?*?[*:0]u8) void {
    _ = api;
    _ = pz; // SQLite frees *pzErrMsg with sqlite3_free; leaving it NULL is allowed.
    log.err("loading failed: {s}", .{std.mem.span(status.message())});
}

/// Called by stock SQLite with three arguments and by libSQL 0.2 with four.
/// The fourth is read only after the source id proved the host is libSQL.
fn init(db: ?*anyopaque, pz: ?*?[*:0]u8, api_ptr: ?*const sqlite.Api, libsql_api: ?*const libsql.ApiRoutines) callconv(.c) c_int {
    status.clear();
    const api = api_ptr orelse return sqlite.MISUSE;
    const fns = sqlite.fnsFromApi(api) orelse {
        status.set("the host's API routines lack vfs_find/vfs_register", .{});
        setErr(api, pz);
        return sqlite.ERROR;
    };
    const reg = vfs.register(fns) catch {
        setErr(api, pz);
        return sqlite.ERROR;
    };
    if (isLibsql(db, api)) {
        if (libsql_api) |la| {
            libsql.register(la, reg) catch {
                setErr(api, pz);
                return sqlite.ERROR;
            };
        }
    }
    // The shell's .open closes the connection that loaded us; stay loaded.
    return sqlite.OK_LOAD_PERMANENTLY;
}

comptime {
    @export(&init, .{ .name = "sqlite3_bottomless_init" });
    @export(&init, .{ .name = "sqlite3_extension_init" });
}

// ---- C ABI ------------------------------------------------------------------

pub export fn bottomless_version() [*:0]const u8 {
    return "0.1.0";
}

pub export fn bottomless_last_error() [*:0]const u8 {
    return status.message();
}

const SqliteFns = abi.SqliteFns;

pub export fn bottomless_register_vfs(fns: ?*const SqliteFns) c_int {
    status.clear();
    const f = fns orelse return misuse("fns is NULL");
    const find = f.vfs_find orelse return misuse("vfs_find is NULL");
    const reg = f.vfs_register orelse return misuse("vfs_register is NULL");
    _ = vfs.register(.{
        .vfs_find = @ptrCast(@alignCast(find)),
        .vfs_register = @ptrCast(@alignCast(reg)),
        .database_file_object = if (f.database_file_object) |d| @ptrCast(@alignCast(d)) else null,
        .malloc = if (f.malloc) |p| @ptrCast(@alignCast(p)) else null,
    }) catch |e| return fail(e);
    // This host (the Python package) runs its own replicator.
    autostart.disable();
    return status.OK;
}

fn misuse(msg: []const u8) c_int {
    status.set("{s}", .{msg});
    return status.MISUSE;
}

fn spanPath(p: ?[*:0]const u8) ?[]const u8 {
    const z = p orelse return null;
    const s = std.mem.span(z);
    if (s.len == 0) return null;
    return s;
}

const Spool = spool.Reader;

pub export fn bottomless_spool_open(db_path: ?[*:0]const u8, out: ?*?*Spool) c_int {
    status.clear();
    const path = spanPath(db_path) orelse return misuse("db_path is empty");
    const o = out orelse return misuse("out is NULL");
    const r = std.heap.c_allocator.create(Spool) catch return fail(error.OutOfMemory);
    r.* = Spool.open(std.heap.c_allocator, path) catch |e| {
        std.heap.c_allocator.destroy(r);
        return fail(e);
    };
    o.* = r;
    return status.OK;
}

pub export fn bottomless_spool_close(s: ?*Spool) void {
    const r = s orelse return;
    r.close();
    std.heap.c_allocator.destroy(r);
}

pub export fn bottomless_spool_start(s: ?*Spool, offset: ?*u64) c_int {
    status.clear();
    const r = s orelse return misuse("spool is NULL");
    const o = offset orelse return misuse("offset is NULL");
    o.* = r.start() catch |e| return fail(e);
    return status.OK;
}

const Record = abi.Record;

/// The full header of the record the caller hands back (the struct
/// bottomless_spool_next filled in; it carries only what the replicator
/// reads). Checked against the spool at the boundary: a restore can replace
/// the spool between reading a record and acknowledging it.
fn headerOf(r: *Spool, rec: *const Record) status.Error!spool.Header {
    const h = (try r.next(rec.offset)) orelse {
        status.set("no record at spool offset {d}", .{rec.offset});
        return error.Misuse;
    };
    if (h.seq != rec.seq) {
        status.set("spool offset {d} holds record {d}, not {d}", .{ rec.offset, h.seq, rec.seq });
        return error.Misuse;
    }
    return h;
}

pub export fn bottomless_spool_next(s: ?*Spool, offset: u64, out: ?*Record) c_int {
    status.clear();
    const r = s orelse return misuse("spool is NULL");
    const o = out orelse return misuse("out is NULL");
    const h = (r.next(offset) catch |e| return fail(e)) orelse return status.DONE;
    o.* = recordOf(.{ .offset = offset, .header = h });
    return status.OK;
}

pub export fn bottomless_spool_frames(s: ?*Spool, rec: ?*const Record, first: u32, count: u32, chain: ?*walfmt.Chain, out: ?[*]u8, cap: usize) c_int {
    status.clear();
    const r = s orelse return misuse("spool is NULL");
    const rc = rec orelse return misuse("record is NULL");
    const ch = chain orelse return misuse("chain is NULL");
    const o = out orelse return misuse("out is NULL");
    const h = headerOf(r, rc) catch |e| return fail(e);
    r.frames(rc.offset, h, first, count, ch, o[0..cap]) catch |e| switch (e) {
        error.Busy => {
            status.set("the WAL is being rewritten; try again", .{});
            return status.BUSY;
        },
        else => |other| return fail(other),
    };
    return status.OK;
}

pub export fn bottomless_spool_frames_run(s: ?*Spool, offset: u64, count: u64, max_frames: u64, chain: ?*walfmt.Chain, out: ?[*]u8, cap: usize, written: ?*usize, taken: ?*u64) c_int {
    status.clear();
    const r = s orelse return misuse("spool is NULL");
    const ch = chain orelse return misuse("chain is NULL");
    const o = out orelse return misuse("out is NULL");
    const w = written orelse return misuse("written is NULL");
    const t = taken orelse return misuse("taken is NULL");
    if (count == 0 or max_frames == 0) return misuse("count and max_frames must be at least 1");
    const run = frames_run.framesRun(r, offset, count, max_frames, ch, o[0..cap]) catch |e| switch (e) {
        error.Busy => {
            status.set("the WAL is being rewritten; try again", .{});
            return status.BUSY;
        },
        else => |other| return fail(other),
    };
    std.debug.assert(run.records >= 1 and run.records <= count and run.bytes <= cap);
    w.* = run.bytes;
    t.* = run.records;
    return status.OK;
}

/// What the replicator reads of the record found at `f.offset` (all zeros
/// for none: seq 0 is no record).
fn recordOf(found: ?spool_offer.Found) Record {
    const f = found orelse return std.mem.zeroes(Record);
    const h = f.header;
    return .{ .seq = h.seq, .offset = f.offset, .next_offset = f.offset + h.totalSize(), .unix_ms = h.unix_ms, .page_size = h.page_size, .db_size = h.db_size, .n_pages = h.n_pages, .flags = h.flags };
}

pub export fn bottomless_spool_offer(s: ?*Spool, after_seq: u64, page_size: u32, max_raw_bytes: u64, max_span_ms: u64, out: ?*abi.Offer) c_int {
    status.clear();
    const r = s orelse return misuse("spool is NULL");
    const o = out orelse return misuse("out is NULL");
    if (max_raw_bytes == 0) return misuse("max_raw_bytes must be at least 1");
    const found = spool_offer.offer(r, .{ .after_seq = after_seq, .page_size = page_size, .max_raw_bytes = max_raw_bytes, .max_span_ms = max_span_ms }) catch |e| return fail(e);
    std.debug.assert((found.count == 0) == (found.first == null));
    o.* = .{
        .skipped = recordOf(found.skipped),
        .first = recordOf(found.first),
        .next = recordOf(found.next),
        .count = found.count,
        .raw_bytes = found.raw_bytes,
        .max_pages = found.max_pages,
        .stop = @intFromEnum(found.stop),
    };
    return status.OK;
}

pub export fn bottomless_spool_ack(s: ?*Spool, rec: ?*const Record) c_int {
    status.clear();
    const r = s orelse return misuse("spool is NULL");
    const rc = rec orelse return misuse("record is NULL");
    const h = headerOf(r, rc) catch |e| return fail(e);
    r.ack(rc.offset, h) catch |e| return fail(e);
    return status.OK;
}

const Stats = abi.Stats;

pub export fn bottomless_spool_stats(s: ?*Spool, out: ?*Stats) c_int {
    status.clear();
    const r = s orelse return misuse("spool is NULL");
    const o = out orelse return misuse("out is NULL");
    const st = r.stats() catch |e| return fail(e);
    o.* = .{ .records = st.records, .bytes = st.bytes, .disk_bytes = st.disk_bytes, .oldest_unix_ms = st.oldest_unix_ms, .last_seq = st.last_seq, .acked_seq = st.acked_seq, .gaps = st.gaps, .dropped_seq = st.dropped_seq };
    return status.OK;
}

pub export fn bottomless_spool_seq_at(s: ?*Spool, salt1: u32, salt2: u32, mx_frame: u32, before_seq: u64, out: ?*u64) c_int {
    status.clear();
    const r = s orelse return misuse("spool is NULL");
    const o = out orelse return misuse("out is NULL");
    const seq = snapshot_point.seqAt(r, .{ .salt1 = salt1, .salt2 = salt2, .mx_frame = mx_frame }, before_seq) catch |e| return fail(e);
    o.* = seq orelse return status.BUSY;
    return status.OK;
}

pub export fn bottomless_spool_reconcile(s: ?*Spool, appended: ?*u64) c_int {
    status.clear();
    const r = s orelse return misuse("spool is NULL");
    var w = spool.Writer{ .allocator = std.heap.c_allocator, .paths = r.paths };
    defer w.deinit();
    const n = w.reconcile(null) catch |e| return fail(e);
    w.sync() catch |e| return fail(e);
    if (appended) |a| a.* = n;
    return status.OK;
}

pub export fn bottomless_bell_arm(db_path: ?[*:0]const u8) c_int {
    status.clear();
    const path = spanPath(db_path) orelse return misuse("db_path is empty");
    var paths: sidefolder.Paths = .{};
    paths.init(path) catch |e| return fail(e);
    bell.arm(&paths) catch |e| return fail(e);
    return status.OK;
}

pub export fn bottomless_finish_restore(db_path: ?[*:0]const u8, page_size: u32, db_size: u32) c_int {
    status.clear();
    const path = db_path orelse return misuse("db_path is NULL");
    restore.finish(path, page_size, db_size) catch |e| return fail(e);
    return status.OK;
}

pub export fn bottomless_wal_checksum(data: ?[*]const u8, len: usize, big_endian: c_int, chain: ?*walfmt.Chain) c_int {
    status.clear();
    const ch = chain orelse return misuse("chain is NULL");
    if (len % 8 != 0) return misuse("length must be a multiple of 8");
    const d: []const u8 = if (len == 0) &.{} else (data orelse return misuse("data is NULL"))[0..len];
    var s = [2]u32{ ch.cksum1, ch.cksum2 };
    walfmt.checksum(d, big_endian != 0, &s);
    ch.cksum1 = s[0];
    ch.cksum2 = s[1];
    return status.OK;
}

// Every file of the core, so `zig build test` compiles each one and runs
// its tests (tests/test_build.py checks that none is missing here).
const all_files = struct {
    pub const abi_layout = @import("abi_layout.zig");
    pub const autostart = @import("autostart.zig");
    pub const bell = @import("bell.zig");
    pub const capture = @import("capture.zig");
    pub const copier = @import("copier.zig");
    pub const env_bytes = @import("env_bytes.zig");
    pub const fileio = @import("fileio.zig");
    pub const frames_run = @import("frames_run.zig");
    pub const batch_pages = @import("batch_pages.zig");
    pub const abi = @import("abi.zig");
    pub const libsql = @import("libsql.zig");
    pub const log = @import("log.zig");
    pub const materialize = @import("materialize.zig");
    pub const newest = @import("newest.zig");
    pub const payload_hash = @import("payload_hash.zig");
    pub const problems = @import("problems.zig");
    pub const restore = @import("restore.zig");
    pub const restore_abi = @import("restore_abi.zig");
    pub const seal = @import("seal.zig");
    pub const sidefolder = @import("sidefolder.zig");
    pub const snapshot_point = @import("snapshot_point.zig");
    pub const spool = @import("spool.zig");
    pub const spool_ack = @import("spool_ack.zig");
    pub const spool_chunks = @import("spool_chunks.zig");
    pub const spool_format = @import("spool_format.zig");
    pub const spool_limit = @import("spool_limit.zig");
    pub const spool_offer = @import("spool_offer.zig");
    pub const spool_reader = @import("spool_reader.zig");
    pub const spool_tail = @import("spool_tail.zig");
    pub const spool_tests = @import("spool_tests.zig");
    pub const spool_writer = @import("spool_writer.zig");
    pub const sqlite = @import("sqlite.zig");
    pub const status = @import("status.zig");
    pub const vfs = @import("vfs.zig");
    pub const wal_handles = @import("wal_handles.zig");
    pub const wal_hold = @import("wal_hold.zig");
    pub const walfmt = @import("walfmt.zig");
    pub const walread = @import("walread.zig");
};

test {
    std.testing.refAllDecls(all_files);
}

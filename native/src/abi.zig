//! The structs and constants of the C ABI, native/include/bottomless.h, as
//! the core declares them, checked at compile time against the header's own
//! translation (build.zig translates it in every build): a header and a
//! library that disagree on a field never build. The header is the source
//! of truth; root.zig checks the exported functions against it too.
const std = @import("std");
const c = @import("bottomless_h");
const walfmt = @import("walfmt.zig");
const format = @import("spool_format.zig");
const layout = @import("abi_layout.zig");
const spool_offer = @import("spool_offer.zig");

fn upper(comptime name: []const u8) []const u8 {
    comptime {
        var out: [name.len]u8 = undefined;
        for (name, 0..) |ch, i| out[i] = std.ascii.toUpper(ch);
        const final = out;
        return &final;
    }
}

pub const header = c;

/// bottomless_sqlite_fns
pub const SqliteFns = extern struct {
    vfs_find: ?*const anyopaque,
    vfs_register: ?*const anyopaque,
    database_file_object: ?*const anyopaque,
    malloc: ?*const anyopaque,
};

/// bottomless_record: what the replicator reads of a record, and hands
/// back (as the same struct) to read its pages and acknowledge it.
pub const Record = extern struct {
    seq: u64,
    offset: u64,
    next_offset: u64,
    unix_ms: u64,
    page_size: u32,
    db_size: u32,
    n_pages: u32,
    flags: u32,
};

/// bottomless_stats
pub const Stats = extern struct {
    records: u64,
    bytes: u64,
    disk_bytes: u64,
    oldest_unix_ms: u64,
    last_seq: u64,
    acked_seq: u64,
    gaps: u64,
    dropped_seq: u64,
};

/// bottomless_offer
pub const Offer = extern struct {
    skipped: Record,
    first: Record,
    next: Record,
    count: u64,
    raw_bytes: u64,
    max_pages: u32,
    stop: u32,
};

/// bottomless_chain
pub const Chain = walfmt.Chain;

pub const apply_verify: c_int = c.BOTTOMLESS_APPLY_VERIFY;
pub const apply_big_endian: c_int = c.BOTTOMLESS_APPLY_BIG_ENDIAN;

comptime {
    layout.sameLayout(SqliteFns, c.bottomless_sqlite_fns);
    layout.sameLayout(Record, c.bottomless_record);
    layout.sameLayout(Stats, c.bottomless_stats);
    layout.sameLayout(Offer, c.bottomless_offer);
    for (std.enums.values(spool_offer.Stop)) |stop| {
        if (@intFromEnum(stop) != @field(c, "BOTTOMLESS_OFFER_" ++ upper(@tagName(stop)))) @compileError("spool_offer.Stop." ++ @tagName(stop) ++ " differs from bottomless.h");
    }
    layout.sameLayout(Chain, c.bottomless_chain);
    if (format.Header.flag_gap_before != c.BOTTOMLESS_GAP_BEFORE) @compileError("spool_format.Header.flag_gap_before differs from BOTTOMLESS_GAP_BEFORE");
}

/// Fails the build unless every function bottomless.h declares is one of
/// `Exports`' declarations, with the same number of parameters, each of
/// the same size and kind (pointer or not), and the same return type.
pub fn checkExports(comptime Exports: type) void {
    comptime {
        @setEvalBranchQuota(100_000);
        var found = 0;
        for (std.meta.declarations(c)) |name| {
            if (!std.mem.startsWith(u8, name, "bottomless_")) continue;
            const T = @TypeOf(@field(c, name));
            if (@typeInfo(T) != .@"fn") continue;
            if (!@hasDecl(Exports, name)) @compileError("bottomless.h declares " ++ name ++ ", which the core does not export");
            sameSignature(name, @TypeOf(@field(Exports, name)), T);
            found += 1;
        }
        if (found == 0) @compileError("bottomless.h declares no functions: wrong header?");
    }
}

fn sameSignature(comptime name: []const u8, comptime Ours: type, comptime Theirs: type) void {
    const a = @typeInfo(Ours).@"fn";
    const b = @typeInfo(Theirs).@"fn";
    if (a.param_types.len != b.param_types.len) @compileError(name ++ " takes a different number of parameters than bottomless.h says");
    if (!std.meta.eql(a.attrs.@"callconv", std.builtin.CallingConvention.c)) @compileError(name ++ " is not callconv(.c)");
    for (a.param_types, b.param_types, 0..) |pa, pb, i| {
        const A = pa.?;
        const B = pb.?;
        if (@sizeOf(A) != @sizeOf(B) or isPointer(A) != isPointer(B) or (!isPointer(A) and A != B)) {
            @compileError(std.fmt.comptimePrint("parameter {d} of {s} differs from bottomless.h: ours {s}, the header's {s}", .{ i, name, @typeName(A), @typeName(B) }));
        }
    }
    const ra = a.return_type.?;
    const rb = b.return_type.?;
    if (isPointer(ra) != isPointer(rb) or (!isPointer(ra) and ra != rb)) @compileError(name ++ " returns another type than bottomless.h says");
}

fn isPointer(comptime T: type) bool {
    return switch (@typeInfo(T)) {
        .pointer => true,
        .optional => |o| @typeInfo(o.child) == .pointer,
        else => false,
    };
}

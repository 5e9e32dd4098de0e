//! Compile-time comparison of a struct we declare in Zig with the same
//! struct translated from a C header: used for libSQL's ABI (abi_check.zig)
//! and for our own bottomless.h (header_check.zig).
const std = @import("std");

/// Fails the build unless A and B have the same size and alignment, and
/// every field of A is a field of B with the same offset and size (and B
/// has no field A lacks).
pub fn sameLayout(comptime A: type, comptime B: type) void {
    comptime {
        if (@sizeOf(A) != @sizeOf(B)) @compileError(std.fmt.comptimePrint("size of {s} differs: ours {d}, the header's {d}", .{ @typeName(A), @sizeOf(A), @sizeOf(B) }));
        if (@alignOf(A) != @alignOf(B)) @compileError("alignment of " ++ @typeName(A) ++ " differs from the header's");
        const fa = @typeInfo(A).@"struct";
        const fb = @typeInfo(B).@"struct";
        if (fa.field_names.len != fb.field_names.len) @compileError(std.fmt.comptimePrint("{s} has {d} fields, the header's {d}", .{ @typeName(A), fa.field_names.len, fb.field_names.len }));
        for (fa.field_names, fa.field_types) |name, T| sameField(A, B, name, T);
    }
}

/// Like sameLayout, for the named fields only (a struct of which we
/// declare part, or with fields we type differently).
pub fn sameOffsets(comptime A: type, comptime B: type, comptime fields: []const []const u8) void {
    comptime {
        if (@sizeOf(A) != @sizeOf(B)) @compileError(std.fmt.comptimePrint("size of {s} differs: ours {d}, the header's {d}", .{ @typeName(A), @sizeOf(A), @sizeOf(B) }));
        for (fields) |name| sameField(A, B, name, @FieldType(A, name));
    }
}

fn sameField(comptime A: type, comptime B: type, comptime name: []const u8, comptime T: type) void {
    if (!@hasField(B, name)) @compileError(@typeName(A) ++ "." ++ name ++ " is not in the header");
    if (@offsetOf(A, name) != @offsetOf(B, name)) @compileError("offset of " ++ @typeName(A) ++ "." ++ name ++ " differs from the header's");
    if (@sizeOf(T) != @sizeOf(@FieldType(B, name))) @compileError("size of " ++ @typeName(A) ++ "." ++ name ++ " differs from the header's");
}

test "layouts that differ in a field's offset are told apart" {
    const A = extern struct { a: u32, b: u64 };
    const B = extern struct { a: u32, b: u64 };
    sameLayout(A, B);
    const C = extern struct { b: u64, a: u32 };
    try std.testing.expect(@offsetOf(A, "b") != @offsetOf(C, "b"));
}

//! Builds the bottomless extension: one shared library that loads into stock
//! SQLite (as a VFS) and into libSQL 0.2 (as virtual WAL methods).
//!
//!   zig build                                  host, Debug
//!   zig build -Doptimize=ReleaseFast           what the Python package ships
//!   zig build -Dtarget=aarch64-linux-gnu       cross-compilation
//!   zig build -Dlibsql-include=DIR             check our libSQL ABI declarations
//!                                              against a libSQL 0.2 build's headers
//!   zig build test                             native unit tests (every file's)
//!
//! Installs lib/libbottomless.so and include/bottomless.h, its C ABI.
const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});
    const libsql_include = b.option([]const u8, "libsql-include", "directory with libSQL 0.2 headers (sqlite3.h, wal.h) to check the ABI declarations against");

    const root = b.createModule(.{
        .root_source_file = b.path("native/src/root.zig"),
        .target = target,
        .optimize = optimize,
        .link_libc = true,
    });
    const options = b.addOptions();
    options.addOption(bool, "check_libsql_abi", libsql_include != null);
    root.addOptions("build_options", options);

    // The C ABI's header, translated in every build: the core reads its
    // status codes from it and checks its structs and exported functions
    // against it at compile time (native/src/abi.zig).
    const header = b.path("native/include/bottomless.h");
    const abi_h = b.addTranslateC(.{
        .root_source_file = header,
        .target = target,
        .optimize = optimize,
    });
    root.addImport("bottomless_h", abi_h.createModule());

    if (libsql_include) |dir| {
        // Translate the real headers and let native/src/abi_check.zig compare
        // sizes and offsets at compile time; nothing of them is committed.
        const tc = b.addTranslateC(.{
            .root_source_file = b.path("native/abi/libsql_wal.h"),
            .target = target,
            .optimize = optimize,
        });
        tc.addIncludePath(.{ .cwd_relative = dir });
        root.addImport("libsql_c", tc.createModule());
    }

    const lib = b.addLibrary(.{
        .linkage = .dynamic,
        .name = "bottomless",
        .root_module = root,
    });
    b.installArtifact(lib);
    // The header beside the library it belongs to (zig-out/include/), so a
    // binding never pairs one build's library with another's header; only
    // once the library built against it compiled.
    const install_header = b.addInstallFile(header, "include/bottomless.h");
    install_header.step.dependOn(&lib.step);
    b.getInstallStep().dependOn(&install_header.step);

    const tests = b.addTest(.{ .root_module = root });
    const run_tests = b.addRunArtifact(tests);
    b.step("test", "run the native unit tests").dependOn(&run_tests.step);
}

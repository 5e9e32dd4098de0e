//! The spool's writer and reader together, on real files in a temporary
//! folder: what the writer appends is what the reader reads back, and a
//! torn tail or a damaged record is told apart from a good one.
const std = @import("std");
const format = @import("spool_format.zig");
const fileio = @import("fileio.zig");
const sidefolder = @import("sidefolder.zig");
const Writer = @import("spool_writer.zig").Writer;
const Reader = @import("spool_reader.zig").Reader;
const bell = @import("bell.zig");
const wal_hold = @import("wal_hold.zig");
const spool_ack = @import("spool_ack.zig");
const testing = std.testing;
const record_size = format.record_size;

extern "c" fn mkdtemp(template: [*:0]u8) ?[*:0]u8;

/// A database path in a fresh folder, removed with everything capture put
/// beside it.
const Scratch = struct {
    dir: [64]u8 = undefined,
    db: [96]u8 = undefined,
    db_len: usize = 0,

    fn init(self: *Scratch) !void {
        _ = try std.fmt.bufPrintSentinel(&self.dir, "/tmp/bottomless-zig-test-XXXXXX", .{}, 0);
        _ = mkdtemp(@ptrCast(&self.dir)) orelse return error.SkipZigTest;
        const db = try std.fmt.bufPrint(&self.db, "{s}/x.db", .{std.mem.sliceTo(&self.dir, 0)});
        self.db_len = db.len;
    }

    fn path(self: *const Scratch) []const u8 {
        return self.db[0..self.db_len];
    }

    fn deinit(self: *const Scratch) void {
        var p: sidefolder.Paths = .{};
        p.init(self.path()) catch return;
        for ([_]*const [4096]u8{ &p.spool, &p.pages, &p.ack, &p.pages_lock, &p.seal, &p.bell }) |f| _ = std.c.unlink(sidefolder.Paths.z(f));
        _ = std.c.rmdir(sidefolder.Paths.z(&p.dir));
        _ = std.c.rmdir(@ptrCast(&self.dir));
    }
};

/// Appends `n` one-page transactions of WAL cycle (7, 9), frames 1..n.
fn appendCommits(w: *Writer, n: u32) !void {
    for (1..n + 1) |i| {
        const frame: u32 = @intCast(i);
        try w.append(4096, 7, 9, frame, frame, 10 + frame);
    }
}

/// Flips bits of one byte of the spool file.
fn damage(path: []const u8, offset: u64, mask: u8) !void {
    var p: sidefolder.Paths = .{};
    try p.init(path);
    const fd = try fileio.open(sidefolder.Paths.z(&p.spool), true, false);
    defer fileio.close(fd);
    var b: [1]u8 = undefined;
    try testing.expectEqual(@as(usize, 1), try fileio.preadAll(fd, &b, offset));
    b[0] ^= mask;
    try fileio.pwriteAll(fd, &b, offset);
}

test "records appended by the writer read back in order with their fields" {
    var s: Scratch = .{};
    try s.init();
    defer s.deinit();
    var w = try Writer.init(testing.allocator, s.path());
    defer w.deinit();
    try appendCommits(&w, 3);
    try w.sync();

    var r = try Reader.open(testing.allocator, s.path());
    defer r.close();
    var off = try r.start();
    try testing.expectEqual(@as(u64, 0), off);
    for (1..4) |i| {
        const h = (try r.next(off)).?;
        try testing.expectEqual(@as(u64, i), h.seq);
        try testing.expectEqual(@as(u32, 4096), h.page_size);
        try testing.expectEqual(@as(u32, @intCast(10 + i)), h.db_size);
        try testing.expectEqual(@as(u32, 1), h.n_pages);
        try testing.expectEqual(@as(u32, @intCast(i)), h.wal_commit_frame);
        try testing.expectEqual(@as(u32, 7), h.wal_salt1);
        off += h.totalSize();
    }
    try testing.expect(try r.next(off) == null);
    const st = try r.stats();
    try testing.expectEqual(@as(u64, 3), st.records);
    try testing.expectEqual(@as(u64, 3), st.last_seq);
}

test "a torn last record is not read, and the next writer replaces it" {
    var s: Scratch = .{};
    try s.init();
    defer s.deinit();
    {
        var w = try Writer.init(testing.allocator, s.path());
        defer w.deinit();
        try appendCommits(&w, 2);
    }
    // A crash between the body and the trailer of record 2.
    try damage(s.path(), record_size + @offsetOf(format.Record, "trailer"), 0xff);
    var r = try Reader.open(testing.allocator, s.path());
    defer r.close();
    try testing.expectEqual(@as(u64, 1), (try r.next(0)).?.seq);
    try testing.expect(try r.next(record_size) == null);

    var w = try Writer.init(testing.allocator, s.path());
    defer w.deinit();
    try w.refresh();
    try testing.expectEqual(@as(u64, record_size), w.end);
    try testing.expectEqual(@as(u64, 1), w.last.?.seq);
    try w.append(4096, 7, 9, 2, 2, 12);
    const h = (try r.next(record_size)).?;
    try testing.expectEqual(@as(u64, 2), h.seq);
}

test "a damaged record with a good one after it is corruption, not the end" {
    var s: Scratch = .{};
    try s.init();
    defer s.deinit();
    var w = try Writer.init(testing.allocator, s.path());
    defer w.deinit();
    try appendCommits(&w, 3);
    // One bit of record 2's commit time: its header check fails.
    try damage(s.path(), record_size + @offsetOf(format.Header, "unix_ms"), 0x01);
    var r = try Reader.open(testing.allocator, s.path());
    defer r.close();
    try testing.expectEqual(@as(u64, 1), (try r.next(0)).?.seq);
    try testing.expectError(error.Corrupt, r.next(record_size));
    try testing.expectEqual(@as(u64, 3), (try r.next(2 * record_size)).?.seq);
}

test "an armed bell rings at the next record, once" {
    var s: Scratch = .{};
    try s.init();
    defer s.deinit();
    var w = try Writer.init(testing.allocator, s.path());
    defer w.deinit();
    try appendCommits(&w, 1); // nobody armed it: silent
    try testing.expect(!try bell.armed(&w.paths));
    try bell.arm(&w.paths);
    try testing.expect(try bell.armed(&w.paths));
    try w.append(4096, 7, 9, 2, 2, 12);
    try testing.expect(!try bell.armed(&w.paths));
    const fd = try fileio.open(sidefolder.Paths.z(&w.paths.bell), false, false);
    defer fileio.close(fd);
    var rung: [1]u8 = undefined;
    try testing.expectEqual(@as(usize, 1), try fileio.preadAll(fd, &rung, 64));
    try testing.expectEqual(@as(u8, 1), rung[0]);
}

test "the WAL is held while a quarter of it is unacknowledged, and only then" {
    var s: Scratch = .{};
    try s.init();
    defer s.deinit();
    var w = try Writer.init(testing.allocator, s.path());
    defer w.deinit();
    // Records 1..3, committed at WAL frames 10, 20 and 400 of one cycle.
    try w.append(4096, 7, 8, 1, 10, 2);
    try w.append(4096, 7, 8, 11, 20, 2);
    try w.append(4096, 7, 8, 21, 400, 2);
    var hold = wal_hold.Hold{};
    defer hold.deinit();
    const wal = wal_hold.Wal{ .page_size = 4096, .salt1 = 7, .salt2 = 8, .mx_frame = 400 };
    try testing.expect(!hold.wanted(&w.paths, w.fd, null, wal));
    // No ack file: no replicator has read the spool, nothing to hold for.
    try testing.expect(!hold.wanted(&w.paths, w.fd, w.last, wal));
    try spool_ack.writeAck(&w.paths, .{ .acked_seq = 2, .next_offset = 2 * record_size, .last_record_offset = record_size });
    hold.ack_read_ns = null; // the hold reuses what it read for a millisecond
    // 380 of 400 frames unshipped.
    try testing.expect(hold.wanted(&w.paths, w.fd, w.last, wal));
    var other_cycle = wal;
    other_cycle.salt1 = 9; // the newest record is of an earlier WAL cycle
    try testing.expect(!hold.wanted(&w.paths, w.fd, w.last, other_cycle));
    var full = wal;
    full.mx_frame = 16_400; // past the default size
    try testing.expect(!hold.wanted(&w.paths, w.fd, w.last, full));
    // Acknowledged through the newest record (the file rewritten in place,
    // read through the descriptor the hold keeps open).
    try spool_ack.writeAck(&w.paths, .{ .acked_seq = 3, .next_offset = 3 * record_size, .last_record_offset = 2 * record_size });
    hold.ack_read_ns = null;
    try testing.expect(!hold.wanted(&w.paths, w.fd, w.last, wal));
}

test "the WAL is reused once the unshipped tail is short" {
    var s: Scratch = .{};
    try s.init();
    defer s.deinit();
    var w = try Writer.init(testing.allocator, s.path());
    defer w.deinit();
    try w.append(4096, 7, 8, 1, 350, 2);
    try w.append(4096, 7, 8, 351, 400, 2);
    try spool_ack.writeAck(&w.paths, .{ .acked_seq = 1, .next_offset = record_size, .last_record_offset = 0 });
    var hold = wal_hold.Hold{};
    defer hold.deinit();
    // 50 of 400 frames unshipped: the tail is copied and the WAL reused.
    try testing.expect(!hold.wanted(&w.paths, w.fd, w.last, .{ .page_size = 4096, .salt1 = 7, .salt2 = 8, .mx_frame = 400 }));
    // 150 of 500 are not a short tail yet.
    try testing.expect(hold.wanted(&w.paths, w.fd, w.last, .{ .page_size = 4096, .salt1 = 7, .salt2 = 8, .mx_frame = 500 }));
}

//! A batch holding each page once: within one batch only its last commit is
//! ever restored (a restore applies whole objects, and libSQL's applies up
//! to the last commit frame), so older images of a page the batch rewrites
//! are dead weight. Hot pages of small transactions are rewritten hundreds of
//! times a second; keeping only their newest image shrinks what the
//! replicator checksums, compresses and uploads by that factor.
const std = @import("std");
const walfmt = @import("walfmt.zig");
const Error = @import("status.zig").Error;

/// A batch being gathered in `area`: each page once, in a slot of its own,
/// overwritten in place by each newer image (one copy per raw frame, no
/// compaction passes), and finally laid out in the order of the pages'
/// newest images, which is what keeping only the last image of each page
/// of the raw frames, in order, gives.
pub const Newest = struct {
    area: []u8,
    fsz: usize,
    /// Slot i holds page pgnos[i], whose newest image was raw frame last[i].
    pgnos: std.ArrayListUnmanaged(u32) = .empty,
    last: std.ArrayListUnmanaged(u64) = .empty,
    slot_of: std.AutoHashMapUnmanaged(u32, u32) = .empty,
    /// Raw frames taken so far.
    raw: u64 = 0,

    const unplaced = std.math.maxInt(u32);

    pub fn init(area: []u8, page_size: u32) Newest {
        std.debug.assert(page_size > 0);
        return .{ .area = area, .fsz = walfmt.frame_header_size + page_size };
    }

    pub fn deinit(self: *Newest) void {
        self.pgnos.deinit(std.heap.c_allocator);
        self.last.deinit(std.heap.c_allocator);
        self.slot_of.deinit(std.heap.c_allocator);
    }

    pub fn pages(self: *const Newest) usize {
        return self.pgnos.items.len;
    }

    /// Where the next frames are read to before `take` (after the slots).
    pub fn staging(self: *const Newest) []u8 {
        return self.area[self.pages() * self.fsz ..];
    }

    /// How many pages the batch would hold with `frames` (read into
    /// `staging()`) taken as well.
    pub fn pagesWith(self: *Newest, frames: []const u8) Error!usize {
        std.debug.assert(frames.len % self.fsz == 0);
        const n = frames.len / self.fsz;
        try self.slot_of.ensureUnusedCapacity(std.heap.c_allocator, @intCast(n));
        var added: usize = 0;
        for (0..n) |k| {
            const got = self.slot_of.getOrPutAssumeCapacity(pgnoAt(frames, self.fsz, k));
            if (!got.found_existing) {
                got.value_ptr.* = unplaced; // placed by take, or never (the batch ends before them)
                added += 1;
            }
        }
        return self.pages() + added;
    }

    /// Takes `frames`, which pagesWith has just seen, from `staging()`.
    pub fn take(self: *Newest, frames: []u8) Error!void {
        std.debug.assert(frames.ptr == self.staging().ptr and frames.len % self.fsz == 0);
        const n = frames.len / self.fsz;
        try self.pgnos.ensureUnusedCapacity(std.heap.c_allocator, n);
        try self.last.ensureUnusedCapacity(std.heap.c_allocator, n);
        const base = self.pages();
        for (0..n) |k| {
            const src = frames[k * self.fsz ..][0..self.fsz];
            const slot = self.slot_of.getPtr(pgnoAt(frames, self.fsz, k)).?;
            if (slot.* == unplaced) {
                slot.* = @intCast(self.pages());
                self.pgnos.appendAssumeCapacity(pgnoAt(frames, self.fsz, k));
                self.last.appendAssumeCapacity(0);
            }
            // A slot of these frames lies before the frame itself (or is
            // it): a copy never overwrites a frame not yet taken, and two
            // distinct whole frames never overlap.
            std.debug.assert(slot.* < base + k + 1);
            const dst = self.area[@as(usize, slot.*) * self.fsz ..][0..self.fsz];
            if (dst.ptr != src.ptr) @memcpy(dst, src);
            self.last.items[slot.*] = self.raw + k;
        }
        self.raw += n;
    }

    /// Lays the batch out at the start of `area`, pages past `db_size` (the
    /// last commit truncated them) dropped, as one transaction continuing
    /// `chain`, the last frame its commit; returns the bytes.
    pub fn finish(self: *Newest, db_size: u32, chain: *walfmt.Chain) Error!usize {
        const n = self.pages();
        if (n == 0) return 0;
        const order = try std.heap.c_allocator.alloc(u32, n);
        defer std.heap.c_allocator.free(order);
        for (order, 0..) |*o, i| o.* = @intCast(i);
        std.mem.sort(u32, order, self.last.items, struct {
            fn lt(last: []const u64, a: u32, b: u32) bool {
                return last[a] < last[b];
            }
        }.lt);
        var kept: usize = 0;
        for (order) |slot| {
            if (db_size > 0 and self.pgnos.items[slot] > db_size) continue;
            order[kept] = slot;
            kept += 1;
        }
        std.debug.assert(kept > 0); // the newest frame is the last commit's own page
        try self.permute(order[0..kept]);
        var work = chain.*;
        for (0..kept) |i| {
            const f = self.area[i * self.fsz ..][0..self.fsz];
            const commit = if (i == kept - 1) db_size else 0;
            walfmt.encodeFrame(f[0..walfmt.frame_header_size], pgnoAt(self.area, self.fsz, i), commit, f[walfmt.frame_header_size..], &work);
        }
        chain.* = work;
        return kept * self.fsz;
    }

    /// Moves the frame of slot order[i] to position i, for every i, by
    /// swaps through one frame of scratch (the slots order leaves out end
    /// up after them).
    fn permute(self: *Newest, order: []const u32) Error!void {
        const tmp = try std.heap.c_allocator.alloc(u8, self.fsz);
        defer std.heap.c_allocator.free(tmp);
        const n = self.pages();
        const pos_of = try std.heap.c_allocator.alloc(u32, n); // slot -> position now
        defer std.heap.c_allocator.free(pos_of);
        const slot_at = try std.heap.c_allocator.alloc(u32, n); // position -> slot now
        defer std.heap.c_allocator.free(slot_at);
        for (0..n) |k| {
            pos_of[k] = @intCast(k);
            slot_at[k] = @intCast(k);
        }
        for (order, 0..) |slot, i| {
            const p: usize = pos_of[slot];
            if (p == i) continue;
            const a = self.area[i * self.fsz ..][0..self.fsz];
            const b = self.area[p * self.fsz ..][0..self.fsz];
            @memcpy(tmp, a);
            @memcpy(a, b);
            @memcpy(b, tmp);
            const displaced = slot_at[i];
            pos_of[displaced] = @intCast(p);
            slot_at[p] = displaced;
            pos_of[slot] = @intCast(i);
            slot_at[i] = slot;
        }
    }
};

fn pgnoAt(frames: []const u8, fsz: usize, i: usize) u32 {
    return std.mem.readInt(u32, frames[i * fsz ..][0..4], .big);
}

/// All of `frames` as one batch, taken at once (the staging area is the
/// frames themselves).
fn newestOfAll(frames: []u8, page_size: u32, db_size: u32, chain: *walfmt.Chain) Error!usize {
    var batch = Newest.init(frames, page_size);
    defer batch.deinit();
    _ = try batch.pagesWith(frames);
    try batch.take(frames);
    return batch.finish(db_size, chain);
}

test "keeps the newest image of each page, drops truncated pages, one commit frame last" {
    const ps = 512;
    const fsz = walfmt.frame_header_size + ps;
    var buf: [5 * fsz]u8 = undefined;
    // pages 1, 2, 1, 3, 2 with contents 10..14; the last commit says 2 pages
    const pgnos = [_]u32{ 1, 2, 1, 3, 2 };
    var scratch = walfmt.Chain{ .salt1 = 1, .salt2 = 2, .cksum1 = 0, .cksum2 = 0 };
    for (pgnos, 0..) |p, i| {
        const f = buf[i * fsz ..][0..fsz];
        @memset(f[walfmt.frame_header_size..], @intCast(10 + i));
        walfmt.encodeFrame(f[0..walfmt.frame_header_size], p, if (i == 1) 3 else 0, f[walfmt.frame_header_size..], &scratch);
    }
    var chain = walfmt.Chain{ .salt1 = 1, .salt2 = 2, .cksum1 = 7, .cksum2 = 8 };
    const kept = try newestOfAll(&buf, ps, 2, &chain);
    try std.testing.expectEqual(@as(usize, 2 * fsz), kept);
    var check = walfmt.Chain{ .salt1 = 1, .salt2 = 2, .cksum1 = 7, .cksum2 = 8 };
    const want = [_][3]u32{ .{ 1, 12, 0 }, .{ 2, 14, 2 } }; // pgno, content, commit
    for (want, 0..) |wnt, i| {
        const f = buf[i * fsz ..][0..fsz];
        const h = walfmt.FrameHeader.parse(f[0..walfmt.frame_header_size]);
        try std.testing.expectEqual(wnt[0], h.pgno);
        try std.testing.expectEqual(@as(u8, @intCast(wnt[1])), f[walfmt.frame_header_size + 100]);
        try std.testing.expectEqual(wnt[2], std.mem.readInt(u32, f[4..8], .big));
        try std.testing.expect(walfmt.verifyFrame(f[0..walfmt.frame_header_size], f[walfmt.frame_header_size..], walfmt.ship_big_endian, &check));
    }
    try std.testing.expectEqual(chain, check);
}

/// The rule, spelled out: a raw frame stays when no later frame has its page
/// (and its page is within db_size); in raw order.
fn naiveNewest(raw: []const u8, fsz: usize, db_size: u32, out: []u8) usize {
    const n = raw.len / fsz;
    var kept: usize = 0;
    for (0..n) |i| {
        const pg = pgnoAt(raw, fsz, i);
        var later = false;
        for (i + 1..n) |j| later = later or pgnoAt(raw, fsz, j) == pg;
        if (later or pg > db_size) continue;
        @memcpy(out[kept * fsz ..][0..fsz], raw[i * fsz ..][0..fsz]);
        kept += 1;
    }
    return kept;
}

test "taken a record at a time, the batch is the raw frames' newest images in order" {
    const ps = 512;
    const fsz = walfmt.frame_header_size + ps;
    var prng = std.Random.DefaultPrng.init(42);
    const rnd = prng.random();
    for (0..200) |round| {
        const n = 1 + rnd.uintLessThan(usize, 40);
        var raw: [40 * fsz]u8 = undefined;
        var scratch = walfmt.Chain{ .salt1 = 1, .salt2 = 2, .cksum1 = 0, .cksum2 = 0 };
        for (0..n) |i| {
            const f = raw[i * fsz ..][0..fsz];
            @memset(f[walfmt.frame_header_size..], @intCast((i * 7 + round) % 251));
            walfmt.encodeFrame(f[0..walfmt.frame_header_size], 1 + rnd.uintLessThan(u32, 12), 0, f[walfmt.frame_header_size..], &scratch);
        }
        const db_size: u32 = 6 + rnd.uintLessThan(u32, 8);
        pgno_last: {
            // The last commit's own page is within the database it leaves.
            std.mem.writeInt(u32, raw[(n - 1) * fsz ..][0..4], rnd.uintLessThan(u32, db_size) + 1, .big);
            break :pgno_last;
        }
        var want: [40 * fsz]u8 = undefined;
        const kept = naiveNewest(raw[0 .. n * fsz], fsz, db_size, &want);
        var want_chain = walfmt.Chain{ .salt1 = 1, .salt2 = 2, .cksum1 = 7, .cksum2 = 8 };
        for (0..kept) |i| {
            const f = want[i * fsz ..][0..fsz];
            walfmt.encodeFrame(f[0..walfmt.frame_header_size], pgnoAt(&want, fsz, i), if (i == kept - 1) db_size else 0, f[walfmt.frame_header_size..], &want_chain);
        }
        // Records of 1 to 4 frames, read one after another into staging.
        var area: [40 * fsz]u8 = undefined;
        var batch = Newest.init(&area, ps);
        defer batch.deinit();
        var at: usize = 0;
        while (at < n) {
            const len = @min(n - at, 1 + rnd.uintLessThan(usize, 4));
            const stage = batch.staging()[0 .. len * fsz];
            @memcpy(stage, raw[at * fsz ..][0 .. len * fsz]);
            _ = try batch.pagesWith(stage);
            try batch.take(stage);
            at += len;
        }
        var chain = walfmt.Chain{ .salt1 = 1, .salt2 = 2, .cksum1 = 7, .cksum2 = 8 };
        const bytes = try batch.finish(db_size, &chain);
        try std.testing.expectEqual(kept * fsz, bytes);
        try std.testing.expectEqualSlices(u8, want[0 .. kept * fsz], area[0..bytes]);
        try std.testing.expectEqual(want_chain, chain);
    }
}

//! Walking the spool's records a chunk at a time, to rewrite their
//! materialisation slots (materialize.zig).
const std = @import("std");
const format = @import("spool_format.zig");
const spool_ack = @import("spool_ack.zig");
const Writer = @import("spool_writer.zig").Writer;
const fileio = @import("fileio.zig");
const status = @import("status.zig");
const Error = status.Error;
const Header = format.Header;
const Mat = format.Mat;
const record_size = format.record_size;
const readAck = spool_ack.readAck;

/// Walks the complete records from an offset a chunk at a time (one read per
/// 128 records) and writes changed materialisation slots back per chunk.
pub const RecordChunks = struct {
    const per = 128;
    writer: *Writer,
    buf: [per]format.Record = undefined,
    chunk_off: u64,
    len: usize = 0,
    idx: usize = 0,
    dirty: bool = false,

    pub const Item = struct { header: ?Header, mat: Mat, index: usize, offset: u64 };

    pub fn init(writer: *Writer, from: u64) Error!RecordChunks {
        var c = RecordChunks{ .writer = writer, .chunk_off = from };
        try c.load(from);
        return c;
    }

    fn load(self: *RecordChunks, off: u64) Error!void {
        self.chunk_off = off;
        self.idx = 0;
        const bytes = std.mem.sliceAsBytes(&self.buf);
        const want: usize = @intCast(@min(bytes.len, self.writer.end -| off));
        self.len = try fileio.preadAll(self.writer.fd, bytes[0..want], off) / record_size;
    }

    pub fn next(self: *RecordChunks) Error!?Item {
        if (self.idx == self.len) {
            try self.flush();
            if (self.len == 0) return null;
            try self.load(self.chunk_off + self.len * record_size);
            if (self.len == 0) return null;
        }
        const r = &self.buf[self.idx];
        const offset = self.chunk_off + self.idx * record_size;
        self.idx += 1;
        const h = Header.decode(&r.header) orelse {
            // Hole-punched (wholly or, across a block boundary, in part):
            // the replicator acknowledged it after we read the ack position,
            // since acks do not take SQLite's lock. Nothing to do for it.
            if (offset < (try readAck(&self.writer.paths)).next_offset) {
                return .{ .header = null, .mat = .{}, .index = self.idx - 1, .offset = offset };
            }
            status.set("spool record at offset {d} is damaged", .{offset});
            return error.Corrupt;
        };
        return .{ .header = h, .mat = Mat.decode(&r.mat, h.seq), .index = self.idx - 1, .offset = offset };
    }

    pub fn setMat(self: *RecordChunks, item: Item, mat: Mat) void {
        self.buf[item.index].mat = mat.encode(item.header.?.seq);
        self.dirty = true;
    }

    pub fn flush(self: *RecordChunks) Error!void {
        if (!self.dirty) return;
        try fileio.pwriteAll(self.writer.fd, std.mem.sliceAsBytes(self.buf[0..self.len]), self.chunk_off);
        self.dirty = false;
    }
};

//! The end of the spool file, mapped: a commit's 96-byte record is a memory
//! copy rather than a system call (measured: about 0.05 us against 0.4 us
//! for pwrite on ext4, at every commit).
//!
//! The window is allocated on disk (fallocate) before it is mapped, which
//! extends the file with zeros: the end of the records is where the first
//! incomplete record is, never the file size. Allocating first also means a
//! full disk shows up as a failed fallocate, which the caller answers by
//! writing with pwrite (and reporting ENOSPC), never as SIGBUS on a page
//! fault in the middle of SQLite's commit. Nothing shrinks the spool file
//! (acknowledged records are hole-punched at its front), so the mapping
//! stays backed.
const std = @import("std");
const builtin = @import("builtin");
const fileio = @import("fileio.zig");

/// Bytes mapped at a time; the window spans two, so a record never straddles
/// its end. A connection starts small (a side folder beside a small, quiet
/// database stays small: SQLite's own tests copy it around by the
/// thousand) and doubles the step at each remap up to 1 MiB, where a remap
/// every ten thousand commits costs nothing measurable.
const min_step: u64 = 64 << 10;
const max_step: u64 = 1 << 20;

pub const Tail = struct {
    map: ?fileio.Mapping = null,
    start: u64 = 0,
    /// The file system cannot allocate or map: always use pwrite.
    unsupported: bool = false,
    step: u64 = min_step,

    pub fn deinit(self: *Tail) void {
        if (self.map) |m| fileio.unmap(m);
        self.map = null;
    }

    /// The mapped bytes [offset, offset+len) of the file, or null when they
    /// cannot be mapped (write them with pwrite instead).
    pub fn slot(self: *Tail, fd: fileio.Fd, offset: u64, comptime len: usize) ?*[len]u8 {
        std.debug.assert(len <= min_step);
        if (self.map) |m| {
            if (offset >= self.start and offset + len <= self.start + m.len) {
                return m[@intCast(offset - self.start)..][0..len];
            }
        }
        if (self.unsupported or builtin.os.tag != .linux) return null;
        if (self.map != null) self.step = @min(2 * self.step, max_step);
        self.deinit();
        const step = self.step;
        const start = offset / step * step;
        switch (fileio.allocate(fd, start, 2 * step)) {
            .ok => {},
            .failed => return null, // a full disk, say: try again next time
            .unsupported => {
                self.unsupported = true;
                return null;
            },
        }
        self.map = fileio.map(fd, start, 2 * step) catch {
            self.unsupported = true;
            return null;
        };
        self.start = start;
        return self.map.?[@intCast(offset - start)..][0..len];
    }
};

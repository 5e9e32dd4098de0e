//! Reading committed frames back out of a -wal file, the way SQLite's own
//! recovery trusts them: salts equal to the header's and an unbroken
//! checksum chain. Used by reconcile (commits the spool lacks), by
//! materialisation (copying frames before SQLite overwrites them) and by the
//! replicator's reads of spool records.
const std = @import("std");
const walfmt = @import("walfmt.zig");
const fileio = @import("fileio.zig");
const status = @import("status.zig");
const Error = status.Error;

pub const WalFile = struct {
    fd: fileio.Fd,
    hdr: walfmt.WalHeader,

    /// The WAL's current header, or null when it has none (empty, torn, or
    /// not a WAL).
    pub fn open(fd: fileio.Fd) Error!?WalFile {
        var hb: [walfmt.header_size]u8 = undefined;
        if (try fileio.preadAll(fd, &hb, 0) != hb.len) return null;
        const hdr = walfmt.WalHeader.parse(&hb) orelse return null;
        return .{ .fd = fd, .hdr = hdr };
    }

    pub fn frameSize(self: WalFile) u64 {
        return walfmt.frame_header_size + @as(u64, self.hdr.page_size);
    }

    pub fn frameOffset(self: WalFile, frame: u32) u64 {
        std.debug.assert(frame >= 1);
        return walfmt.header_size + @as(u64, frame - 1) * self.frameSize();
    }

    pub fn sameCycle(self: WalFile, salt1: u32, salt2: u32) bool {
        return self.hdr.salt1 == salt1 and self.hdr.salt2 == salt2;
    }

    /// The chain state right after `frame` (0: the header), from the
    /// checksum stored in that frame; null when the frame is not of this
    /// cycle.
    pub fn chainAfter(self: WalFile, frame: u32) Error!?walfmt.Chain {
        var chain = walfmt.Chain{ .salt1 = self.hdr.salt1, .salt2 = self.hdr.salt2, .cksum1 = self.hdr.cksum1, .cksum2 = self.hdr.cksum2 };
        if (frame == 0) return chain;
        var fb: [walfmt.frame_header_size]u8 = undefined;
        if (try fileio.preadAll(self.fd, &fb, self.frameOffset(frame)) != fb.len) return null;
        const fh = walfmt.FrameHeader.parse(&fb);
        if (fh.salt1 != self.hdr.salt1 or fh.salt2 != self.hdr.salt2) return null;
        chain.cksum1 = fh.cksum1;
        chain.cksum2 = fh.cksum2;
        return chain;
    }

    /// Reads `frame` into buf (frameSize() bytes) as it is. The frames of a
    /// committed transaction need no checksum check while the header still
    /// carries the salts it was committed under: SQLite never rewrites
    /// committed frames within a cycle, and it may leave a committed
    /// transaction's frame headers zeroed (a savepoint rolled back to the
    /// start of the WAL, then in-place overwrites: SQLite 3.40 was seen doing
    /// so), which a chain check would wrongly reject.
    pub fn readFrame(self: WalFile, frame: u32, buf: []u8) Error!?walfmt.FrameHeader {
        const f = buf[0..@intCast(self.frameSize())];
        if (try fileio.preadAll(self.fd, f, self.frameOffset(frame)) != f.len) return null;
        return walfmt.FrameHeader.parse(f[0..walfmt.frame_header_size]);
    }

    /// Whether the WAL still has the header it had when opened (no restart
    /// since): then frames read in between were the committed ones.
    pub fn unchanged(self: WalFile) Error!bool {
        const now = (try WalFile.open(self.fd)) orelse return false;
        return now.sameCycle(self.hdr.salt1, self.hdr.salt2);
    }

    /// Reads `frame` into buf (frameSize() bytes) and checks it continues
    /// `chain`; null (chain untouched) when it does not.
    pub fn readVerified(self: WalFile, frame: u32, buf: []u8, chain: *walfmt.Chain) Error!?walfmt.FrameHeader {
        const f = buf[0..@intCast(self.frameSize())];
        if (try fileio.preadAll(self.fd, f, self.frameOffset(frame)) != f.len) return null;
        const hdr = f[0..walfmt.frame_header_size];
        if (!walfmt.verifyFrame(hdr, f[walfmt.frame_header_size..], self.hdr.big_endian, chain)) return null;
        return walfmt.FrameHeader.parse(hdr);
    }
};

"""The restore pipeline's native calls (``bottomless_check_frames``,
``bottomless_write_newest``, ``bottomless_write_image``): cffi releases
the GIL around each, so workers check batches and the writer writes pages
while Python does the rest."""

from __future__ import annotations

from typing import Any

from bottomless._native import Native
from bottomless.frames import Chain


class PageSet:
    """One bit per page number: the pages that already hold their final image."""

    def __init__(self) -> None:
        self.bits = bytearray()

    def ensure(self, max_pgno: int) -> None:
        need = (max_pgno >> 3) + 1
        if len(self.bits) < need:
            self.bits.extend(bytes(need - len(self.bits)))

    def __contains__(self, pgno: int) -> bool:
        byte = pgno >> 3
        return byte < len(self.bits) and bool(self.bits[byte] & (1 << (pgno & 7)))

    def __len__(self) -> int:
        return sum(bin(b).count("1") for b in self.bits)


class RestoreNative:
    def __init__(self, native: Native) -> None:
        self.native = native
        self.ffi: Any = native.ffi
        self.lib: Any = native.lib

    def check_frames(
        self, page_size: int, frames: bytes, verify: bool, big_endian: bool, start: Chain | None = None
    ) -> tuple[int, int, Chain]:
        """Checks page numbers always and checksums with ``verify``: from
        ``start``, or (None) frames 1.. against the chain frame 0 stores.
        (index of the last commit frame or -1, database size it records,
        the chain after the last frame). NativeError when a frame fails."""
        chain = self.native.chain_in(start) if start is not None else self.ffi.new("bottomless_chain *")
        last_commit = self.ffi.new("int64_t *")
        db_size = self.ffi.new("uint32_t *")
        flags = self.lib.BOTTOMLESS_CHECK_AFTER_FIRST if start is None else 0
        flags |= self.lib.BOTTOMLESS_APPLY_VERIFY if verify else 0
        flags |= self.lib.BOTTOMLESS_APPLY_BIG_ENDIAN if big_endian else 0
        code = self.lib.bottomless_check_frames(page_size, frames, len(frames), flags, chain, last_commit, db_size)
        self.native.check(code, "checking frames")
        return int(last_commit[0]), int(db_size[0]), self.native.chain_out(chain)

    def write_newest(self, fd: int, page_size: int, frames: bytes, written: PageSet, max_pgno: int) -> int:
        """Writes the newest frame's page of every page not in ``written``
        (and at most ``max_pgno``); how many it wrote."""
        written.ensure(max_pgno)
        count = self.ffi.new("uint64_t *")
        bits = self.ffi.from_buffer(written.bits)
        code = self.lib.bottomless_write_newest(
            fd, page_size, frames, len(frames), bits, len(written.bits), max_pgno, count
        )
        self.native.check(code, "writing restored pages")
        return int(count[0])

    def write_image(
        self, fd: int, page_size: int, first_pgno: int, data: bytes | memoryview, written: PageSet, max_pgno: int
    ) -> int:
        """Writes the pages of a stretch of the snapshot that are not in
        ``written`` (and at most ``max_pgno``); how many it wrote."""
        written.ensure(max_pgno)
        count = self.ffi.new("uint64_t *")
        bits = self.ffi.from_buffer(written.bits)
        buf = data if isinstance(data, bytes) else self.ffi.from_buffer(data)
        code = self.lib.bottomless_write_image(
            fd, page_size, first_pgno, buf, len(data), bits, len(written.bits), max_pgno, count
        )
        self.native.check(code, "writing the snapshot's pages")
        return int(count[0])

    def chain_after(self, frame: bytes, page_size: int, before: Chain, big_endian: bool) -> Chain:
        """The chain after one frame (header + page), continuing ``before``."""
        return self.native.wal_checksum(frame[:8] + frame[24 : 24 + page_size], before, big_endian=big_endian)

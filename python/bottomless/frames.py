"""SQLite WAL frames as bottomless ships them, and the ``.meta`` object.

A batch object holds WAL frames: a 24-byte header (page number, database
size after commit or 0, salt1, salt2, cksum1, cksum2; all u32 big-endian)
followed by the page image. Checksums follow SQLite's WAL rules, chained
frame after frame from the two words kept in ``.meta``; the words summed
are read little-endian, as SQLite writes them on x86-64 and aarch64 (WAL
magic 0x377f0682) and as libSQL's bottomless checks them. (This project's
first buckets summed them big-endian; restore recognises those.) libSQL
stores the WAL header's checksum in ``.meta`` and ships SQLite's frames
with the WAL's salts; this project stores a random seed and uses it as
salts too: ``Chain(salt1=seed1, salt2=seed2, cksum1=seed1, cksum2=seed2)``
(:func:`chain_from_seed`). Readers check the chain, not the salts.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

FRAME_HEADER_SIZE = 24
META_SIZE = 12
_HEADER = struct.Struct(">6I")
_META = struct.Struct(">3I")


@dataclass(frozen=True)
class Chain:
    """Running state of a WAL checksum chain (mirrors ``bottomless_chain``)."""

    salt1: int
    salt2: int
    cksum1: int
    cksum2: int

    def checksum_hex(self) -> str:
        """The chained checksum as one 64-bit hex number (``ls -v``)."""
        return format((self.cksum1 << 32) | self.cksum2, "x")


@dataclass(frozen=True)
class Meta:
    """Contents of a generation's ``.meta`` object."""

    page_size: int
    seed1: int
    seed2: int

    def encode(self) -> bytes:
        return _META.pack(self.page_size, self.seed1, self.seed2)

    @classmethod
    def decode(cls, data: bytes) -> Meta:
        """Parse ``.meta``; raises ValueError when it is malformed."""
        if len(data) != META_SIZE:
            raise ValueError(f".meta must be {META_SIZE} bytes, got {len(data)}")
        page_size, seed1, seed2 = _META.unpack(data)
        if not is_valid_page_size(page_size):
            raise ValueError(f".meta holds an invalid page size {page_size}")
        return cls(page_size, seed1, seed2)

    @classmethod
    def new(cls, page_size: int) -> Meta:
        """A fresh random seed for a new generation."""
        return cls(page_size, secrets.randbits(32), secrets.randbits(32))

    def chain(self) -> Chain:
        return chain_from_seed(self.seed1, self.seed2)


@dataclass(frozen=True)
class FrameHeader:
    """The 24-byte header of one WAL frame."""

    pgno: int
    db_size: int  # database size in pages after commit; 0 unless a commit frame
    salt1: int
    salt2: int
    cksum1: int
    cksum2: int

    @property
    def is_commit(self) -> bool:
        return self.db_size != 0

    def encode(self) -> bytes:
        return _HEADER.pack(self.pgno, self.db_size, self.salt1, self.salt2, self.cksum1, self.cksum2)

    @classmethod
    def decode(cls, data: bytes) -> FrameHeader:
        return cls(*_HEADER.unpack_from(data))


def is_valid_page_size(page_size: int) -> bool:
    return 512 <= page_size <= 65536 and page_size & (page_size - 1) == 0


def chain_from_seed(seed1: int, seed2: int) -> Chain:
    """Where a generation's checksum chain starts."""
    return Chain(salt1=seed1, salt2=seed2, cksum1=seed1, cksum2=seed2)


def frame_size(page_size: int) -> int:
    return FRAME_HEADER_SIZE + page_size


def frame_count(data: bytes, page_size: int) -> int:
    """Number of whole frames in ``data``; ValueError when it is not whole."""
    size = frame_size(page_size)
    if len(data) % size:
        raise ValueError(f"{len(data)} bytes is not a whole number of {size}-byte frames")
    return len(data) // size


def iter_headers(data: bytes, page_size: int) -> Iterator[FrameHeader]:
    size = frame_size(page_size)
    for offset in range(0, frame_count(data, page_size) * size, size):
        yield FrameHeader.decode(data[offset : offset + FRAME_HEADER_SIZE])


def last_header(data: bytes, page_size: int) -> FrameHeader | None:
    """Header of the last frame of a batch, None when it holds none."""
    count = frame_count(data, page_size)
    if count == 0:
        return None
    offset = (count - 1) * frame_size(page_size)
    return FrameHeader.decode(data[offset : offset + FRAME_HEADER_SIZE])


ChecksumFn = Callable[[bytes, Chain], Chain]


def encode_transaction(
    pages: list[tuple[int, bytes]],
    db_size: int,
    chain: Chain,
    checksum: ChecksumFn,
) -> tuple[bytes, Chain]:
    """Encode one committed transaction as WAL frames.

    ``pages`` are (page number, page image) in write order; the last one is
    the commit frame carrying ``db_size``. ``checksum`` is SQLite's WAL
    checksum continuing a chain (``bottomless._native.load().wal_checksum``).
    Returns the frames and the chain after them.
    """
    if not pages:
        raise ValueError("a transaction has at least one page")
    out = bytearray()
    for index, (pgno, page) in enumerate(pages):
        commit = db_size if index == len(pages) - 1 else 0
        head8 = struct.pack(">2I", pgno, commit)
        chain = checksum(head8 + page, chain)
        out += FrameHeader(pgno, commit, chain.salt1, chain.salt2, chain.cksum1, chain.cksum2).encode()
        out += page
    return bytes(out), chain

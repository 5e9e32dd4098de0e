"""Codecs, .meta and frame headers (pure Python parts)."""

from __future__ import annotations

import pytest

from bottomless.compression import CODECS, compress, decompress
from bottomless.errors import CompressionError
from bottomless.frames import (
    Chain,
    FrameHeader,
    Meta,
    chain_from_seed,
    frame_count,
    iter_headers,
    last_header,
)
from bottomless.snapshot_check import snapshot_pages

DATA = bytes(range(256)) * 100


@pytest.mark.parametrize("codec", CODECS)
def test_round_trip(codec: str) -> None:
    assert decompress(compress(DATA, codec), codec, "k") == DATA


@pytest.mark.parametrize("codec", ["zstd", "gz"])
def test_damage_is_reported_with_the_object_name(codec: str) -> None:
    packed = compress(DATA, codec)
    for damaged in (packed[: len(packed) // 2], b"", b"garbage" * 10):
        with pytest.raises(CompressionError, match=f"db-x/000000000001.*{codec}"):
            decompress(damaged, codec, "db-x/000000000001-000000000002-3." + codec)


def test_meta_round_trip_and_validation() -> None:
    meta = Meta(4096, 0xDEADBEEF, 7)
    assert Meta.decode(meta.encode()) == meta
    assert meta.encode() == bytes.fromhex("00001000deadbeef00000007")
    assert meta.chain() == chain_from_seed(0xDEADBEEF, 7) == Chain(0xDEADBEEF, 7, 0xDEADBEEF, 7)
    with pytest.raises(ValueError, match="page size"):
        Meta.decode(bytes.fromhex("00001001deadbeef00000007"))
    with pytest.raises(ValueError, match="12 bytes"):
        Meta.decode(b"\0" * 8)


def test_frame_headers() -> None:
    page = b"\xab" * 512
    frames = FrameHeader(1, 0, 1, 2, 3, 4).encode() + page
    frames += FrameHeader(2, 2, 1, 2, 5, 6).encode() + page
    assert frame_count(frames, 512) == 2
    assert [h.pgno for h in iter_headers(frames, 512)] == [1, 2]
    last = last_header(frames, 512)
    assert last is not None and last.is_commit and (last.cksum1, last.cksum2) == (5, 6)
    assert last_header(b"", 512) is None
    with pytest.raises(ValueError, match="whole number"):
        frame_count(frames[:-1], 512)
    assert Chain(0, 0, 0x5335F2A0, 0x44D2F455).checksum_hex() == "5335f2a044d2f455"


def test_snapshot_checks() -> None:
    header = bytearray(4096)
    header[:16] = b"SQLite format 3\x00"
    header[16:18] = (4096).to_bytes(2, "big")
    header[24:28] = header[92:96] = (5).to_bytes(4, "big")
    header[28:32] = (2).to_bytes(4, "big")
    good = bytes(header) + b"\0" * 4096
    assert snapshot_pages(good, 4096) == 2
    assert snapshot_pages(b"", 4096) == 0
    with pytest.raises(ValueError, match="truncated"):
        snapshot_pages(bytes(header), 4096)
    with pytest.raises(ValueError, match="whole number"):
        snapshot_pages(good[:-100], 4096)
    with pytest.raises(ValueError, match="differs from .meta"):
        snapshot_pages(good, 1024)
    with pytest.raises(ValueError, match="not a SQLite"):
        snapshot_pages(b"x" * 4096, 4096)


def test_crc64_ecma_182() -> None:
    from bottomless.perpage import crc64

    assert crc64(b"123456789") == 0x6C40DF5F0B497347  # the catalogued check value
    assert crc64(b"6789", crc64(b"12345")) == crc64(b"123456789")  # chaining continues the register

"""Codecs of bottomless objects: ``zstd``, ``gz`` and ``raw``."""

from __future__ import annotations

import gzip
import zlib

import zstandard

from bottomless.errors import CompressionError

CODECS = ("zstd", "gz", "raw")


def compress(data: bytes, codec: str, level: int | None = None) -> bytes:
    if codec == "zstd":
        return zstandard.ZstdCompressor(level=3 if level is None else level).compress(data)
    if codec == "gz":
        return gzip.compress(data, compresslevel=6 if level is None else level, mtime=0)
    if codec == "raw":
        return data
    raise CompressionError(f"unknown compression {codec!r} (expected one of {', '.join(CODECS)})")


def decompress(data: bytes, codec: str, key: str = "<object>") -> bytes:
    """Decompress ``data``; CompressionError naming ``key`` if it is damaged."""
    try:
        if codec == "zstd":
            return _zstd(data)
        if codec == "gz":
            if not data:
                raise ValueError("empty object (a gzip stream has a header)")
            return gzip.decompress(data)
        if codec == "raw":
            return data
    except (zstandard.ZstdError, OSError, EOFError, zlib.error, ValueError) as exc:
        raise CompressionError(f"object {key!r} does not decompress as {codec}: {exc}") from exc
    raise CompressionError(f"object {key!r} has unknown compression {codec!r}")


def _zstd(data: bytes) -> bytes:
    if not data:
        raise ValueError("empty object (a zstd stream has at least one frame)")
    out = bytearray()
    rest = data
    while rest:
        decoder = zstandard.ZstdDecompressor().decompressobj()
        out += decoder.decompress(rest)
        if not decoder.eof:
            raise ValueError("truncated zstd frame")
        rest = decoder.unused_data
    return bytes(out)

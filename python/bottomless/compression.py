"""Codecs of bottomless objects: ``zstd``, ``gz`` and ``raw``."""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import zlib

import zstandard

from bottomless.errors import CompressionError

CODECS = ("zstd", "gz", "raw")
FILE_CHUNK = 1 << 20


def compress(data: bytes | bytearray, codec: str, level: int | None = None) -> bytes:
    if codec == "zstd":
        return zstandard.ZstdCompressor(level=3 if level is None else level).compress(data)
    if codec == "gz":
        return gzip.compress(data, compresslevel=6 if level is None else level, mtime=0)
    if codec == "raw":
        return bytes(data)
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


def compress_file(src: str, codec: str, dest_dir: str) -> str:
    """Compressed copy of ``src`` (a new temporary file the caller removes),
    in bounded memory. One zstd frame or one gzip member, as libSQL's reader
    reads only the first."""
    fd, out = tempfile.mkstemp(prefix=".bottomless-upload-", dir=dest_dir)
    with os.fdopen(fd, "wb") as dst, open(src, "rb") as source:
        if codec == "zstd":
            zstandard.ZstdCompressor(level=3, threads=-1).copy_stream(
                source, dst, read_size=FILE_CHUNK, write_size=FILE_CHUNK
            )
        elif codec == "gz":
            with gzip.GzipFile(fileobj=dst, mode="wb", compresslevel=6, mtime=0) as gz:
                shutil.copyfileobj(source, gz, FILE_CHUNK)
        else:
            shutil.copyfileobj(source, dst, FILE_CHUNK)
    return out

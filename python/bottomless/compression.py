"""Codecs of bottomless objects: ``zstd``, ``gz`` and ``raw``."""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator

import zstandard

from bottomless.errors import CompressionError

CODECS = ("zstd", "gz", "raw")
FILE_CHUNK = 1 << 20
# Batches: zstd's level 1 compressed compare.py's bulk and blob frames 3x
# and 1.5x faster than level 3 at the same ratio (1.17, 1.12); only
# text-like pages (oltp) lose ratio (29 against 46), and a batch holds
# each page once, so they are few. The replicator's CPU is the
# application's on a small machine.
BATCH_ZSTD_LEVEL = 1
# Snapshots: level 1 against 3, on a 39 MiB database of compare.py's oltp
# and a 235 MiB one of hex text: 7% and 0% larger, 2.2x faster to make
# (the application's machine pays for it), and 17% and 45% faster to
# decompress, which is the restore's ceiling: libSQL reads one zstd frame,
# so a snapshot decompresses on one core.
SNAPSHOT_ZSTD_LEVEL = 1


def compress(data: bytes | bytearray | memoryview, codec: str, level: int | None = None) -> bytes:
    if codec == "zstd":
        return zstandard.ZstdCompressor(level=BATCH_ZSTD_LEVEL if level is None else level).compress(data)
    if codec == "gz":
        return gzip.compress(data, compresslevel=6 if level is None else level, mtime=0)
    if codec == "raw":
        return bytes(data)
    raise CompressionError(f"unknown compression {codec!r} (expected one of {', '.join(CODECS)})")


def decompress(data: bytes, codec: str, key: str = "<object>") -> bytes:
    """Decompress ``data``; CompressionError naming ``key`` if it is damaged."""
    stream = Decompressor(codec, key)
    return b"".join([*stream.feed(data), *stream.finish()])


# Compressed bytes per zstd call: bounds what one call produces (about
# 230 KiB here), below the 1 MiB mmap threshold bottomless-cli fixes
# (allocator.py), so each piece reuses heap memory; 1 MiB pieces would
# each be fresh pages (0.3 s of page faults per 256 MiB).
FEED = 128 << 10


class Decompressor:
    """One object's body decompressed as it arrives, piece by piece, with
    bounded output per step (a restore streams snapshots of any size).
    Several zstd frames or gzip members follow one another; a stream that
    ends inside one, or holds nothing, is damaged."""

    def __init__(self, codec: str, key: str = "<object>") -> None:
        if codec not in CODECS:
            raise CompressionError(f"object {key!r} has unknown compression {codec!r}")
        self.codec, self.key = codec, key
        self.seen = False
        self._zstd: zstandard.ZstdDecompressionObj | None = None
        self._gz: zlib._Decompress | None = None

    def _fail(self, why: object) -> CompressionError:
        return CompressionError(f"object {self.key!r} does not decompress as {self.codec}: {why}")

    def feed(self, data: bytes | memoryview) -> Iterator[bytes]:
        """The decompressed bytes that ``data`` (the next piece) completes."""
        if not data:
            return
        self.seen = True
        if self.codec == "raw":
            yield bytes(data)
            return
        try:
            if self.codec == "zstd":
                yield from self._feed_zstd(memoryview(data))
            else:
                yield from self._feed_gz(bytes(data))
        except (zstandard.ZstdError, zlib.error) as exc:
            raise self._fail(exc) from exc

    def _feed_zstd(self, data: memoryview) -> Iterator[bytes]:
        for start in range(0, len(data), FEED):
            rest: bytes | memoryview = data[start : start + FEED]
            while rest:
                if self._zstd is None:
                    self._zstd = zstandard.ZstdDecompressor().decompressobj(write_size=FEED)
                out = self._zstd.decompress(rest)
                if out:
                    yield out
                if not self._zstd.eof:
                    break
                rest = self._zstd.unused_data  # the next frame starts here
                self._zstd = None

    def _feed_gz(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._gz is None:
                self._gz = zlib.decompressobj(wbits=31)
            out = self._gz.decompress(data, FILE_CHUNK)
            if out:
                yield out
            if self._gz.eof:
                data = self._gz.unused_data  # the next gzip member
                self._gz = None
            else:
                data = self._gz.unconsumed_tail

    def finish(self) -> Iterator[bytes]:
        """What is left; CompressionError when the stream is damaged."""
        if not self.seen:
            what = "a zstd stream has at least one frame" if self.codec == "zstd" else "a gzip stream has a header"
            if self.codec != "raw":
                raise self._fail(ValueError(f"empty object ({what})"))
        if self._zstd is not None:
            raise self._fail(ValueError("truncated zstd frame"))
        if self._gz is not None:
            try:
                out = self._gz.flush()
            except zlib.error as exc:
                raise self._fail(exc) from exc
            if not self._gz.eof:
                raise self._fail(EOFError("Compressed file ended before the end-of-stream marker was reached"))
            if out:
                yield out


def compress_file(src: str, codec: str, dest_dir: str) -> str:
    """Compressed copy of ``src`` (a new temporary file the caller removes),
    in bounded memory. One zstd frame or one gzip member, as libSQL's reader
    reads only the first."""
    fd, out = tempfile.mkstemp(prefix=".bottomless-upload-", dir=dest_dir)
    with os.fdopen(fd, "wb") as dst, open(src, "rb") as source:
        if codec == "zstd":
            zstandard.ZstdCompressor(level=SNAPSHOT_ZSTD_LEVEL, threads=-1).copy_stream(
                source, dst, read_size=FILE_CHUNK, write_size=FILE_CHUNK
            )
        elif codec == "gz":
            with gzip.GzipFile(fileobj=dst, mode="wb", compresslevel=6, mtime=0) as gz:
                shutil.copyfileobj(source, gz, FILE_CHUNK)
        else:
            shutil.copyfileobj(source, dst, FILE_CHUNK)
    return out

"""libSQL's bottomless restore, written again from its source for the suite.

This is the yardstick for "libSQL's bottomless can restore what this project
writes": it follows ``bottomless/src/replicator.rs`` of libSQL at
f8fb14f3638e (``restore``, ``latest_generation_before``, ``full_restore``,
``restore_from_snapshot``, ``restore_wal``, ``get_last_consistent_frame``,
``parse_frame_range``, ``get_metadata``, ``get_dependency``, ``set_page_size``),
``wal.rs`` (``checksum_step``, ``WalFrameHeader``) and ``read.rs``
(``BatchReader``), including what it does quietly: keys that do not parse are
skipped, the first batch that does not continue the last applied frame ends
the replay with only a warning, a generation without ``.meta`` contributes
no frames. Those are recorded in ``LibsqlRestore`` (``stopped``, ``skipped``)
so a test can tell a complete restore from a quietly shortened one.

It deliberately imports nothing from this project: boto3 for S3, the standard
library and zstandard for the codecs, its own checksum.
"""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import zstandard

FRAME_HEADER = 24
UNSET_PAGE_SIZE = 0
# restore_from_snapshot reads the page size with PRAGMA page_size from the
# restore *target* (self.db_path), not from the file it just wrote: a target
# that does not exist yet answers SQLite's default.
FRESH_TARGET_PAGE_SIZE = 4096
SNAPSHOT_ORDER = ("zstd", "gz", "raw")  # LIBSQL_BOTTOMLESS_COMPRESSION defaults to zstd
MAX_RESTORE_STACK_DEPTH = 100


class LibsqlError(Exception):
    """Where libSQL's restore returns an error (``bail!``/``?``)."""


@dataclass
class LibsqlRestore:
    generation: uuid.UUID
    generations: list[uuid.UUID]  # the restore stack, newest first
    frames_applied: int = 0
    transactions_applied: int = 0
    stopped: list[str] = field(default_factory=list)  # libSQL's warnings where a replay ended early
    skipped: list[str] = field(default_factory=list)  # keys its batch parser passed over


def checksum_step(init: tuple[int, int], data: bytes) -> tuple[int, int]:
    """wal.rs checksum_step: words in the host's byte order (little-endian
    on the x86-64/aarch64 machines libSQL runs on)."""
    s0, s1 = init
    words = struct.unpack(f"<{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def parse_frame_range(key: str) -> tuple[int, int, int, str] | None:
    """replicator.rs parse_frame_range: split at the last '/', the last two
    '-' and the last '.'; every part must parse (u32, u32, u64, a codec)."""
    suffix = key[key.rfind("/") + 1 :] if "/" in key else None
    if suffix is None:
        return None
    ts_delim = suffix.rfind("-")
    if ts_delim < 0:
        return None
    last_delim = suffix[:ts_delim].rfind("-")
    comp_delim = suffix.rfind(".")
    if last_delim < 0 or comp_delim < 0:
        return None
    first = _rust_u32(suffix[:last_delim])
    last = _rust_u32(suffix[last_delim + 1 : ts_delim])
    secs = _rust_uint(suffix[ts_delim + 1 : comp_delim], 64)
    codec = {"gz": "gz", "gzip": "gz", "raw": "raw", "": "raw", "zstd": "zstd"}.get(suffix[comp_delim + 1 :])
    if first is None or last is None or secs is None or codec is None:
        return None
    return first, last, secs, codec


def _rust_uint(text: str, bits: int) -> int | None:
    """str::parse::<uN>: optional '+', then ASCII digits only, in range."""
    body = text[1:] if text.startswith("+") else text
    if not re.fullmatch(r"[0-9]+", body):
        return None
    value = int(body)
    return value if value < (1 << bits) else None


def _rust_u32(text: str) -> int | None:
    return _rust_uint(text, 32)


def _first_member(data: bytes, codec: str) -> bytes:
    """async-compression's decoders as read.rs builds them: one gzip member,
    one zstd frame; whatever follows is never read."""
    if codec == "raw":
        return data
    if codec == "gz":
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
    out: bytes = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return out


class LibsqlReader:
    """One database of one bucket, read the way libSQL's Replicator does."""

    def __init__(self, client: Any, bucket: str, db_name: str, verify_crc: bool = True) -> None:
        self.client, self.bucket, self.db_name, self.verify_crc = client, bucket, db_name, verify_crc
        self.page_size = UNSET_PAGE_SIZE

    # ---- S3 ---------------------------------------------------------------------
    def _get(self, key: str) -> bytes | None:
        try:
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        return body

    def _keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects").paginate(Bucket=self.bucket, Prefix=prefix):
            keys += [obj["Key"] for obj in page.get("Contents", [])]
        return keys

    # ---- replicator.rs ------------------------------------------------------------
    def set_page_size(self, page_size: int) -> None:
        if self.page_size not in (UNSET_PAGE_SIZE, page_size):
            raise LibsqlError(f"Cannot set page size to {page_size}, it was already set to {self.page_size}")
        self.page_size = page_size

    def latest_generation_before(self, timestamp: datetime | None) -> uuid.UUID | None:
        for key in self._keys(f"{self.db_name}-"):
            slash = key.find("/")
            text = key[len(self.db_name) + 1 : slash] if slash >= 0 else key
            try:
                generation = uuid.UUID(text)
            except ValueError:
                continue
            if timestamp is None:
                return generation
            unix_ms = int.from_bytes(generation.bytes[:6], "big")
            if 253370761200 - unix_ms // 1000 <= timestamp.timestamp():
                return generation
        return None

    def get_last_consistent_frame(self, generation: uuid.UUID) -> int:
        last = 0
        for key in self._keys(f"{self.db_name}-{generation}/"):
            parsed = parse_frame_range(key)
            if parsed is not None:
                last = parsed[1]
        return last

    def get_dependency(self, generation: uuid.UUID) -> uuid.UUID | None:
        data = self._get(f"{self.db_name}-{generation}/.dep")
        if data is None:
            return None
        if len(data) != 16:
            raise LibsqlError(f".dep of {generation} is {len(data)} bytes")
        return uuid.UUID(bytes=data)

    def get_metadata(self, generation: uuid.UUID) -> tuple[int, tuple[int, int]] | None:
        data = self._get(f"{self.db_name}-{generation}/.meta")
        if data is None:
            return None
        page_size, c1, c2 = struct.unpack(">3I", data[:12])
        return page_size, (c1, c2)

    def restore(
        self, target: Path, generation: uuid.UUID | None = None, timestamp: datetime | None = None
    ) -> LibsqlRestore:
        """``Replicator::restore`` into the file ``target`` (which must not exist)."""
        chosen = generation or self.latest_generation_before(timestamp)
        if chosen is None:
            raise LibsqlError("No generation found, nothing to restore")
        last_frame = self.get_last_consistent_frame(chosen)
        result = LibsqlRestore(chosen, [])
        self._full_restore(target, chosen, timestamp, last_frame, result)
        return result

    def _full_restore(
        self, db: Path, generation: uuid.UUID, timestamp: datetime | None, last_frame: int, result: LibsqlRestore
    ) -> None:
        db.write_bytes(b"")
        stack: list[uuid.UUID] = []
        current: uuid.UUID | None = generation
        while current is not None:
            stack.append(current)
            if self._restore_from_snapshot(current, db):
                break
            if len(stack) > MAX_RESTORE_STACK_DEPTH:
                raise LibsqlError("Restoration failed: maximum number of generations to restore from was reached.")
            current = self.get_dependency(current)
        result.generations = list(stack)
        while stack:
            gen = stack.pop()
            meta = self.get_metadata(gen)
            if meta is None:
                result.skipped.append(f"{self.db_name}-{gen}/.meta (missing: WAL restore skipped)")
                continue
            page_size, checksum = meta
            self.set_page_size(page_size)
            self._restore_wal(gen, page_size, last_frame if not stack else None, checksum, timestamp, db, result)

    def _restore_from_snapshot(self, generation: uuid.UUID, db: Path) -> bool:
        for codec in SNAPSHOT_ORDER:
            data = self._get(f"{self.db_name}-{generation}/db.{codec}")
            if data is None:
                continue
            db.write_bytes(_first_member(data, codec))
            self.set_page_size(FRESH_TARGET_PAGE_SIZE)
            return True
        return False

    def _restore_wal(
        self,
        generation: uuid.UUID,
        page_size: int,
        last_consistent: int | None,
        checksum: tuple[int, int],
        timestamp: datetime | None,
        db: Path,
        result: LibsqlRestore,
    ) -> None:
        last_injected = 0
        pending: list[tuple[int, bytes]] = []  # the injector's buffer: frames of an open transaction
        for key in self._keys(f"{self.db_name}-{generation}/"):
            parsed = parse_frame_range(key)
            if parsed is None:
                result.skipped.append(key)  # libSQL warns unless it ends in one of _KNOWN_SUFFIXES
                continue
            first, last, secs, codec = parsed
            if first != last_injected + 1:
                result.stopped.append(
                    f"Missing series of consecutive frames. Last applied frame: {last_injected}, "
                    f"next found: {first}. Stopping the restoration process"
                )
                break
            if last_consistent is not None and last > last_consistent:
                result.stopped.append(f"Remote log contains frame {last} larger than last consistent frame")
                break
            if timestamp is not None and secs > timestamp.timestamp():
                return
            body = self._get(key)
            if body is None:
                raise LibsqlError(f"{key} disappeared")
            data = _first_member(body, codec)
            # BatchReader reads with self.page_size, page_buf has the .meta's size.
            step = FRAME_HEADER + self.page_size
            for offset in range(0, len(data) - step + 1, step):
                header = data[offset : offset + FRAME_HEADER]
                page = data[offset + FRAME_HEADER : offset + FRAME_HEADER + page_size]
                last_injected += 1
                pgno, size_after = struct.unpack(">2I", header[:8])
                if self.verify_crc:
                    crc = checksum_step(checksum_step(checksum, header[:8]), page)
                    frame_crc = struct.unpack(">2I", header[16:24])
                    if crc != frame_crc:
                        raise LibsqlError(
                            f"Frame checksum verification failed for page no. {pgno}. "
                            f"Expected: {frame_crc[0]:X}-{frame_crc[1]:X}. Got: {crc[0]:X}-{crc[1]:X}"
                        )
                    checksum = crc
                pending.append((pgno, page))
                if size_after:
                    _inject(db, page_size, pending, size_after)
                    result.frames_applied += len(pending)
                    result.transactions_applied += 1
                    pending = []


def _inject(db: Path, page_size: int, frames: list[tuple[int, bytes]], size_after: int) -> None:
    """What the injector's commit leaves in the database file: the
    transaction's pages, the file cut to ``size_after`` pages."""
    with open(db, "r+b") as f:
        for pgno, page in frames:
            f.seek((pgno - 1) * page_size)
            f.write(page)
        f.truncate(size_after * page_size)

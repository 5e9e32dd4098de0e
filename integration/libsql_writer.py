"""Buckets built the way libSQL's bottomless writer builds them, for the suite.

Written from libSQL's source at f8fb14f3638e, not from this project:
``bottomless/src/backup.rs`` (``WalCopier::flush``: ``.meta`` from the WAL
header when frame 1 is flushed, batches of at most ``max_frames`` frames
copied byte for byte out of the ``-wal`` file, one gzip member or zstd
frame each, named ``<first:012>-<last:012>-<unix secs>.<codec>``),
``bottomless_wal.rs`` (only TRUNCATE checkpoints, each starts a new
generation with a snapshot), ``replicator.rs`` (``new_generation`` with
``.dep``, ``snapshot_main_db_file`` with ``.changecounter``, no snapshot
for a database whose main file is empty, the reversed-time UUIDv7 of
``generation_from_timestamp`` and ``uuid_utils.rs``).

The database is a real SQLite database in WAL mode (Python's sqlite3, no
automatic checkpoints), so frames carry SQLite's own salts and checksums.
It imports nothing of this project.
"""

from __future__ import annotations

import gzip
import os
import sqlite3
import struct
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

WAL_HEADER = 32
FRAME_HEADER = 24


def libsql_generation(unix_ns: int) -> uuid.UUID:
    """replicator.rs generation_from_timestamp + uuid_utils.rs new_v7."""
    seconds, nanos = divmod(unix_ns, 1_000_000_000)
    seconds, nanos = 253370761200 - seconds, 999999999 - nanos
    millis = seconds * 1000 + nanos // 1_000_000
    rand = os.urandom(10)
    random_and_version = (rand[1] | (rand[0] << 8) & 0x0FFF) | (0x7 << 12)
    d4 = bytes([(rand[2] & 0x3F) | 0x80]) + rand[3:10]
    fields = struct.pack(">IHH", (millis >> 16) & 0xFFFFFFFF, millis & 0xFFFF, random_and_version)
    return uuid.UUID(bytes=fields + d4)


def _compress(data: bytes, codec: str) -> bytes:
    if codec == "gz":
        return gzip.compress(data)
    if codec == "zstd":
        out: bytes = zstandard.ZstdCompressor().compress(data)
        return out
    return data


@dataclass
class Flushed:
    """What one flush uploaded."""

    keys: list[str] = field(default_factory=list)
    last_frame: int = 0
    last_checksum: str = "0"  # of the last frame's header, as one 64-bit hex number


class LibsqlStyleWriter:
    """One database, replicated by a writer that behaves like libSQL's."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        db_name: str,
        path: Path,
        page_size: int = 4096,
        max_frames: int = 10000,
        codec: str = "zstd",
        start_ns: int = 1_750_000_000 * 10**9,
    ) -> None:
        self.client, self.bucket, self.db_name, self.path = client, bucket, db_name, path
        self.max_frames, self.codec, self.now_ns = max_frames, codec, start_ns
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute(f"PRAGMA page_size={page_size}")
        self.conn.execute("PRAGMA journal_mode=wal")
        self.conn.execute("PRAGMA wal_autocheckpoint=0")
        self.generation = libsql_generation(self.now_ns)
        self.generations = [self.generation]
        self.sent = 0  # last frame uploaded in this generation
        # A new database: its first generation has no snapshot (replicator.rs
        # snapshot_main_db_file skips an empty main file; sqld creates the
        # database through its WAL, so it is empty until a checkpoint).
        self.keys: list[str] = []

    # ---- time, for point-in-time tests ---------------------------------------------
    def tick(self, seconds: int) -> int:
        self.now_ns += seconds * 10**9
        return self.now_ns // 10**9

    # ---- the writer ---------------------------------------------------------------------
    def execute(self, sql: str, params: tuple[object, ...] = ()) -> None:
        self.conn.execute(sql, params)

    def _put(self, name: str, body: bytes) -> str:
        key = f"{self.db_name}-{self.generation}/{name}"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)
        self.keys.append(key)
        return key

    def wal_frames(self) -> int:
        size = os.path.getsize(f"{self.path}-wal") if os.path.exists(f"{self.path}-wal") else 0
        page_size = self._wal_header()[2] if size >= WAL_HEADER else 0
        return 0 if size < WAL_HEADER else (size - WAL_HEADER) // (FRAME_HEADER + page_size)

    def _wal_header(self) -> tuple[int, ...]:
        with open(f"{self.path}-wal", "rb") as f:
            return struct.unpack(">8I", f.read(WAL_HEADER))

    def flush(self, upto: int | None = None) -> Flushed:
        """WalCopier::flush of frames [sent+1, upto] (default: all the WAL
        holds, committed or not), ``max_frames`` per object."""
        end = self.wal_frames() if upto is None else upto
        out = Flushed(last_frame=self.sent)
        if end <= self.sent:
            return out
        _magic, _version, page_size, _seq, _s1, _s2, c1, c2 = self._wal_header()
        if self.sent == 0:
            out.keys.append(self._put(".meta", struct.pack(">3I", page_size, c1, c2)))
        frame = FRAME_HEADER + page_size
        secs = self.now_ns // 10**9
        with open(f"{self.path}-wal", "rb") as wal:
            for start in range(self.sent + 1, end + 1, self.max_frames):
                last = min(start + self.max_frames - 1, end)
                wal.seek(WAL_HEADER + (start - 1) * frame)
                data = wal.read((last - start + 1) * frame)
                name = f"{start:012}-{last:012}-{secs}.{self.codec}"
                out.keys.append(self._put(name, _compress(data, self.codec)))
            c1, c2 = struct.unpack(">2I", data[-frame + 16 : -frame + 24])
        out.last_checksum = format((c1 << 32) | c2, "x")
        self.sent = out.last_frame = end
        return out

    def checkpoint(self) -> uuid.UUID:
        """A TRUNCATE checkpoint: flush, checkpoint, then a new generation
        with ``.dep``, a snapshot of the main file and ``.changecounter``."""
        self.flush()
        busy, _, _ = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "the TRUNCATE checkpoint did not complete"
        parent = self.generation
        self.generation = libsql_generation(self.now_ns)
        self.generations.append(self.generation)
        self.sent = 0
        self._put(".dep", parent.bytes)
        main = self.path.read_bytes()
        self._put(".changecounter", main[24:28])
        self._put(f"db.{self.codec}", _compress(main, self.codec))
        return self.generation

    def dump(self) -> list[str]:
        return list(self.conn.iterdump())

    def close(self) -> None:
        self.conn.close()

"""Buckets in libSQL's 2023 bottomless layout, built by its writer's rules.

Written from libsql-server/bottomless at 99cdaa7e097b (``src/replicator.rs``
``write``/``flush``/``finalize_commit``/``snapshot_main_db_file``/
``generate_generation``, ``src/lib.rs`` ``xFrames``/``xCheckpoint``), not from
this project: at every commit each page of the transaction becomes one gzip
object ``<frame:012>-<pgno:012>-<crc:016x>``, the CRC being CRC-64/ECMA-182
over the page continuing the previous page's (the chain lives as long as the
writer process, across generations); then ``.consistent`` gets the last
frame number and SQLite's WAL checksum after it. A TRUNCATE checkpoint after
commits starts a new generation whose snapshot is ``db.gz`` (none while the
main file is empty), with ``.changecounter``. No ``.meta``, no ``.dep``.

Pages come from a real SQLite WAL (Python's sqlite3, no automatic
checkpoints). It imports nothing of this project.
"""

from __future__ import annotations

import gzip
import os
import sqlite3
import struct
import uuid
from pathlib import Path
from typing import Any

from libsql_writer import libsql_generation

WAL_HEADER = 32
FRAME_HEADER = 24
_POLY = 0x42F0E1EBA9EA3693
_MASK = (1 << 64) - 1


def crc64_ecma(data: bytes, initial: int = 0) -> int:
    """crc::CRC_64_ECMA_182 (crc 3.0) digest_with_initial(initial).update(data).finalize()."""
    crc = initial
    for byte in data:
        crc ^= byte << 56
        for _ in range(8):
            crc = ((crc << 1) ^ _POLY) & _MASK if crc & (1 << 63) else (crc << 1) & _MASK
    return crc


class Libsql2023Writer:
    def __init__(
        self, client: Any, bucket: str, db_name: str, path: Path, page_size: int = 4096, start_ns: int = 0
    ) -> None:
        self.client, self.bucket, self.db_name, self.path = client, bucket, db_name, path
        self.now_ns = start_ns or 1_670_000_000 * 10**9
        self.last_frame_crc = 0
        # Started before the database exists: restore() finds nothing, a new
        # generation begins, and its snapshot is skipped (empty main file).
        self.generation = libsql_generation(self.now_ns)
        self.generations = [self.generation]
        self.commits = 0
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute(f"PRAGMA page_size={page_size}")
        self.conn.execute("PRAGMA journal_mode=wal")
        self.conn.execute("PRAGMA wal_autocheckpoint=0")
        self.seen = 0  # WAL frames already replicated
        self.last_checksum = "0"
        self.last_frame = 0

    def tick(self, seconds: int) -> None:
        self.now_ns += seconds * 10**9

    def _put(self, name: str, body: bytes) -> str:
        key = f"{self.db_name}-{self.generation}/{name}"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)
        return key

    def _new_frames(self) -> list[tuple[int, int, int, bytes, bytes]]:
        """(frame number, pgno, size after, header, page) of WAL frames not replicated yet."""
        wal = Path(f"{self.path}-wal")
        data = wal.read_bytes() if wal.exists() else b""
        if len(data) < WAL_HEADER:
            return []
        page_size = struct.unpack_from(">I", data, 8)[0]
        step = FRAME_HEADER + page_size
        out = []
        for index in range(self.seen, (len(data) - WAL_HEADER) // step):
            at = WAL_HEADER + index * step
            pgno, size_after = struct.unpack_from(">2I", data, at)
            out.append((index + 1, pgno, size_after, data[at : at + FRAME_HEADER], data[at + FRAME_HEADER : at + step]))
        return out

    def commit(self, sql: str, params: tuple[object, ...] = (), finalize: bool = True) -> None:
        """Run one transaction; xFrames replicates its pages and, unless
        ``finalize`` is False (the process died in between), .consistent."""
        self.conn.execute(sql, params)
        frames = self._new_frames()
        assert frames and frames[-1][2] != 0, "the statement did not commit exactly one transaction"
        for frame, pgno, _, _, page in frames:
            self.last_frame_crc = crc64_ecma(page, self.last_frame_crc)
            self._put(f"{frame:012}-{pgno:012}-{self.last_frame_crc:016x}", gzip.compress(page))
        self.seen = frames[-1][0]
        self.commits += 1
        if finalize:
            header = frames[-1][3]
            c1, c2 = struct.unpack(">2I", header[16:24])
            self._put(".consistent", struct.pack(">3I", frames[-1][0], c1, c2))
            self.last_frame, self.last_checksum = frames[-1][0], format((c1 << 32) | c2, "x")

    def checkpoint(self) -> uuid.UUID:
        busy, _, _ = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
        self.seen = 0
        if self.commits == 0:
            return self.generation
        self.generation = libsql_generation(self.now_ns)
        self.generations.append(self.generation)
        self.commits = 0
        self.last_frame, self.last_checksum = 0, "0"
        if os.path.getsize(self.path) > 0:
            main = self.path.read_bytes()
            self._put("db.gz", gzip.compress(main))
            self._put(".changecounter", main[24:28])
        return self.generation

    def dump(self) -> list[str]:
        return list(self.conn.iterdump())

    def close(self) -> None:
        self.conn.close()

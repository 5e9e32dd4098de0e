"""Test helper: put generations in S3 the way the replicator will.

Transactions come from a real SQLite WAL: a test writes through Python's
sqlite3 with checkpoints off, :func:`read_wal` reads the committed frames
back, and :class:`GenerationWriter` re-encodes them as bottomless batches
(chained checksums from the generation's ``.meta`` seed, computed by the
native ``bottomless_wal_checksum``; little-endian words, or big-endian ones
as this project's first buckets had them).
"""

from __future__ import annotations

import struct
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bottomless import layout
from bottomless._native import Native
from bottomless.compression import compress
from bottomless.frames import Chain, Meta, encode_transaction
from bottomless.generation import new_generation
from bottomless.s3 import S3Store
from bottomless.snapshot_check import parse_header

WAL_HEADER = 32


@dataclass(frozen=True)
class Transaction:
    pages: list[tuple[int, bytes]]
    db_size: int


def read_wal(wal_path: str | Path) -> tuple[int, list[Transaction]]:
    """Page size and committed transactions of a SQLite WAL file."""
    data = Path(wal_path).read_bytes()
    if len(data) < WAL_HEADER:
        return 0, []
    _magic, _version, page_size, _ckpt, salt1, salt2 = struct.unpack_from(">6I", data, 0)
    txs: list[Transaction] = []
    pending: list[tuple[int, bytes]] = []
    offset = WAL_HEADER
    while offset + 24 + page_size <= len(data):
        pgno, commit, s1, s2 = struct.unpack_from(">4I", data, offset)
        if (s1, s2) != (salt1, salt2):
            break
        pending.append((pgno, data[offset + 24 : offset + 24 + page_size]))
        if commit:
            txs.append(Transaction(pending, commit))
            pending = []
        offset += 24 + page_size
    return page_size, txs


@dataclass
class GenerationWriter:
    """Writes one generation: .meta, .changecounter, .dep, snapshot, batches."""

    store: S3Store
    db_name: str
    native: Native
    page_size: int
    compression: str = "zstd"
    generation: uuid.UUID = field(default_factory=new_generation)
    meta: Meta | None = None
    chain: Chain | None = None
    next_frame: int = 1
    keys: list[str] = field(default_factory=list)
    big_endian: bool = False  # checksum words as this project wrote them before (earlier buckets)

    def __post_init__(self) -> None:
        if self.meta is None:
            self.meta = Meta.new(self.page_size)
        if self.chain is None:
            self.chain = self.meta.chain()

    def start(self, snapshot: bytes | None, parent: uuid.UUID | None = None) -> None:
        assert self.meta is not None
        self._put(layout.meta_key(self.db_name, self.generation), self.meta.encode())
        if snapshot:
            counter = parse_header(snapshot).change_counter
            self._put(layout.change_counter_key(self.db_name, self.generation), counter)
        if parent is not None:
            self._put(layout.dep_key(self.db_name, self.generation), layout.encode_dep(parent))
        if snapshot is not None:
            key = layout.snapshot_key(self.db_name, self.generation, self.compression)
            self._put(key, compress(snapshot, self.compression))

    def encode(self, txs: list[Transaction]) -> tuple[bytes, int]:
        """Frames of ``txs`` (advancing the chain) and how many there are."""
        assert self.chain is not None
        out = bytearray()
        count = 0
        for tx in txs:
            frames, self.chain = encode_transaction(tx.pages, tx.db_size, self.chain, self._checksum)
            out += frames
            count += len(tx.pages)
        return bytes(out), count

    def _checksum(self, data: bytes, chain: Chain) -> Chain:
        return self.native.wal_checksum(data, chain, big_endian=self.big_endian)

    def add_batch(self, txs: list[Transaction], unix_secs: int | None = None, raw: bytes | None = None) -> str:
        """Upload ``txs`` as the next batch; returns its key. ``raw`` replaces
        the encoded frames' bytes (to plant damage) before compression."""
        frames, count = self.encode(txs)
        first, last = self.next_frame, self.next_frame + count - 1
        key = layout.batch_key(
            self.db_name,
            self.generation,
            first,
            last,
            int(time.time()) if unix_secs is None else unix_secs,
            self.compression,
        )
        self._put(key, compress(frames if raw is None else raw, self.compression))
        self.next_frame = last + 1
        return key

    def _put(self, key: str, data: bytes) -> None:
        self.store.put(key, data)
        self.keys.append(key)


class SourceDb:
    """A SQLite database in WAL mode whose committed transactions a test can
    take out of the WAL (checkpoints happen only when asked for)."""

    def __init__(self, path: str | Path, page_size: int = 4096) -> None:
        import sqlite3

        self.path = Path(path)
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute(f"PRAGMA page_size={page_size}")
        self.conn.execute("PRAGMA journal_mode=wal")
        self.conn.execute("PRAGMA wal_autocheckpoint=0")
        self.page_size = page_size
        self._taken = 0

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> None:
        self.conn.execute(sql, params)

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        return self.conn.execute(sql).fetchall()

    def snapshot(self) -> bytes:
        """Checkpoint everything into the main file and return its bytes."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._taken = 0
        return self.path.read_bytes()

    def take(self) -> list[Transaction]:
        """Transactions committed since the last take/snapshot."""
        _, txs = read_wal(str(self.path) + "-wal")
        new = txs[self._taken :]
        self._taken = len(txs)
        return new

    def close(self) -> None:
        self.conn.close()

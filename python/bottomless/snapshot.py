"""A consistent snapshot of a live database, tied to a spool position.

Under the WAL write lock the spool is reconciled and its newest sequence
number read; a read transaction opened at that moment sees exactly those
commits. The lock is then released and the pages are copied through that
read transaction (SQLite's backup API), so writers wait only for the
reconcile, not for the copy.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bottomless.errors import BottomlessError
from bottomless.snapshot_check import parse_header
from bottomless.spool import Spool
from bottomless.sqlite_vfs import register_python_sqlite

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    path: str  # a temporary page-exact copy; the caller deletes it
    seq: int  # every spool record up to this one is in the copy, none after
    page_size: int
    change_counter: bytes

    @property
    def size(self) -> int:
        return os.path.getsize(self.path)


def _connect(db_path: str) -> sqlite3.Connection:
    register_python_sqlite()
    conn = sqlite3.connect(f"file:{db_path}?vfs=bottomless", uri=True, isolation_level=None, timeout=60)
    conn.execute("PRAGMA busy_timeout=60000")
    return conn


class DatabaseBusy(BottomlessError):
    """The application holds a lock the replicator needs for a moment."""


def ensure_wal(db_path: str, page_size: int | None = None) -> None:
    """Capture needs WAL mode; switch a database that is not in it yet
    (a new one gets ``page_size`` first, while it still can)."""
    try:
        conn = _connect(db_path)
        try:
            if page_size is not None:
                conn.execute(f"PRAGMA page_size={int(page_size)}")
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal":
                conn.execute("PRAGMA journal_mode=wal")
                log.info("switched %s to WAL mode", db_path)
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise DatabaseBusy(f"{db_path} is busy ({exc})") from None
        raise BottomlessError(f"{db_path} cannot be replicated: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise BottomlessError(f"{db_path} cannot be replicated: {exc} (is it a SQLite database?)") from None


def reconcile_spool(db_path: str, spool: Spool) -> int:
    """Under the write lock, let the spool catch up with the WAL (commits a
    crashed writer left out) and drop a record a crash tore."""
    conn = _connect(db_path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            recovered = spool.reconcile()
        finally:
            conn.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        raise DatabaseBusy(f"{db_path} is busy ({exc})") from None
    finally:
        conn.close()
    if recovered:
        log.warning("recovered %d commit(s) from the WAL of %s", recovered, db_path)
    return recovered


def take_snapshot(db_path: str, spool: Spool) -> Snapshot:
    writer = _connect(db_path)
    reader = _connect(db_path)
    fd, tmp = tempfile.mkstemp(prefix=".bottomless-snapshot-", dir=os.path.dirname(os.path.abspath(db_path)))
    os.close(fd)
    try:
        writer.execute("BEGIN IMMEDIATE")
        try:
            recovered = spool.reconcile()
            if recovered:
                log.warning("recovered %d commit(s) from the WAL before the snapshot", recovered)
            seq = spool.stats().last_seq
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            writer.execute("ROLLBACK")
        dest = sqlite3.connect(tmp)
        try:
            reader.backup(dest)
        finally:
            dest.close()
        reader.execute("COMMIT")
        with open(tmp, "rb") as f:
            head = f.read(100)
        if not head:
            # An empty database: nothing to copy, and nothing to describe.
            return Snapshot(tmp, seq, int(reader.execute("PRAGMA page_size").fetchone()[0]), b"\0\0\0\0")
        header = parse_header(head)
        return Snapshot(tmp, seq, header.page_size, header.change_counter)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        writer.close()
        reader.close()

"""A consistent snapshot of a live database, tied to a spool position.

No step takes a lock a writer could meet (an application without a busy
timeout would fail on it): a read transaction is opened, the extension
reports which WAL frames it sees (PRAGMA bottomless_read_position), the
spool names the commit that ends there, and the pages are copied through
that same read transaction (SQLite's backup API).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bottomless.errors import BottomlessError
from bottomless.snapshot_check import parse_header
from bottomless.spool import Spool
from bottomless.sqlite_vfs import register_python_sqlite

log = logging.getLogger(__name__)

READ_VIEW_PRAGMA = "bottomless_read_position"  # answered by the VFS (vfs.zig)


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
        if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):  # primary code
            raise DatabaseBusy(f"{db_path} is busy ({exc})") from None
        raise BottomlessError(f"{db_path} cannot be replicated: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise BottomlessError(f"{db_path} cannot be replicated: {exc} (is it a SQLite database?)") from None


def reconcile_spool(db_path: str) -> None:
    """Let the spool catch up with commits a crashed writer left only in the
    WAL, without taking a lock an application could meet: opening the
    database runs SQLite's WAL recovery if it is needed, and the extension
    appends the missing records there, under the write lock SQLite holds for
    the recovery, and says so in the log (a writer's next transaction does
    the same)."""
    conn = _connect(db_path)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        raise DatabaseBusy(f"{db_path} is busy ({exc})") from None
    finally:
        conn.close()


def _read_view(reader: sqlite3.Connection) -> tuple[int, int, int] | None:
    row = reader.execute(f"PRAGMA {READ_VIEW_PRAGMA}").fetchone()
    if row is None:
        raise BottomlessError("the bottomless extension in use cannot report its read position; reinstall it")
    if row[0] == "none":
        return None
    salt1, salt2, mx_frame = (int(x) for x in str(row[0]).split())
    return salt1, salt2, mx_frame


def _begin_tied_read(db_path: str, reader: sqlite3.Connection, spool: Spool, timeout: float) -> int:
    """Open a read transaction on ``reader`` and return the seq of the
    newest commit it sees (snapshot_point.zig says how)."""
    deadline = time.monotonic() + timeout
    while True:
        before = spool.stats().last_seq
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM sqlite_master").fetchone()
        view = _read_view(reader)
        seq = spool.seq_at(*view, before) if view is not None else None
        if seq is not None:
            return seq
        reader.execute("ROLLBACK")
        if time.monotonic() >= deadline:
            raise DatabaseBusy(
                f"the spool of {db_path} does not cover what the database holds yet (a writer bypassed the "
                "extension?); the next write through it catches up"
            )
        time.sleep(0.01)


def take_snapshot(db_path: str, spool: Spool, timeout: float = 10.0) -> Snapshot:
    reader = _connect(db_path)
    fd, tmp = tempfile.mkstemp(prefix=".bottomless-snapshot-", dir=os.path.dirname(os.path.abspath(db_path)))
    os.close(fd)
    try:
        seq = _begin_tied_read(db_path, reader, spool, timeout)
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
        reader.close()

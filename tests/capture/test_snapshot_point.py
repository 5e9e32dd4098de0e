"""Which spool record a snapshot's read view ends at (snapshot_point.zig),
for a view of an empty WAL cycle: the database file alone, which lacks the
cycle being written when the view was taken.

The case that lost data: a database whose WAL was just created (the last
connection deleted it on close) takes its first commit with fresh random
salts, and the spool record is appended before SQLite publishes the commit.
A snapshot reader arriving in between sees the recovered empty header
(salts 0, 0) and the database file without that commit; tying it to that
record would skip the commit in every backup of the generation."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bottomless.spool import Spool
from bottomless.sqlite_vfs import register_python_sqlite

EMPTY = 0  # mx_frame of a view that reads the database file alone


def _wal_salts(db: Path) -> tuple[int, int]:
    head = Path(f"{db}-wal").read_bytes()[:32]
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _writer(db: Path) -> sqlite3.Connection:
    """Three commits through the extension in one fresh WAL, left open so
    the WAL (and its header) stays."""
    register_python_sqlite()
    conn = sqlite3.connect(f"file:{db}?vfs=bottomless", uri=True, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("CREATE TABLE t(x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.execute("INSERT INTO t VALUES (2)")
    return conn


def test_an_empty_view_excludes_the_commits_of_the_cycle_the_wal_file_holds(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    conn = _writer(db)
    try:
        with Spool(str(db)) as spool:
            records = list(spool.records())
            last = records[-1].seq
            # A reader that began before the first commit was published.
            assert spool.seq_at(0, 0, EMPTY, last) == records[0].seq - 1
    finally:
        conn.close()


def test_an_empty_view_restarted_from_the_wal_files_cycle_holds_all_of_it(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    conn = _writer(db)
    try:
        salt1, salt2 = _wal_salts(db)
        with Spool(str(db)) as spool:
            last = list(spool.records())[-1].seq
            # SQLite's restart (walRestartHdr) publishes salt1 + 1 once every
            # frame is in the database file, before the next frame is written.
            assert spool.seq_at((salt1 + 1) & 0xFFFFFFFF, salt2 ^ 0x5A5A, EMPTY, last) == last
    finally:
        conn.close()

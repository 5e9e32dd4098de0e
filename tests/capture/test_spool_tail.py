"""The spool file is allocated ahead of its records: its end is the first
incomplete record, and a record torn by a crash is cleared by the next
writer rather than mistaken for data or for damage."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bottomless.side_files import SideFolder
from bottomless.spool import Record, Spool
from bottomless.sqlite_vfs import register_python_sqlite


def _records(db: Path) -> list[Record]:
    with Spool(str(db)) as spool:
        return list(spool.records())


def _insert(db: Path, values: range) -> None:
    conn = sqlite3.connect(f"file:{db}?vfs=bottomless", uri=True, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("CREATE TABLE IF NOT EXISTS t(x)")
        for v in values:
            conn.execute("INSERT INTO t VALUES (?)", (v,))
    finally:
        conn.close()


def test_a_torn_record_at_the_end_is_cleared_by_the_next_writer(tmp_path: Path) -> None:
    register_python_sqlite()
    db = tmp_path / "t.db"
    _insert(db, range(3))
    before = _records(db)
    assert [r.seq for r in before] == list(range(before[0].seq, before[0].seq + len(before)))
    end = before[-1].next_offset
    spool_file = SideFolder.of(db).spool
    assert spool_file.stat().st_size > end, "the spool is expected to be allocated ahead of its records"

    # What a writer killed in the middle of an append leaves: the start of a
    # record (a valid header) without its trailer.
    with spool_file.open("r+b") as f:
        f.seek(before[-1].offset)
        head = f.read(64)
        f.seek(end)
        f.write(head)
    with Spool(str(db)) as spool:
        assert spool.next(end) is None, "a torn record at the end must read as 'not yet', not as a record or damage"

    _insert(db, range(3, 5))
    after = _records(db)
    assert [r.seq for r in after] == list(range(before[0].seq, before[0].seq + len(after)))
    assert after[len(before)].offset == end, "the next record must take the torn one's place"
    assert len(after) >= len(before) + 2
    conn = sqlite3.connect(db)
    try:
        assert [x for (x,) in conn.execute("SELECT x FROM t ORDER BY x")] == list(range(5))
    finally:
        conn.close()

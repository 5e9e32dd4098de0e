"""Pages read back after SQLite has reused the WAL many times come from the
copies (made in the background while the WAL is written, or at the restart
itself), and replay to exactly the live database."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from bottomless.side_files import PAGES, SideFolder
from bottomless.spool import Spool
from bottomless.sqlite_vfs import register_python_sqlite
from tests.capture.hosts import content
from tests.capture.replay import Replayer, replayed_content


def test_records_read_after_many_wal_restarts_replay_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without a hold on the WAL, every restart copies what is unshipped.
    monkeypatch.setenv("LIBSQL_BOTTOMLESS_WAL_HOLD_BYTES", "0")
    register_python_sqlite()
    db = tmp_path / "live.db"
    conn = sqlite3.connect(f"file:{db}?vfs=bottomless", uri=True, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("PRAGMA wal_autocheckpoint=50")  # a restart every few dozen commits
        with Spool(str(db)) as spool:
            assert spool.stats().records == 0
        base = tmp_path / "base.db"
        shutil.copyfile(db, base)
        replayer = Replayer(db, base, tmp_path / "replayed.db")
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        for i in range(3000):
            if i % 7 == 0:
                conn.execute("UPDATE t SET v = randomblob(3000) WHERE id = ?", (i // 2,))
            else:
                conn.execute("INSERT INTO t(v) VALUES (randomblob(?))", (100 + i % 900,))
        live = content(lambda sql: conn.execute(sql).fetchall())
        copied = SideFolder.of(db).file(PAGES).stat().st_size
        assert copied > 0, "no WAL restart copied anything: the test exercised nothing"
        assert replayer.catch_up() >= 3000
        assert replayed_content(replayer.target) == live
    finally:
        conn.close()

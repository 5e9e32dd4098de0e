"""The side folder's names have one owner in Python (``side_files.py``), but
capture (Zig) spells its own. Listing a folder the real extension and a
real replicator filled says whether the two agree."""

from __future__ import annotations

import os
from pathlib import Path

import bottomless
from bottomless import side_files
from bottomless.config import Config
from bottomless.spool import Spool
from conftest import vfs_wal_connection


def commits(db: Path, n: int) -> None:
    """n transactions through the bottomless VFS, enough to make SQLite reuse
    its WAL (so capture copies pages before they are overwritten)."""
    conn = vfs_wal_connection(db)
    conn.execute("PRAGMA wal_autocheckpoint=8")
    conn.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, body BLOB)")
    for _ in range(n):
        conn.execute("INSERT INTO t(body) VALUES (randomblob(3000))")
    conn.close()


def test_capture_writes_the_names_python_reads(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    commits(db, 60)
    folder = Path(side_files.folder_of(db))
    assert folder.is_dir(), f"capture made no side folder at {folder}: {sorted(os.listdir(tmp_path))}"
    found = set(os.listdir(folder))
    # Without a replicator, what is there is capture's alone.
    assert found <= set(side_files.CAPTURE_FILES), f"capture wrote names side_files.py does not know: {found}"
    assert side_files.SPOOL in found, found  # pages are copied only once a replicator has attached
    with Spool(str(db)) as spool:
        assert spool.stats().records >= 60  # read through the path Python spells


def test_a_replicated_folder_holds_only_known_names(tmp_path: Path, cli_env: dict[str, str]) -> None:
    db = tmp_path / "app.db"
    conn = bottomless.connect(str(db), config=Config.from_env(cli_env))
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB)")
    for _ in range(20):
        conn.execute("INSERT INTO t(body) VALUES (randomblob(3000))")
        conn.commit()
    conn.flush()
    conn.close()
    commits(db, 40)  # a replicator has attached: WAL restarts now copy pages
    found = set(os.listdir(side_files.folder_of(db)))
    known = set(side_files.CAPTURE_FILES) | set(side_files.REPLICATOR_FILES)
    assert found <= known, f"names side_files.py does not own: {found - known}"
    assert set(side_files.CAPTURE_FILES) <= found, f"capture files missing: {set(side_files.CAPTURE_FILES) - found}"
    assert {side_files.STATE, side_files.LOCK, side_files.ENCRYPTION, side_files.SERVER_FEATURES} <= found, found

"""Fast commits, a WAL restarted every few dozen pages, and a replicator
acknowledging (and hole-punching) the spool all the while: capture copies
pages out of the WAL while acks race it, and nothing may fail or go missing."""

from __future__ import annotations

import os
import time
from pathlib import Path

import bottomless
from bottomless.config import Config
from conftest import integrity, read_rows, remove_local, run_cli

SECONDS = float(os.environ.get("BOTTOMLESS_CHURN_SECONDS", "6"))


def test_restarts_racing_acks_lose_nothing(tmp_path: Path, cli_env: dict[str, str]) -> None:
    db = tmp_path / "churn.db"
    config = Config.from_env(cli_env, batch_interval_secs=0.02)
    conn = bottomless.connect(str(db), config=config, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA wal_autocheckpoint=20")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    deadline = time.monotonic() + SECONDS
    n = 0
    while time.monotonic() < deadline:
        conn.execute("INSERT INTO t(v) VALUES (randomblob(300))")
        n += 1
    conn.flush(timeout=120)
    expected = read_rows(db, "SELECT count(*), sum(length(v)), max(id) FROM t")
    conn.close()
    assert expected[0][0] == n

    remove_local(db)
    run_cli(cli_env, "-d", db.name, "restore", "-o", str(db))
    assert read_rows(db, "SELECT count(*), sum(length(v)), max(id) FROM t") == expected
    assert integrity(db) == "ok"

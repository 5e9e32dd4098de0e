"""A writer that outruns the batch interval: SQLite reuses the WAL before
its frames are shipped, so the capture copies them into the side folder,
hundreds of MB a second for small transactions. Waiting for the next grid
point let that pass the folder's cap within one interval, and the history
was dropped for a new generation from a snapshot, again and again while
the writer kept on. The replicator ships as soon as the copies grow
instead: one generation, every transaction in it, restored exactly.

Whether a replicator keeps up is a race between two processes for the
machine's cores (on 2 cores with another busy process, the replicator fell
behind this writer and dropped history all the same), so it runs with the
longer runs only: ``BOTTOMLESS_SOAK=1``. Without the early shipping it
failed 3 runs of 3 here; with it, it passed 5 of 5 on an idle machine."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import dump, integrity, run_cli, vfs_wal_connection, wait_replicator_started
from test_autostart import wait_shipped

TXNS = 60000  # at the side folder's default cap, about one interval of this writer's copies

pytestmark = pytest.mark.skipif(
    os.environ.get("BOTTOMLESS_SOAK", "") in ("", "0"),
    reason="a race for CPU between writer and replicator: runs with BOTTOMLESS_SOAK=1 (longer runs)",
)


def test_a_writer_faster_than_the_interval_keeps_one_generation(tmp_path: Path, cli_env: dict[str, str]) -> None:
    db = tmp_path / "busy.db"
    conn = vfs_wal_connection(db)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT)")
    conn.execute("CREATE INDEX t_k ON t(k)")
    log = tmp_path / "replicator.log"
    with log.open("w") as out:
        replicator = subprocess.Popen(
            [sys.executable, "-m", "bottomless_cli", "-d", str(db), "replicate"],
            env={**cli_env, "BOTTOMLESS_LOG": "info"}, stdout=out, stderr=out,
        )  # fmt: skip
    try:
        wait_replicator_started(db, replicator)
        rng = random.Random(7)
        for i in range(TXNS):
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t(k, v) VALUES (?, ?)", (rng.randrange(10_000), f"{i:08d}" * 8))
            conn.execute("UPDATE t SET v = ? WHERE id = ?", (f"u{i}", rng.randrange(1, i + 2)))
            conn.execute("COMMIT")
        replicator.terminate()  # SIGTERM: ships what is left, then exits
        replicator.wait(120)
    finally:
        if replicator.poll() is None:
            replicator.kill()
    wait_shipped(db)
    conn.close()

    generations = run_cli(cli_env, "-d", db.name, "ls").stdout.split()
    assert len(generations) == 1, f"history was dropped for new snapshots: {generations}\n{log.read_text()}"
    out = tmp_path / "restored.db"
    run_cli(cli_env, "-d", db.name, "restore", "-o", str(out))
    assert integrity(out) == "ok"
    assert dump(out) == dump(db)

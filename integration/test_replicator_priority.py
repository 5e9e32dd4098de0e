"""A replicator in a process of its own runs below the application's CPU
priority (``bottomless-cli replicate`` lowers its own by NICE), so on a busy
machine it yields to the writer; and it still ships everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bottomless.lock import is_locked
from bottomless.replicator import wait_durable
from bottomless.side_files import SideFolder
from bottomless_cli.commands.replicate import NICE
from conftest import dump, integrity, run_cli, vfs_wal_connection


def niceness(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])  # field 19 of stat(5)


def test_the_separate_replicator_yields_cpu_and_ships(tmp_path: Path, cli_env: dict[str, str]) -> None:
    db = tmp_path / "nice.db"
    conn = vfs_wal_connection(db)
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bottomless_cli", "-d", str(db), "replicate"],
        env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        side = str(SideFolder.of(str(db)).path)
        deadline = time.monotonic() + 60
        while not is_locked(side):
            assert proc.poll() is None and time.monotonic() < deadline, "the replicator did not start"
            time.sleep(0.05)
        assert niceness(proc.pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICE)
        for _ in range(200):
            conn.execute("INSERT INTO t(v) VALUES (randomblob(500))")
        wait_durable(str(db), timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    expected = dump(db)
    conn.close()
    out = tmp_path / "restored.db"
    run_cli(cli_env, "-d", db.name, "restore", "-o", str(out))
    assert integrity(out) == "ok"
    assert dump(out) == expected

"""SIGKILL a replicating writer at random moments; after each kill
``bottomless-cli sync`` resumes shipping from the spool, and a restore holds
every row the writer reported durable and equals the local database.

Fast by default; BOTTOMLESS_SOAK=1 runs many more iterations
(BOTTOMLESS_SOAK_ITERATIONS, default 40)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import integrity, read_rows, run_cli

DB = "crash.db"
WRITER = str(Path(__file__).with_name("crash_writer.py"))


def iterations() -> int:
    if os.environ.get("BOTTOMLESS_SOAK", "") not in ("", "0"):
        return int(os.environ.get("BOTTOMLESS_SOAK_ITERATIONS", "40"))
    return 4


def run_writer(db: Path, env: dict[str, str], seed: int, rng: random.Random, late: bool) -> tuple[int, int]:
    """Start the writer, kill it with SIGKILL after a random moment; returns
    (highest id reported committed, highest id reported durable)."""
    proc = subprocess.Popen(
        [sys.executable, WRITER, str(db), str(rng.choice([3, 10, 40])), str(seed)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    committed = durable = 0
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    # Sometimes early (while it opens, restores or snapshots), mostly
    # mid-stream; `late` leaves time for durable ids, so no run proves nothing.
    pause = rng.uniform(4.0, 5.0) if late else rng.choice([rng.uniform(0.05, 0.6), rng.uniform(0.8, 3.0)])
    time.sleep(pause)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    reader.join(10)
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert proc.returncode == -signal.SIGKILL, f"the writer died on its own ({proc.returncode}):\n{err}"
    for line in lines:
        if line.startswith("durable "):
            durable = max(durable, int(line.split()[1]))
        elif line.isdigit():
            committed = max(committed, int(line))
    return committed, durable


def test_sigkill_writer_then_sync_and_restore(tmp_path: Path, cli_env: dict[str, str]) -> None:
    seed = int(os.environ.get("BOTTOMLESS_CRASH_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    db = tmp_path / DB
    total = iterations()
    failures: list[str] = []
    all_durable = 0
    all_committed = 0
    for it in range(total):
        committed, durable = run_writer(db, cli_env, seed + it, rng, late=it == 0)
        all_committed, all_durable = max(all_committed, committed), max(all_durable, durable)
        if not db.exists():
            continue  # killed before the database was even created
        sync = run_cli(cli_env, "-d", str(db), "sync", check=False)
        if sync.returncode != 0:
            if "does not exist" in sync.stderr or not read_rows(db, "SELECT name FROM sqlite_master"):
                continue
            failures.append(f"iteration {it}: sync failed: {sync.stderr.strip()}")
            continue
        local_ids = {r[0] for r in read_rows(db, "SELECT id FROM t")}
        missing_local = [i for i in range(1, all_committed + 1) if i not in local_ids]
        if missing_local:
            failures.append(f"iteration {it}: committed ids lost locally: {missing_local[:10]}")
        out = tmp_path / f"restored-{it}.db"
        restore = run_cli(cli_env, "-d", DB, "restore", "-o", str(out), check=False)
        if restore.returncode != 0:
            failures.append(f"iteration {it}: restore failed: {restore.stderr.strip()}")
            continue
        restored = read_rows(out, "SELECT id, pad FROM t ORDER BY id")
        ids = {r[0] for r in restored}
        missing = [i for i in range(1, all_durable + 1) if i not in ids]
        if missing:
            failures.append(f"iteration {it}: durable ids missing after restore: {missing[:10]}")
        if integrity(out) != "ok":
            failures.append(f"iteration {it}: integrity_check: {integrity(out)}")
        if restored != read_rows(db, "SELECT id, pad FROM t ORDER BY id"):
            failures.append(f"iteration {it}: restored content differs from the local database after sync")
        out.unlink()
    print(
        f"\ncrash harness: seed {seed}, {total} iterations, {len(failures)} failures, "
        f"highest id committed {all_committed}, durable {all_durable}"
    )
    assert all_durable > 0 or total < 3, "the writer never reported a durable id"
    assert not failures, "\n".join(failures)

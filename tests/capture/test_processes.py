"""Several writer processes, and writers killed with SIGKILL at random
moments: the spool still replays to exactly the live database."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bottomless.spool import Spool
from bottomless.sqlite_vfs import register_python_sqlite
from tests.capture.hosts import content
from tests.capture.replay import Replayer, replayed_content

ROOT = Path(__file__).resolve().parents[2]
KILL_ITERATIONS = int(os.environ.get("BOTTOMLESS_KILL_ITERATIONS", "12"))


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT / 'python'}:{ROOT}"}


_COMMITTED = re.compile(r"^committed (\S+) (\d+)\n", re.MULTILINE)


def _writer(db: Path, tag: str, count: int, seed: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.capture.writer_proc", str(db), tag, str(count), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=_env(),
    )


def _create(db: Path) -> Path:
    register_python_sqlite()
    conn = sqlite3.connect(f"file:{db}?vfs=bottomless", uri=True, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.close()
    base = db.with_name("base.db")
    shutil.copyfile(db, base)
    # The replay reads the spool like a replicator: opening it tells capture
    # to keep unshipped pages from here on (without a reader, a first
    # replicator's snapshot would hold them instead).
    Spool(str(db)).close()
    conn = sqlite3.connect(f"file:{db}?vfs=bottomless", uri=True, isolation_level=None)
    conn.execute("CREATE TABLE w(tag TEXT, i INT, r INT, v BLOB)")
    conn.close()
    return base


def _live(db: Path) -> list[object]:
    conn = sqlite3.connect(f"file:{db}?vfs=bottomless", uri=True)
    try:
        return content(lambda q: conn.execute(q).fetchall())
    finally:
        conn.close()


def test_concurrent_writer_processes_are_captured_exactly_once(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    base = _create(db)
    procs = [_writer(db, f"p{k}", 40, k) for k in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert out.count("committed") == 40
    replayer = Replayer(db, base, tmp_path / "replayed.db")
    replayer.catch_up()
    assert replayed_content(replayer.target) == _live(db)
    with Spool(str(db)) as spool:
        stats = spool.stats()
    # 1 schema transaction + 3 x 40 (checkpoints add none)
    assert stats.last_seq == 121


def test_sigkill_never_loses_or_invents_a_transaction(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    base = _create(db)
    replayer = Replayer(db, base, tmp_path / "replayed.db")
    rng = random.Random(1234)
    register_python_sqlite()
    reported: set[tuple[str, int]] = set()
    recovered = 0
    for it in range(KILL_ITERATIONS):
        proc = _writer(db, f"k{it}", 10_000, it)
        # Kill at a random moment after the writer is under way (its start-up
        # time depends on the machine's load, the moment must not).
        assert proc.stdout is not None
        first = proc.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate(timeout=60)
        # Only whole lines count as reported: the kill may cut the last one.
        for tag, i in _COMMITTED.findall(first + rest):
            reported.add((tag, int(i)))
        # The next writer (a fresh connection) must notice a commit the dead
        # process left out of the spool, or a torn record it left in it.
        conn = sqlite3.connect(f"file:{db}?vfs=bottomless", uri=True, isolation_level=None)
        if it % 2:
            conn.execute("INSERT INTO w(tag, i, r) VALUES ('marker', ?, 0)", (it,))
        else:
            conn.execute("BEGIN IMMEDIATE")
            with Spool(str(db)) as spool:
                recovered += spool.reconcile()
            conn.execute("COMMIT")
        conn.close()
        replayer.catch_up()
        live = _live(db)
        assert replayed_content(replayer.target) == live, f"iteration {it}: replay differs from the live database"
        tables = dict(x for x in live if len(x) == 2)
        rows = {(t, i) for t, i, *_ in tables["w"]}
        missing = reported - rows
        assert not missing, f"iteration {it}: commits reported to the writer are gone: {sorted(missing)[:5]}"
    assert reported, "the writers never got to commit anything; the test proved nothing"
    print(f"{KILL_ITERATIONS} kills, {len(reported)} reported commits, {recovered} recovered from the WAL by reconcile")

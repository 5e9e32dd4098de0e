"""End-to-end scenarios: point-in-time restore, generations and retention,
a generation of more than 1,000 batches, several writer processes, a large
database. Everything goes through a real S3 server and the user-facing
entry points (bottomless.connect, bottomless-cli)."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

import bottomless
from bottomless.config import Config
from bottomless.s3 import S3Store
from conftest import generation_objects, integrity, read_rows, remove_local, run_cli

# Depends on how the S3 server behaves: `.ci/s3rver -m s3_server` runs these against s3rver.
pytestmark = pytest.mark.s3_server

DB = "app.db"


def connect(db: Path, cli_env: dict[str, str], **overrides: object) -> bottomless.Connection:
    config = Config.from_env(cli_env).with_overrides(**overrides)
    return bottomless.connect(str(db), config=config, isolation_level=None)


def generations(cli_env: dict[str, str]) -> list[str]:
    return run_cli(cli_env, "-d", DB, "ls").stdout.split()


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_point_in_time_restore(tmp_path: Path, cli_env: dict[str, str]) -> None:
    db = tmp_path / DB
    conn = connect(db, cli_env)
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, phase INTEGER)")
    for _ in range(20):
        conn.execute("INSERT INTO t(phase) VALUES (1)")
    conn.flush()
    time.sleep(2.1)  # batch names carry whole seconds
    between = datetime.now(UTC)
    time.sleep(1.1)
    for _ in range(30):
        conn.execute("INSERT INTO t(phase) VALUES (2)")
    conn.execute("DELETE FROM t WHERE id <= 5")
    conn.flush()
    conn.close()

    early = tmp_path / "early.db"
    run_cli(cli_env, "-d", DB, "restore", "-u", utc_text(between), "-o", str(early))
    assert read_rows(early, "SELECT phase, count(*) FROM t GROUP BY phase") == [(1, 20)]
    assert integrity(early) == "ok"

    verify = run_cli(cli_env, "-d", DB, "verify", "-u", utc_text(between))
    assert re.search(r"integrity check:\s+ok", verify.stdout), verify.stdout

    late = tmp_path / "late.db"
    run_cli(cli_env, "-d", DB, "restore", "-o", str(late))
    assert read_rows(late, "SELECT phase, count(*) FROM t GROUP BY phase") == [(1, 15), (2, 30)]
    assert read_rows(late, "SELECT * FROM t") == read_rows(db, "SELECT * FROM t")

    before_everything = run_cli(
        cli_env, "-d", DB, "restore", "-u", "2000-01-01", "-o", str(tmp_path / "x.db"), check=False
    )
    assert before_everything.returncode != 0
    assert "2000" in before_everything.stderr or "no generation" in before_everything.stderr.lower(), (
        before_everything.stderr
    )


def test_generations_and_retention(tmp_path: Path, cli_env: dict[str, str]) -> None:
    db = tmp_path / DB
    counts = []
    cutoff: datetime | None = None
    for round_ in range(3):
        conn = connect(db, cli_env)
        conn.execute("CREATE TABLE IF NOT EXISTS t(round INTEGER, body TEXT)")
        for i in range(10):
            conn.execute("INSERT INTO t VALUES (?, ?)", (round_, f"row {i}"))
        conn.flush()
        conn.close()
        counts.append(read_rows(db, "SELECT count(*) FROM t")[0][0])
        if round_ < 2:
            time.sleep(1.1)
            if round_ == 1:
                cutoff = datetime.now(UTC)
                time.sleep(1.1)
            said = run_cli(cli_env, "-d", str(db), "snapshot").stdout
            assert "generation" in said, said
    gens = generations(cli_env)
    assert len(gens) == 3, gens

    # Each generation restores to its own end state; newest first in `ls`.
    for gen, count in zip(reversed(gens), counts, strict=True):
        out = tmp_path / f"{gen}.db"
        run_cli(cli_env, "-d", DB, "restore", "-g", gen, "-o", str(out))
        assert read_rows(out, "SELECT count(*) FROM t") == [(count,)]
        assert integrity(out) == "ok"

    assert cutoff is not None
    removed = run_cli(cli_env, "-d", DB, "rm", "--older-than", utc_text(cutoff), "-v")
    left = generations(cli_env)
    assert left[0] == gens[0], (removed.stdout, left)
    assert gens[2] not in left, f"the oldest generation survived rm --older-than: {removed.stdout}"
    final = tmp_path / "final.db"
    run_cli(cli_env, "-d", DB, "restore", "-o", str(final))
    assert read_rows(final, "SELECT round, count(*) FROM t GROUP BY round") == [(0, 10), (1, 10), (2, 10)]

    bad = run_cli(cli_env, "-d", DB, "restore", "-g", gens[2], "-o", str(tmp_path / "gone.db"), check=False)
    assert bad.returncode != 0 and gens[2] in bad.stderr, bad.stderr


def test_more_than_1000_batches(tmp_path: Path, cli_env: dict[str, str], store: S3Store) -> None:
    db = tmp_path / DB
    conn = connect(db, cli_env, batch_max_frames=1)
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    conn.flush()
    for i in range(1100):
        conn.execute("INSERT INTO t(v) VALUES (?)", (f"value {i}",))
    conn.flush(timeout=120)
    conn.close()
    ((folder, names),) = generation_objects(store, DB).items()
    batches = [n for n in names if re.match(r"^\d{12}-\d{12}-\d+\.", n)]
    assert len(batches) > 1000, f"{folder} holds {len(batches)} batches"

    remove_local(db)
    run_cli(cli_env, "-d", DB, "restore", "-o", str(db))
    assert read_rows(db, "SELECT count(*), max(id) FROM t") == [(1100, 1100)]
    assert integrity(db) == "ok"


WRITER_PROC = """
import sys
import bottomless
db, who, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conn = bottomless.connect(db, isolation_level=None, timeout=30)
for i in range(n):
    conn.execute("INSERT INTO t(who, i) VALUES (?, ?)", (who, i))
conn.close()
"""


def test_several_writer_processes(tmp_path: Path, cli_env: dict[str, str]) -> None:
    db = tmp_path / DB
    conn = connect(db, cli_env)
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, who INTEGER, i INTEGER)")
    conn.flush()
    conn.close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER_PROC, str(db), str(who), "60"],
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in range(4)
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    run_cli(cli_env, "-d", str(db), "sync")

    restored = tmp_path / "restored.db"
    run_cli(cli_env, "-d", DB, "restore", "-o", str(restored))
    assert read_rows(restored, "SELECT who, count(*), count(DISTINCT i) FROM t GROUP BY who") == [
        (w, 60, 60) for w in range(4)
    ]
    assert read_rows(restored, "SELECT * FROM t ORDER BY id") == read_rows(db, "SELECT * FROM t ORDER BY id")
    assert integrity(restored) == "ok"


def content_digest(db: Path) -> str:
    h = hashlib.sha256()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        for row in conn.execute("SELECT id, body FROM big ORDER BY id"):
            h.update(row[0].to_bytes(8, "big"))
            h.update(row[1])
    finally:
        conn.close()
    return h.hexdigest()


def test_large_database(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """~100 MiB: 80 MiB go up in the first snapshot, 20 MiB as batches."""
    mib = int(os.environ.get("BOTTOMLESS_TEST_LARGE_MIB", "100"))
    db = tmp_path / DB
    plain = sqlite3.connect(db)
    plain.execute("PRAGMA journal_mode=wal")
    plain.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, body BLOB)")
    with plain:
        plain.executemany("INSERT INTO big(body) VALUES (randomblob(65536))", [()] * (mib * 16 * 4 // 5))
    plain.close()

    conn = connect(db, cli_env)
    for _ in range(mib * 16 // 5 // 64):
        conn.execute("BEGIN")
        for _ in range(64):
            conn.execute("INSERT INTO big(body) VALUES (randomblob(65536))")
        conn.execute("COMMIT")
    conn.execute("UPDATE big SET body = zeroblob(1000) WHERE id % 97 = 0")
    conn.flush(timeout=300)
    conn.close()
    size = db.stat().st_size
    assert size > mib * 1024 * 1024 * 9 // 10

    restored = tmp_path / "restored.db"
    run_cli(cli_env, "-d", DB, "restore", "-o", str(restored), timeout=600)
    assert integrity(restored) == "ok"
    assert content_digest(restored) == content_digest(db)

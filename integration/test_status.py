"""``bottomless-cli status`` through the real CLI against the suite's S3
server: per database the newest generation, the last commit in S3 and its
age, unshipped bytes, the running replicator, the lease and the last error;
a database with no backup, a file that is not SQLite and an unreachable
bucket are rows that say so."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import bottomless
from bottomless.config import Config
from bottomless.lock import holder_pid, is_locked
from bottomless.side_files import SideFolder
from bottomless.sqlite_vfs import register_python_sqlite
from conftest import run_cli

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there


def status(env: dict[str, str], *args: str, options: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """``bottomless-cli ARGS status OPTIONS --json``, parsed."""
    rows: list[dict[str, Any]] = json.loads(run_cli(env, *args, "status", *options, "--json").stdout)
    return rows


def replicated(db: Path, env: dict[str, str], rows: int, database_id: str | None = None) -> None:
    """``db`` with ``rows`` more rows, every one in S3 (bottomless.connect,
    flushed, closed): the first generation's snapshot, then batches."""
    config = Config.from_env(env, database_id=database_id)
    conn = bottomless.connect(str(db), config=config, isolation_level=None)
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB)")
        conn.flush(timeout=60)
        for _ in range(rows):
            conn.execute("INSERT INTO t(v) VALUES (randomblob(500))")
        conn.flush(timeout=60)
    finally:
        conn.close()


def commit_without_replicator(db: Path, transactions: int) -> None:
    """Commits captured into the spool with no replicator running."""
    register_python_sqlite()
    conn = sqlite3.connect(f"file:{db}?vfs=bottomless", uri=True, isolation_level=None)
    try:
        for _ in range(transactions):
            conn.execute("INSERT INTO t(v) VALUES (randomblob(500))")
    finally:
        conn.close()


def wait_replicating(db: Path, proc: subprocess.Popen[str]) -> None:
    """Until ``proc`` (a ``replicate -d db``) holds the database's replicator
    lock: then its signal handlers are in place and it ships the spool."""
    side = SideFolder.of(db).path
    deadline = time.monotonic() + 60
    while not (is_locked(side) and holder_pid(side) == proc.pid):
        assert proc.poll() is None, f"the replicator exited {proc.returncode}"
        assert time.monotonic() < deadline, "the replicator did not take the lock in 60 s"
        time.sleep(0.1)


def newest_generation(env: dict[str, str], db_name: str) -> str:
    return run_cli(env, "-d", db_name, "ls", "-l", "1").stdout.strip()


def test_shipped_database(tmp_path: Path, cli_env: dict[str, str]) -> None:
    db = tmp_path / "app.db"
    before = time.time()
    replicated(db, cli_env, rows=20)
    [row] = status(cli_env, "-d", str(db))
    assert row["database"] == "app.db"
    assert row["path"] == str(db)
    assert row["generation"] == newest_generation(cli_env, "app.db")
    assert row["last_commit"]["frame"] > 0
    assert row["last_commit"]["age_secs"] < time.time() - before + 2
    assert row["unshipped"] == {"bytes": 0, "transactions": 0, "lag_secs": 0}
    assert row["replicator"] == {"running": False, "pid": None}
    # connect() released its lease when it closed.
    assert row["lease"]["state"] == "released"
    assert row["last_error"] is None
    assert row["notes"] == []


def test_unshipped_commits_and_their_age(tmp_path: Path, cli_env: dict[str, str]) -> None:
    db = tmp_path / "backlog.db"
    replicated(db, cli_env, rows=1)
    shipped = status(cli_env, "-d", str(db))[0]["last_commit"]
    commit_without_replicator(db, transactions=7)
    time.sleep(1.2)
    [row] = status(cli_env, "-d", str(db))
    assert row["unshipped"]["transactions"] == 7
    assert row["unshipped"]["bytes"] > 7 * 500
    assert row["unshipped"]["lag_secs"] >= 1.0
    assert row["last_commit"]["frame"] == shipped["frame"]  # S3 has not moved
    table = run_cli(cli_env, "-d", str(db), "status").stdout
    assert "(7 tx), oldest" in table.splitlines()[1]


def test_running_replicator_and_its_lease(tmp_path: Path, cli_env: dict[str, str]) -> None:
    db = tmp_path / "live.db"
    replicated(db, cli_env, rows=1)
    commit_without_replicator(db, transactions=1)  # something for it to ship, so it takes the lease
    proc = subprocess.Popen(
        [sys.executable, "-m", "bottomless_cli", "-d", str(db), "replicate"],
        env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_replicating(db, proc)
        run_cli(cli_env, "-d", str(db), "sync")  # waits for the running replicator
        [row] = status(cli_env, "-d", str(db))
        assert row["replicator"] == {"running": True, "pid": proc.pid}
        assert row["lease"]["state"] == "held"
        assert row["lease"]["ours"] is True
        assert f"(pid {proc.pid})" in row["lease"]["holder"]
        assert row["unshipped"]["transactions"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    [row] = status(cli_env, "-d", str(db))
    assert row["replicator"]["running"] is False
    assert row["lease"]["state"] == "released"


def test_last_error_of_a_replicator_that_cannot_ship(tmp_path: Path, cli_env: dict[str, str]) -> None:
    db = tmp_path / "stuck.db"
    replicated(db, cli_env, rows=1)
    commit_without_replicator(db, transactions=3)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bottomless_cli", "-e", UNREACHABLE, "-d", str(db), "replicate"],
        env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while (row := status(cli_env, "-d", str(db))[0])["last_error"] is None:
            assert time.monotonic() < deadline, row
            time.sleep(0.5)
        error = row["last_error"]
        assert "cannot reach S3 endpoint" in error["message"] and UNREACHABLE in error["message"]
        assert error["pid"] == proc.pid and error["replicator_alive"] is True and error["stopped"] is False
        assert row["unshipped"]["transactions"] == 3  # still in the spool
        assert "cannot reach S3 endpoint" in run_cli(cli_env, "-d", str(db), "status").stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def test_database_without_backup_and_file_that_is_not_sqlite(tmp_path: Path, cli_env: dict[str, str]) -> None:
    tenants = tmp_path / "tenants"
    (tenants / "acme").mkdir(parents=True)
    replicated(tenants / "acme" / "app.db", cli_env, rows=3, database_id="acme%2Fapp.db")
    fresh = sqlite3.connect(tenants / "new.db")
    fresh.execute("CREATE TABLE t(x)")
    fresh.close()
    (tenants / "notes.db").write_text("not a database\n")
    rows = {r["database"]: r for r in status(cli_env, options=("--dir", str(tenants), "--recursive"))}
    # A file passed over has no name in the bucket: its row is named by its path.
    notes = str(tenants / "notes.db")
    assert set(rows) == {"acme%2Fapp.db", "new.db", notes}
    assert rows["acme%2Fapp.db"]["generation"] == newest_generation(cli_env, "acme%2Fapp.db")
    assert rows["acme%2Fapp.db"]["notes"] == []
    assert rows["new.db"]["generation"] is None
    assert any("no backup in bucket" in n for n in rows["new.db"]["notes"])
    assert any("never replicated from this machine" in n for n in rows["new.db"]["notes"])
    assert any(n.startswith("not replicated:") and "not an SQLite database" in n for n in rows[notes]["notes"])
    assert rows[notes]["bucket"] is None and rows[notes]["generation"] is None
    # Without --recursive the tenant in a sub-folder is not replicated, so not listed.
    assert {r["database"] for r in status(cli_env, options=("--dir", str(tenants)))} == {"new.db", notes}


def test_config_file(tmp_path: Path, cli_env: dict[str, str], bucket_name: str) -> None:
    main = tmp_path / "main.db"
    replicated(main, cli_env, rows=2, database_id="main")
    (tmp_path / "tenants").mkdir()
    replicated(tmp_path / "tenants" / "t1.db", cli_env, rows=2)
    config = tmp_path / "bottomless.yml"
    config.write_text(f"bucket: {bucket_name}\ndbs:\n  - path: main.db\n    database_id: main\n  - dir: tenants\n")
    rows = {r["database"]: r for r in status(cli_env, options=("--config", str(config)))}
    assert set(rows) == {"main", "t1.db"}
    assert rows["main"]["path"] == str(main)
    assert rows["main"]["generation"] == newest_generation(cli_env, "main")
    assert rows["t1.db"]["generation"] == newest_generation(cli_env, "t1.db")
    bad = tmp_path / "bad.yml"
    bad.write_text("dbs:\n  - path: main.db\n    bach_interval_secs: 2\n")
    proc = run_cli(cli_env, "status", "--config", str(bad), check=False)
    assert proc.returncode != 0
    assert f"{bad}:3: bach_interval_secs" in proc.stderr


def test_every_database_in_the_bucket(tmp_path: Path, cli_env: dict[str, str]) -> None:
    replicated(tmp_path / "one.db", cli_env, rows=1)
    replicated(tmp_path / "two.db", cli_env, rows=1)
    rows = status(cli_env)
    assert [r["database"] for r in rows] == ["one.db", "two.db"]
    assert all(r["path"] is None and r["generation"] for r in rows)
    table = run_cli(cli_env, "status").stdout.splitlines()
    assert table[0].split()[:2] == ["DATABASE", "GENERATION"]
    assert [line.split()[0] for line in table[1:]] == ["one.db", "two.db"]


def test_unreachable_bucket_is_a_row(tmp_path: Path, cli_env: dict[str, str]) -> None:
    db = tmp_path / "far.db"
    replicated(db, cli_env, rows=1)
    [row] = status(cli_env, "-e", UNREACHABLE, "-d", str(db))
    assert row["generation"] is not None  # what the side folder knows
    assert row["unshipped"]["transactions"] == 0
    assert any(n.startswith("bucket unreachable: cannot reach S3 endpoint") for n in row["notes"]), row["notes"]
    # Listing the bucket is all there is to do without -d: one clear error.
    proc = run_cli(cli_env, "-e", UNREACHABLE, "status", check=False)
    assert proc.returncode == 1 and "cannot reach S3 endpoint" in proc.stderr


def test_one_way_to_name_the_databases(tmp_path: Path, cli_env: dict[str, str]) -> None:
    proc = run_cli(cli_env, "-d", "x.db", "status", "--dir", str(tmp_path), check=False)
    assert proc.returncode == 2 and "-d and --dir cannot be combined" in proc.stderr
    proc = run_cli(cli_env, "status", "--recursive", check=False)
    assert proc.returncode == 2 and "--pattern and --recursive go with --dir" in proc.stderr
    proc = run_cli(cli_env, "status", "--dir", str(tmp_path / "nowhere"), check=False)
    assert proc.returncode == 2 and "nowhere does not exist" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = run_cli(cli_env, "status", "--dir", str(tmp_path / "empty"), check=False)
    assert proc.returncode == 1 and "no databases to report on" in proc.stderr and "empty" in proc.stderr


def test_status_of_a_running_multi_database_replicator(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """``status --dir`` names the databases ``replicate --dir`` ships, and
    shows that process shipping each of them."""
    tenants = tmp_path / "tenants"
    (tenants / "b").mkdir(parents=True)
    for rel in ("a.db", "b/c.db", "d.db"):
        conn = sqlite3.connect(tenants / rel)
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("CREATE TABLE t(x)")
        conn.execute("INSERT INTO t VALUES (1)")
        conn.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bottomless_cli", "replicate", "--dir", str(tenants), "--recursive"],
        env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            rows = status(cli_env, options=("--dir", str(tenants), "--recursive"))
            if all(r["generation"] and r["replicator"]["pid"] == proc.pid for r in rows):
                break
            assert proc.poll() is None and time.monotonic() < deadline, rows
            time.sleep(0.5)
        assert [r["database"] for r in rows] == ["a.db", "b%2Fc.db", "d.db"]
        assert all(r["generation"] == newest_generation(cli_env, r["database"]) for r in rows)
        assert all(r["unshipped"]["transactions"] == 0 and r["notes"] == [] for r in rows)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err

"""Replication never makes an application's statement or open fail: hosts
with no busy timeout (the shells, Python's sqlite3 with timeout=0) write
thousands of transactions while the replicator starts, takes snapshots
(every few hundred frames here), ships, and the WAL restarts under
autocheckpoint; not one statement fails and the restored database equals
the source."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bottomless._paths import extension_path
from bottomless.sqlite_vfs import register_python_sqlite
from conftest import restored_equals, run_cli, run_shell
from test_autostart import wait_shipped

TXNS = 3000
# Frames shipped, which hold each page once per batch: a few seconds of
# these writes ship a few hundred.
SMALL_SNAPSHOTS = {"LIBSQL_BOTTOMLESS_SNAPSHOT_FRAMES": "60"}


def generations(env: dict[str, str], db_name: str) -> int:
    return len(run_cli(env, "-d", db_name, "ls").stdout.split())


@pytest.mark.parametrize("host", ["sqlite3", "libsql"])
def test_shell_without_timeout_never_fails(
    host: str, request: pytest.FixtureRequest, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    shell = request.getfixturevalue(f"{host}_shell")
    param = "vfs" if host == "sqlite3" else "wal"
    env = {**cli_env, **SMALL_SNAPSHOTS, "LIBSQL_BOTTOMLESS_AUTOSTART": "1"}
    db = tmp_path / "test.db"
    opening = f".open file:{db.name}?{param}=bottomless\n"
    lines = [
        f".load {extension_path()}",
        opening,
        "PRAGMA journal_mode=wal;",
        "PRAGMA wal_autocheckpoint=50;",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER, v BLOB);",
    ]
    for i in range(TXNS):
        lines.append(
            f"BEGIN; INSERT INTO t(n, v) VALUES ({i}, randomblob(300)); "
            f"UPDATE t SET n = n + 1 WHERE id = {i // 2 + 1}; COMMIT;"
        )
        if i % 25 == 0:
            lines.append(".system sleep 0.02")  # let the replicator's steps fall between statements
        if i % 600 == 300:
            # The seed's flow: the database opened again while the first
            # session's replicator is at work.
            lines.append(opening + "PRAGMA wal_autocheckpoint=50;")
    # run_shell fails the test on any error (".bail on"; "database is
    # locked", "unable to open database" included).
    run_shell(shell, "\n".join(lines) + "\n", env, cwd=tmp_path, timeout=300)
    assert sqlite3.connect(db).execute("SELECT count(*) FROM t").fetchone() == (TXNS,)
    wait_shipped(db)
    assert generations(cli_env, db.name) > 1, "no snapshot was taken while the shell wrote"
    restored_equals(db, cli_env, tmp_path)


def test_python_timeout_zero_never_fails(tmp_path: Path, cli_env: dict[str, str]) -> None:
    register_python_sqlite()
    db = tmp_path / "py.db"
    uri = f"file:{db}?vfs=bottomless"
    conn = sqlite3.connect(uri, uri=True, timeout=0, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA wal_autocheckpoint=50")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER, v BLOB)")
    env = {**cli_env, **SMALL_SNAPSHOTS}
    replicator = subprocess.Popen(
        [sys.executable, "-m", "bottomless_cli", "-d", str(db), "replicate"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    failures: list[str] = []
    try:
        for i in range(TXNS):
            try:
                conn.execute("BEGIN")
                conn.execute("INSERT INTO t(n, v) VALUES (?, randomblob(300))", (i,))
                conn.execute("UPDATE t SET n = n + 1 WHERE id = ?", (i // 2 + 1,))
                conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                failures.append(f"transaction {i}: {exc}")
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            if i % 25 == 0:
                time.sleep(0.02)
            if i % 300 == 150:
                try:
                    other = sqlite3.connect(uri, uri=True, timeout=0)
                    other.execute("SELECT count(*) FROM t").fetchone()
                    other.close()
                except sqlite3.OperationalError as exc:
                    failures.append(f"opening again at {i}: {exc}")
        assert failures == []
        conn.close()
        run_cli(env, "-d", str(db), "sync", timeout=120)
    finally:
        replicator.send_signal(signal.SIGTERM)
        _, err = replicator.communicate(timeout=60)
    assert replicator.returncode == 0, err
    assert generations(cli_env, db.name) > 1, "no snapshot was taken while Python wrote"
    restored_equals(db, cli_env, tmp_path)

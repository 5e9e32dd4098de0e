"""``bottomless.connect()`` ships from a child process, out of the writer's
GIL (issue 19), and keeps the contract its in-process thread had: flush()
means "in S3", close() ships what is left, a replicator that dies is a clear
error (not a hang), and nothing committed is lost to any of it."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

import bottomless
from bottomless.config import Config
from bottomless.errors import BottomlessError
from bottomless.restore import restore
from bottomless.s3 import S3Store
from conftest import dump, integrity, read_rows

DB = "child.db"


def open_db(db: Path, env: dict[str, str]) -> bottomless.Connection:
    conn = bottomless.connect(str(db), config=Config.from_env(env), isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, body TEXT)")
    return conn


def insert(conn: bottomless.Connection, n: int) -> None:
    for i in range(n):
        conn.execute("INSERT INTO t(body) VALUES (?)", (f"row {i} " + "x" * 300,))


def restored(store: S3Store, tmp_path: Path, name: str) -> Path:
    out = tmp_path / name
    restore(store, DB, str(out))
    assert integrity(out) == "ok"
    return out


def test_the_replicator_is_a_child_process_and_flush_means_in_s3(
    tmp_path: Path, cli_env: dict[str, str], store: S3Store
) -> None:
    db = tmp_path / DB
    conn = open_db(db, cli_env)
    pid = conn.replicator.pid
    assert pid is not None and pid != os.getpid()
    assert not [t for t in threading.enumerate() if t.name.startswith("bottomless:")]  # no thread in the writer
    insert(conn, 200)
    conn.flush(timeout=60)
    assert dump(restored(store, tmp_path, "flushed.db")) == dump(db)
    conn.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # close() stopped (and reaped) it


def test_close_ships_what_is_left(tmp_path: Path, cli_env: dict[str, str], store: S3Store) -> None:
    db = tmp_path / DB
    conn = open_db(db, cli_env)
    insert(conn, 50)
    conn.close()  # no flush(): close() ships the rest
    assert read_rows(restored(store, tmp_path, "closed.db"), "SELECT count(*) FROM t") == [(50,)]


def test_a_dead_replicator_is_a_clear_error_and_loses_nothing(
    tmp_path: Path, cli_env: dict[str, str], store: S3Store
) -> None:
    db = tmp_path / DB
    conn = open_db(db, cli_env)
    insert(conn, 10)
    conn.flush(timeout=60)
    pid = conn.replicator.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    insert(conn, 30)  # the application's writes go on
    started = time.monotonic()
    with pytest.raises(BottomlessError, match=f"pid {pid}.* exited") as info:
        conn.flush(timeout=60)
    assert time.monotonic() - started < 30  # said at once, not after the timeout
    assert "replicator.log" in str(info.value)
    conn.close()

    # The spool kept the 30 rows; the next connection ships them.
    again = open_db(db, cli_env)
    again.flush(timeout=60)
    again.close()
    assert read_rows(restored(store, tmp_path, "after.db"), "SELECT count(*) FROM t") == [(40,)]


def test_two_connections_in_one_process_share_one_shipper(
    tmp_path: Path, cli_env: dict[str, str], store: S3Store
) -> None:
    db = tmp_path / DB
    first = open_db(db, cli_env)
    second = open_db(db, cli_env)
    insert(first, 20)
    insert(second, 20)
    second.flush(timeout=60)
    first.flush(timeout=60)
    first.close()  # its child may have been the shipper: the other takes over
    insert(second, 5)
    second.flush(timeout=60)
    second.close()
    assert read_rows(restored(store, tmp_path, "both.db"), "SELECT count(*) FROM t") == [(45,)]

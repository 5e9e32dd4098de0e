"""While the WAL holds commits no replicator has shipped, SQLite is kept
from reusing it (native/src/wal_hold.zig), so a replicator that keeps up
ships straight from the WAL and little is copied into the side folder.
The hold never fails a statement, and it is bounded: past
LIBSQL_BOTTOMLESS_WAL_HOLD_BYTES SQLite reuses the WAL as before and the
unshipped frames are copied first. Python's sqlite3 with timeout=0, a
replicator in another process, a real S3 server; every restore is exact."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bottomless.replicator import wait_durable
from bottomless.side_files import PAGES, SideFolder
from conftest import restored_equals, vfs_wal_connection, wait_replicator_started

HOLD_VARIABLE = "LIBSQL_BOTTOMLESS_WAL_HOLD_BYTES"


@contextmanager
def replicator(db: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """``bottomless-cli replicate`` for ``db``, started before the block runs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bottomless_cli", "-d", str(db), "replicate"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_replicator_started(db, proc)
        yield proc
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err


def writer(db: Path) -> sqlite3.Connection:
    """The application: no busy timeout, small WAL cycles."""
    conn = vfs_wal_connection(db, timeout=0)
    conn.execute("PRAGMA wal_autocheckpoint=50")
    conn.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, n INTEGER, v BLOB)")
    return conn


def write(conn: sqlite3.Connection, first: int, count: int, pause_every: int = 0) -> None:
    for i in range(first, first + count):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t(n, v) VALUES (?, randomblob(300))", (i,))
        conn.execute("UPDATE t SET n = n + 1 WHERE id = ?", (i // 2 + 1,))
        conn.execute("COMMIT")
        if pause_every and i % pause_every == 0:
            time.sleep(0.02)  # batches go out while the writer writes


def frames_written(reference: Path, count: int) -> int:
    """Bytes of WAL frames ``count`` transactions of write() make: the WAL
    of plain SQLite that never reuses it."""
    conn = sqlite3.connect(reference, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER, v BLOB)")
    write(conn, 0, count)
    size = wal_bytes(reference)
    conn.close()
    return size


def copied_bytes(db: Path) -> int:
    pages = SideFolder.of(str(db)).file(PAGES)
    return pages.stat().st_size if pages.exists() else 0


def wal_bytes(db: Path) -> int:
    return os.path.getsize(f"{db}-wal")


def test_a_replicator_that_keeps_up_leaves_nothing_to_copy(tmp_path: Path, cli_env: dict[str, str]) -> None:
    db = tmp_path / "kept.db"
    conn = writer(db)
    try:
        with replicator(db, cli_env):
            write(conn, 0, 3000, pause_every=25)
            wait_durable(str(db), timeout=60)
            # SQLite reused the WAL, each time copying at most the unshipped
            # quarter of it (without the hold, a restart every 50 frames
            # copied nearly all).
            written = frames_written(tmp_path / "reference.db", 3000)
            assert wal_bytes(db) < written, "the WAL was never reused"
            assert copied_bytes(db) < written / 4, "the replicator kept up, yet most frames were copied"
    finally:
        conn.close()
    restored_equals(db, cli_env, tmp_path)


def test_a_checkpoint_while_held_reports_busy_and_completes_once_shipped(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    db = tmp_path / "ckpt.db"
    conn = writer(db)
    try:
        with replicator(db, cli_env) as proc:
            proc.send_signal(signal.SIGSTOP)  # a replicator that has not shipped yet
            write(conn, 0, 200)
            # No error, no wait: busy, as while another connection checkpoints.
            assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 1
            assert wal_bytes(db) > 0
            proc.send_signal(signal.SIGCONT)
            wait_durable(str(db), timeout=60)
            assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone() == (0, 0, 0)
            assert wal_bytes(db) == 0
            assert copied_bytes(db) == 0
    finally:
        conn.close()
    restored_equals(db, cli_env, tmp_path)


def test_the_hold_ends_at_its_size(tmp_path: Path, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    hold = 1 << 20
    monkeypatch.setenv(HOLD_VARIABLE, str(hold))  # read by the writer's VFS
    db = tmp_path / "bounded.db"
    conn = writer(db)
    try:
        with replicator(db, cli_env) as proc:
            proc.send_signal(signal.SIGSTOP)  # shipping nothing while 4 MiB are written
            write(conn, 0, 2000)
            # One transaction past the hold at most, whatever was written.
            assert wal_bytes(db) <= hold + 8 * (24 + 4096), "the WAL grew past the hold"
            assert copied_bytes(db) > 0, "SQLite reused the WAL without copying unshipped frames"
            proc.send_signal(signal.SIGCONT)
            write(conn, 2000, 100)
            wait_durable(str(db), timeout=60)
    finally:
        conn.close()
    restored_equals(db, cli_env, tmp_path)


def test_a_hold_half_way_to_its_size_copies_in_the_background(
    tmp_path: Path, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = 4 << 20
    monkeypatch.setenv(HOLD_VARIABLE, str(hold))
    db = tmp_path / "halfway.db"
    conn = writer(db)
    try:
        with replicator(db, cli_env) as proc:
            proc.send_signal(signal.SIGSTOP)
            n = 0
            while wal_bytes(db) < 0.6 * hold:
                write(conn, n, 10)
                n += 10
            # Nothing was reused yet, but the frames are being copied, so
            # the restart at the hold's size will not copy them all at once.
            deadline = time.monotonic() + 10
            while copied_bytes(db) == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert wal_bytes(db) < hold
            assert copied_bytes(db) > 0, "no background copy half way to the hold's size"
            proc.send_signal(signal.SIGCONT)
            write(conn, n, 100)
            wait_durable(str(db), timeout=60)
    finally:
        conn.close()
    restored_equals(db, cli_env, tmp_path)

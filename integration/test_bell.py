"""A replicator that sleeps on filesystem notifications (the multi-database
process) must hear of every commit. Capture writes a commit's record through
a shared mapping, which the kernel does not report; the side folder's bell
is what it reports instead, once armed (native/src/bell.zig)."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from bottomless import side_files
from bottomless._native import load
from bottomless.spool import Spool
from conftest import vfs_wal_connection

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="inotify is Linux's")


def open_db(db: Path) -> sqlite3.Connection:
    conn = vfs_wal_connection(db)
    conn.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, body TEXT)")
    return conn


def records(db: Path) -> int:
    with Spool(str(db)) as spool:
        return spool.stats().records


def test_every_commit_after_arming_is_reported_by_the_kernel(tmp_path: Path) -> None:
    inotify_simple = pytest.importorskip("inotify_simple", reason="inotify_simple is a dependency of the package")
    db = tmp_path / "app.db"
    conn = open_db(db)  # one long-lived connection, as an application keeps
    conn.execute("INSERT INTO t(body) VALUES ('before anyone listens')")
    folder = side_files.folder_of(db)
    inotify = inotify_simple.INotify()
    inotify.add_watch(folder, inotify_simple.flags.MODIFY)
    try:
        for round_ in range(5):
            seen = records(db)
            load().bell_arm(str(db))
            # Arming is silent (or the replicator would wake itself), and
            # nothing is new: a replicator would sleep now.
            woke = {event.name for event in inotify.read(timeout=300)}
            assert side_files.BELL not in woke, "arming the bell woke the watcher"
            assert records(db) == seen
            conn.execute("INSERT INTO t(body) VALUES (?)", (f"round {round_}",))
            names = {event.name for event in inotify.read(timeout=5000)}
            assert side_files.BELL in names, f"commit {round_} after arming woke nobody: {names}"
            assert records(db) == seen + 1
            # Until armed again, commits are silent: no system call per commit.
            conn.execute("INSERT INTO t(body) VALUES ('unheard')")
            assert side_files.BELL not in {event.name for event in inotify.read(timeout=300)}
    finally:
        inotify.close()
        conn.close()


def test_a_bell_armed_before_the_application_opened_still_rings(tmp_path: Path) -> None:
    """A fleet can arm a database nobody has opened since it started."""
    db = tmp_path / "app.db"
    open_db(db).close()
    load().bell_arm(str(db))
    bell = Path(side_files.folder_of(db)) / side_files.BELL
    assert bell.read_bytes()[64] == 0  # never rung: nobody had armed it
    conn = open_db(db)
    try:
        conn.execute("INSERT INTO t(body) VALUES ('x')")
    finally:
        conn.close()
    assert bell.read_bytes()[:4] == b"\0\0\0\0", "the commit did not take the bell's armed word"
    assert bell.read_bytes()[64] == 1, "the commit did not ring the armed bell"

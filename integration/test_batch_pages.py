"""A batch holds each page once, in its newest image (batch_pages.zig):
what small transactions rewrite hundreds of times a second is shipped once
per batch, and the restore still equals the source, also when the batch
shrank the database, and when a crash came between a batch's PUT and the
state that records it."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bottomless import layout, objects, shipping
from bottomless.config import Config
from bottomless.frames import iter_headers
from bottomless.replicator import Replicator
from bottomless.s3 import S3Store
from bottomless.sqlite_vfs import register_python_sqlite
from conftest import generation_objects, integrity, read_rows, restored_equals, run_cli

PAGE = 4096


@contextmanager
def writer(db: Path) -> Iterator[sqlite3.Connection]:
    register_python_sqlite()
    conn = sqlite3.connect(f"file:{db}?vfs=bottomless", uri=True, isolation_level=None)
    try:
        conn.execute(f"PRAGMA page_size={PAGE}")
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("PRAGMA wal_autocheckpoint=0")  # every frame stays in the WAL: one known count
        yield conn
    finally:
        conn.close()


def shipped_batches(store: S3Store, db_name: str) -> list[list[tuple[int, int]]]:
    """Each small batch's frames as (pgno, db_size), in frame order."""
    out: list[list[tuple[int, int]]] = []
    for folder, names in generation_objects(store, db_name).items():
        for name in sorted(names):
            parsed = layout.parse_batch_name(name)
            if parsed is None or parsed.merged:
                continue
            key = f"{folder}/{name}"
            body = objects.decode_body(store.get(key), key, parsed.compression, None)
            out.append([(h.pgno, h.db_size) for h in iter_headers(body, PAGE)])
    return out


def wal_frames(db: Path) -> int:
    return (Path(f"{db}-wal").stat().st_size - 32) // (24 + PAGE)


def test_a_batch_holds_each_page_once(tmp_path: Path, cli_env: dict[str, str], store: S3Store) -> None:
    db = tmp_path / "hot.db"
    rep = Replicator(str(db), Config.from_env(cli_env))
    with writer(db) as conn:
        conn.execute("CREATE TABLE account(id INTEGER PRIMARY KEY, balance INTEGER, note BLOB)")
        conn.executemany("INSERT INTO account VALUES (?, 0, randomblob(50))", [(i,) for i in range(200)])
        assert rep.acquire()
        rep.ship()  # the first generation and its snapshot
        before = wal_frames(db)
        for i in range(400):  # 400 commits on the same few pages
            conn.execute("UPDATE account SET balance = balance + ? WHERE id = ?", (i, i % 200))
        written = wal_frames(db) - before
        assert rep.ship() > 0
        rep.stop()
        batches = shipped_batches(store, rep.db_name)
        assert len(batches) == 1
        frames = batches[0]
        pgnos = [p for p, _ in frames]
        assert len(pgnos) == len(set(pgnos)), "a page appears twice in one batch"
        assert written >= 400 and len(frames) < written / 50
        assert [size for _, size in frames[:-1]] == [0] * (len(frames) - 1)
        assert frames[-1][1] == conn.execute("PRAGMA page_count").fetchone()[0]
        restored_equals(db, cli_env, tmp_path)


def test_a_batch_ends_at_batch_max_frames_pages(tmp_path: Path, cli_env: dict[str, str], store: S3Store) -> None:
    """BATCH_MAX_FRAMES counts the frames of the object, as libSQL's
    max_frames_per_batch does: hundreds of commits to a few hot pages are
    one batch, and commits that write many new pages are cut into batches
    of at most that many."""
    db = tmp_path / "cut.db"
    rep = Replicator(str(db), Config.from_env(cli_env).with_overrides(batch_max_frames=20))
    with writer(db) as conn:
        conn.execute("CREATE TABLE account(id INTEGER PRIMARY KEY, balance INTEGER)")
        conn.execute("CREATE TABLE doc(id INTEGER PRIMARY KEY, body BLOB)")
        conn.executemany("INSERT INTO account VALUES (?, 0)", [(i,) for i in range(200)])
        assert rep.acquire()
        rep.ship()
        before = wal_frames(db)
        for i in range(400):
            conn.execute("UPDATE account SET balance = balance + ? WHERE id = ?", (i + 1, i % 200))
        assert wal_frames(db) - before > 15 * 20  # raw frames: many batches' worth
        assert rep.ship() == 400
        (hot,) = shipped_batches(store, rep.db_name)
        assert len(hot) <= 20
        for _ in range(100):  # each commit writes a new page of its own
            conn.execute("INSERT INTO doc(body) VALUES (randomblob(3000))")
        assert rep.ship() == 100
        rep.stop()
        cut = shipped_batches(store, rep.db_name)[1:]
        assert len(cut) >= 100 // 20
        for frames in cut:
            pgnos = [p for p, _ in frames]
            assert len(pgnos) <= 20 and len(pgnos) == len(set(pgnos))
        restored_equals(db, cli_env, tmp_path)


def test_a_backlog_ships_in_batches_a_restore_can_tell_apart(
    tmp_path: Path, cli_env: dict[str, str], store: S3Store
) -> None:
    """Commits that waited in the spool (the replicator was away) are not
    one batch however few frames they hold: a batch spans at most two batch
    intervals, so a restore to a time between them still finds each state."""
    db = tmp_path / "backlog.db"
    rep = Replicator(str(db), Config.from_env(cli_env).with_overrides(batch_interval_secs=0.2))
    with writer(db) as conn:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        assert rep.acquire()
        rep.ship()
        conn.execute("INSERT INTO t VALUES (1, 'first')")
        time.sleep(1.1)
        between = datetime.now(UTC)
        time.sleep(1.1)
        conn.execute("INSERT INTO t VALUES (2, 'second')")
        assert rep.ship() == 2  # one call, as after an outage
        rep.stop()
        assert len(shipped_batches(store, rep.db_name)) == 2
        out = tmp_path / "then.db"
        run_cli(cli_env, "-d", db.name, "restore", "-o", str(out), "--utc-time", between.strftime("%Y-%m-%dT%H:%M:%S"))
        assert integrity(out) == "ok"
        assert read_rows(out, "SELECT id, v FROM t") == [(1, "first")]


def test_a_batch_that_shrinks_the_database_restores(tmp_path: Path, cli_env: dict[str, str], store: S3Store) -> None:
    db = tmp_path / "shrink.db"
    rep = Replicator(str(db), Config.from_env(cli_env))
    with writer(db) as conn:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        conn.execute("INSERT INTO t(v) VALUES (randomblob(100))")
        assert rep.acquire()
        rep.ship()
        # One batch: the database grows by hundreds of pages, then VACUUM
        # truncates it; the pages past its end must not come back.
        conn.executemany("INSERT INTO t(v) VALUES (randomblob(3000))", [()] * 300)
        conn.execute("DELETE FROM t WHERE id > 10")
        conn.execute("VACUUM")
        conn.execute("INSERT INTO t(v) VALUES (randomblob(100))")
        size = conn.execute("PRAGMA page_count").fetchone()[0]
        rep.ship()
        rep.stop()
        (frames,) = shipped_batches(store, rep.db_name)
        assert max(p for p, _ in frames) <= size
        assert frames[-1][1] == size
        restored_equals(db, cli_env, tmp_path)


def test_a_crash_between_put_and_state_resumes_after_the_batch(
    tmp_path: Path, cli_env: dict[str, str], store: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "crash.db"
    config = Config.from_env(cli_env)
    with writer(db) as conn:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?, 0)", [(i,) for i in range(50)])
        rep = Replicator(str(db), config)
        assert rep.acquire()
        rep.ship()
        for i in range(100):
            conn.execute("UPDATE t SET n = n + 1 WHERE id = ?", (i % 50,))
        rep.ship()
        # The next batch reaches S3, then the process dies before it records
        # the batch (its state and the spool's ack stay the older ones).
        # Its commits rewrite only pages the batch before held, so several
        # runs of records give the batch's frame count.
        for i in range(100):
            conn.execute("UPDATE t SET n = n + 2 WHERE id = ?", (i % 50,))

        def crash(*_: object) -> None:
            raise KeyboardInterrupt("the process dies here")

        with monkeypatch.context() as m:
            m.setattr(shipping, "save_state", crash)
            with pytest.raises(KeyboardInterrupt):
                rep.ship()
        rep.lock.release()  # as the kernel would for a dead process
        rep = Replicator(str(db), config)
        assert rep.acquire()
        conn.execute("INSERT INTO t VALUES (1000, 7)")
        rep.ship()
        assert rep.error is None
        rep.stop()
        restored_equals(db, cli_env, tmp_path)

"""The application always wins, and the side folder behaves like SQLite's own
-wal and -shm files: through Debian's sqlite3 CLI, as root and as a second
real user (``nobody``, by setpriv), against a real S3 server.

- Any user who may write the database may write its side folder: it and its
  files take the database file's mode (and, as root, its owner and group).
- A side folder that cannot be written, or is full, never changes what
  SQLite returns:
  the writes succeed, the problem is logged once, the next capture that
  works flags the gap, and the replicator starts a new generation from a
  snapshot, which restores exactly.
- The side folder is bounded (LIBSQL_BOTTOMLESS_SPOOL_MAX_BYTES); past the
  cap unshipped history is dropped, and the next replicator's new generation
  restores exactly.
- Nothing is created beside a file that is not a SQLite database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bottomless import catalog
from bottomless._paths import extension_path
from bottomless.s3 import S3Store
from bottomless.spool import Spool, SpoolStats, spool_dir
from conftest import dump, integrity, run_cli

DB = "app.db"
NOBODY = "nobody"
# The files capture writes, and the replicator's own.
CAPTURE_FILES = ("spool", "pages", "pages.lock", "sealed", "ack")
REPLICATOR_FILES = ("replicator.json", "replicator.lock")


def as_user(user: str | None) -> list[str]:
    if user is None:
        return []
    return ["setpriv", f"--reuid={user}", f"--regid={user if user != NOBODY else 'nogroup'}", "--clear-groups"]


def sqlite3_cli(
    db: Path, sql: str, env: dict[str, str], user: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs sql in Debian's sqlite3 CLI through the bottomless VFS."""
    shell = shutil.which("sqlite3")
    assert shell, "no sqlite3 CLI on PATH (apt-get install sqlite3)"
    script = f".load {extension_path()}\n.open file:{db.name}?vfs=bottomless\n{sql}\n"
    return subprocess.run(
        [*as_user(user), shell, "-bail"],
        input=script,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=db.parent,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """The application's view: SQLite said nothing is wrong."""
    assert proc.returncode == 0 and "Error" not in proc.stdout, f"sqlite3 failed:\n{proc.stdout}\n{proc.stderr}"
    assert "disk I/O error" not in proc.stderr, proc.stderr
    return proc


def inserts(tag: str, n: int, size: int = 300) -> str:
    return f"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<{n}) " \
        f"INSERT INTO t(tag, body) SELECT '{tag}', randomblob({size}) FROM c;\n"


def many_commits(tag: str, n: int, size: int = 2000) -> str:
    """n transactions, enough to restart a small WAL many times."""
    return "".join(f"INSERT INTO t(tag, body) VALUES ('{tag}', randomblob({size}));\n" for _ in range(n))


SCHEMA = "PRAGMA journal_mode=wal;\nCREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, tag TEXT, body BLOB);\n"


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder both root and nobody may use (pytest's tmp_path is root's alone)."""
    if os.geteuid() != 0:
        pytest.skip("these tests switch to a second user with setpriv and must run as root")
    d = Path(tempfile.mkdtemp(prefix="bottomless-users-", dir="/tmp"))
    d.chmod(0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def stats(db: Path) -> SpoolStats:
    with Spool(str(db)) as spool:
        return spool.stats()


def restored_equals_live(cli_env: dict[str, str], db: Path, out: Path) -> None:
    run_cli(cli_env, "-d", str(db), "sync")
    run_cli(cli_env, "-d", db.name, "restore", "-o", str(out))
    assert integrity(out) == "ok"
    assert dump(out) == dump(db), "the restore differs from the live database"


def generations(store: S3Store, db: Path) -> int:
    return len(catalog.list_generations(store, db.name))


def cli_as(user: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*as_user(user), sys.executable, "-m", "bottomless_cli", *args],
        env={**env, "HOME": "/tmp"},
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/tmp",
    )


def owners(folder: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for name in (".", *CAPTURE_FILES, *REPLICATOR_FILES):
        p = folder / name
        if p.exists():
            st = p.stat()
            out[name] = (st.st_uid, st.st_gid, st.st_mode & 0o777)
    return out


def test_second_user_writes_a_database_root_created(shared_dir: Path, cli_env: dict[str, str]) -> None:
    db = shared_dir / DB
    db.touch()
    db.chmod(0o666)  # as in the issue: anyone may write this database
    ok(sqlite3_cli(db, SCHEMA + inserts("root", 50), cli_env))
    ok(sqlite3_cli(db, "PRAGMA wal_autocheckpoint=20;\n" + many_commits("nobody", 60), cli_env, user=NOBODY))
    folder = Path(spool_dir(str(db)))
    assert owners(folder)["."] == (0, 0, 0o777), "the side folder did not take the database's mode"
    assert all(mode == 0o666 for _, _, mode in list(owners(folder).values())[1:]), owners(folder)
    s = stats(db)
    assert s.last_seq == 2 + 60 and s.gaps == 0, f"nobody's commits were not all captured: {s}"
    restored_equals_live(cli_env, db, shared_dir / "restored.db")


def test_root_writes_a_database_a_second_user_created(shared_dir: Path, cli_env: dict[str, str]) -> None:
    db = shared_dir / DB
    ok(sqlite3_cli(db, SCHEMA + inserts("nobody", 50), cli_env, user=NOBODY))
    nobody = (db.stat().st_uid, db.stat().st_gid)
    run_cli(cli_env, "-d", str(db), "sync")  # a replicator attaches: restarts now copy pages
    ok(sqlite3_cli(db, "PRAGMA wal_autocheckpoint=20;\n" + many_commits("root", 60), cli_env))
    folder = Path(spool_dir(str(db)))
    found = owners(folder)
    assert {"pages", "sealed", "pages.lock", *REPLICATOR_FILES} <= found.keys(), f"files missing: {found}"
    assert all((uid, gid) == nobody for uid, gid, _ in found.values()), f"files root created are root's: {found}"
    # And nobody goes on writing, and replicating, through files root created.
    ok(sqlite3_cli(db, "PRAGMA wal_autocheckpoint=20;\n" + many_commits("nobody-again", 60), cli_env, user=NOBODY))
    synced = cli_as(NOBODY, cli_env, "-d", str(db), "sync")
    assert synced.returncode == 0, f"nobody's sync failed:\n{synced.stdout}\n{synced.stderr}"
    s = stats(db)
    assert s.gaps == 0 and s.last_seq == 2 + 60 + 60, f"not every commit was captured: {s}"
    restored_equals_live(cli_env, db, shared_dir / "restored.db")


def test_unwritable_side_folder_never_fails_the_application(
    shared_dir: Path, cli_env: dict[str, str], store: S3Store
) -> None:
    db = shared_dir / DB
    db.touch()
    db.chmod(0o666)
    ok(sqlite3_cli(db, SCHEMA + inserts("first", 50), cli_env))
    run_cli(cli_env, "-d", str(db), "sync")
    folder = Path(spool_dir(str(db)))
    saved = {p: p.stat().st_mode for p in [folder, *folder.iterdir()]}
    for p in saved:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        # Many WAL restarts: the uncaptured commits leave the WAL for good.
        lost = ok(
            sqlite3_cli(db, "PRAGMA wal_autocheckpoint=20;\n" + many_commits("uncaptured", 80), cli_env, user=NOBODY)
        )
    finally:
        for p, mode in saved.items():
            p.chmod(mode)
    assert lost.stderr.count("SQLite goes on") == 1, f"the problem was not logged exactly once:\n{lost.stderr}"
    ok(sqlite3_cli(db, inserts("after", 10), cli_env))
    assert stats(db).gaps >= 1, "the capture after the failure did not flag the missing commits"
    before = generations(store, db)
    restored_equals_live(cli_env, db, shared_dir / "restored.db")
    assert generations(store, db) == before + 1, "no new generation started at the gap"


def test_full_side_folder_never_fails_the_application(
    tmp_path: Path, cli_env: dict[str, str], store: S3Store
) -> None:
    """The side folder on a file system of its own that fills up (ENOSPC):
    SQLite's writes all succeed; once there is room again the backup
    recovers with a new generation that restores exactly."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system for the side folder needs root")
    db = tmp_path / DB
    folder = Path(spool_dir(str(db)))
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=384k", "tmpfs", str(folder)], check=True)
    try:
        ok(sqlite3_cli(db, SCHEMA + inserts("first", 20), cli_env))
        run_cli(cli_env, "-d", str(db), "sync")
        full = ok(sqlite3_cli(db, "PRAGMA wal_autocheckpoint=20;\n" + many_commits("full", 150, 4000), cli_env))
        assert "errno 28" in full.stderr or "disk full" in full.stderr, f"the side folder never filled:\n{full.stderr}"
        assert full.stderr.count("SQLite goes on") == 1, f"not logged exactly once:\n{full.stderr}"
        subprocess.run(["mount", "-o", "remount,size=64m", str(folder)], check=True)
        ok(sqlite3_cli(db, inserts("after", 10), cli_env))
        assert stats(db).gaps >= 1, "the capture after the full disk did not flag the missing commits"
        before = generations(store, db)
        restored_equals_live(cli_env, db, tmp_path / "restored.db")
        assert generations(store, db) == before + 1, "no new generation started at the gap"
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_side_folder_stays_within_its_limit(tmp_path: Path, cli_env: dict[str, str], store: S3Store) -> None:
    limit = 4 << 20
    env = {**cli_env, "LIBSQL_BOTTOMLESS_SPOOL_MAX_BYTES": str(limit)}
    db = tmp_path / DB
    ok(sqlite3_cli(db, SCHEMA + inserts("first", 20), env))
    run_cli(env, "-d", str(db), "sync")  # a replicator ran once, then stopped: unshipped history piles up
    folder = Path(spool_dir(str(db)))
    largest = 0
    warnings = 0
    for session in range(8):
        out = ok(sqlite3_cli(db, "PRAGMA wal_autocheckpoint=100;\n" + many_commits(f"s{session}", 150, 8000), env))
        warnings += out.stderr.count("is dropped")
        used = sum(p.stat().st_blocks * 512 for p in folder.iterdir())
        largest = max(largest, used)
        assert used <= limit, f"session {session}: the side folder holds {used} bytes, over its limit of {limit}"
    written = 8 * 150 * 8000
    assert written > 2 * limit, "the test wrote too little to reach the limit"
    s = stats(db)
    assert s.dropped_seq > 0, f"nothing was dropped: the limit was never reached ({s}, largest {largest})"
    assert warnings == 1, f"the drop was warned about {warnings} times, not once"
    before = generations(store, db)
    restored_equals_live(env, db, tmp_path / "restored.db")
    assert generations(store, db) == before + 1, "no new generation started after the drop"
    assert sum(p.stat().st_blocks * 512 for p in folder.iterdir()) <= limit


def test_no_copies_before_the_first_replicator(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """With no replicator ever, WAL restarts copy nothing (the first
    replicator's snapshot holds it all): the side folder stays small."""
    db = tmp_path / DB
    ok(sqlite3_cli(db, SCHEMA + "PRAGMA wal_autocheckpoint=50;\n" + many_commits("x", 400, 4000), cli_env))
    folder = Path(spool_dir(str(db)))
    pages = folder / "pages"
    assert not pages.exists() or pages.stat().st_blocks == 0, "pages were copied with no replicator to ship them"
    restored_equals_live(cli_env, db, tmp_path / "restored.db")


@pytest.mark.parametrize("autostart", ["0", "1"])
def test_nothing_is_created_beside_a_file_that_is_not_a_database(
    tmp_path: Path, cli_env: dict[str, str], autostart: str
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database, just notes\n" * 20)
    env = {**cli_env, "LIBSQL_BOTTOMLESS_AUTOSTART": autostart}
    proc = sqlite3_cli(notes, "SELECT count(*) FROM sqlite_master;", env)
    assert "file is not a database" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert notes.read_text() == "not a database, just notes\n" * 20

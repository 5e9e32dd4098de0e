"""Broken local inputs give clear errors: a file that is not SQLite, a
read-only directory, a generation that belongs to another database."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import bottomless
from bottomless.config import Config
from bottomless.s3 import S3Store
from conftest import generation_objects, integrity, read_rows, run_cli

NOT_SQLITE = b"this is a plain text file, certainly not a database\n" * 200


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, f"a traceback instead of a message:\n{proc.stderr}"


def test_connect_refuses_a_file_that_is_not_sqlite(tmp_path: Path, cli_env: dict[str, str]) -> None:
    path = tmp_path / "notsqlite.db"
    path.write_bytes(NOT_SQLITE)
    with pytest.raises(Exception, match="not a database") as info:
        conn = bottomless.connect(str(path), config=Config.from_env(cli_env))
        conn.execute("SELECT * FROM sqlite_master").fetchall()
        conn.close()
    assert isinstance(info.value, (sqlite3.DatabaseError, bottomless.errors.BottomlessError)), repr(info.value)
    assert path.read_bytes() == NOT_SQLITE, "the file was modified"


NOT_SQLITE_TRACEBACK = (
    "bottomless-cli sync/snapshot on a file that is not SQLite print a raw Python traceback ending in "
    "sqlite3.DatabaseError: file is not a database (raised by snapshot.ensure_wal from Replicator.prepare / "
    "prepare_for_snapshot) instead of a one-line error naming the file"
)


@pytest.mark.parametrize("command", ["sync", "snapshot"])
def test_cli_refuses_a_file_that_is_not_sqlite(
    command: str, tmp_path: Path, cli_env: dict[str, str], store: S3Store
) -> None:
    path = tmp_path / "notsqlite.db"
    path.write_bytes(NOT_SQLITE)
    proc = run_cli(cli_env, "-d", str(path), command, check=False, timeout=60)
    assert proc.returncode != 0, proc.stdout
    assert "is not a SQLite database" in proc.stderr, proc.stderr
    assert path.read_bytes() == NOT_SQLITE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notsqlite.db"]  # no side folder
    assert generation_objects(store, "notsqlite.db") == {}
    no_traceback(proc)


def test_cli_sync_names_a_missing_file(tmp_path: Path, cli_env: dict[str, str]) -> None:
    proc = run_cli(cli_env, "-d", str(tmp_path / "missing.db"), "sync", check=False)
    assert proc.returncode != 0 and "does not exist" in proc.stderr, proc.stderr
    no_traceback(proc)


def test_restore_of_a_file_that_is_not_sqlite_in_the_bucket(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """A bucket with no generation of the name: a clear error, nothing written."""
    out = tmp_path / "out.db"
    proc = run_cli(cli_env, "-d", "nothing-here.db", "restore", "-o", str(out), check=False)
    assert proc.returncode != 0
    assert "nothing-here.db" in proc.stderr, proc.stderr
    no_traceback(proc)
    assert not out.exists()


# ---- read-only directory -------------------------------------------------------


def read_only_argv(directory: Path, argv: list[str]) -> list[str]:
    """argv run with ``directory`` read-only: a read-only bind mount in a
    private mount namespace when root (permissions do not stop root), else
    plain permissions (set by the caller)."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("unshare") is None:
        pytest.skip("running as root without unshare(1): cannot make a directory read-only")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"running as root and unshare -m is not permitted: {probe.stderr.decode().strip()}")
    quoted = " ".join(f"'{a}'" for a in argv)
    return ["unshare", "-m", "sh", "-c", f"mount --bind -o ro '{directory}' '{directory}' && exec {quoted}"]


@pytest.fixture
def ro_dir(tmp_path: Path) -> Path:
    d = tmp_path / "ro"
    d.mkdir()
    return d


def make_ro(d: Path) -> None:
    if os.geteuid() != 0:
        d.chmod(0o555)


CONNECT_AND_WRITE = """
import sys, bottomless
conn = bottomless.connect(sys.argv[1], isolation_level=None)
conn.execute("INSERT INTO t VALUES (2)")
conn.flush(timeout=10)
conn.close()
"""


def test_connect_in_read_only_directory(ro_dir: Path, cli_env: dict[str, str]) -> None:
    db = ro_dir / "app.db"
    plain = sqlite3.connect(db)
    plain.execute("CREATE TABLE t(x)")
    plain.execute("INSERT INTO t VALUES (1)")
    plain.commit()
    plain.close()
    make_ro(ro_dir)
    argv = read_only_argv(ro_dir, [sys.executable, "-c", CONNECT_AND_WRITE, str(db)])
    proc = subprocess.run(argv, env=cli_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0, "writing into a read-only directory succeeded?"
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    assert any(w in last.lower() for w in ("read-only", "readonly", "permission")), proc.stderr
    ro_dir.chmod(0o755)
    assert read_rows(db, "SELECT x FROM t") == [(1,)]


def ro_cli(ro_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    argv = read_only_argv(ro_dir, [sys.executable, "-m", "bottomless_cli", *args])
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def backed_up(tmp_path: Path, cli_env: dict[str, str]) -> Path:
    src = tmp_path / "src.db"
    conn = bottomless.connect(str(src), config=Config.from_env(cli_env), isolation_level=None)
    conn.execute("CREATE TABLE t(x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.flush()
    conn.close()
    return src


def test_cli_restore_into_read_only_directory(ro_dir: Path, tmp_path: Path, cli_env: dict[str, str]) -> None:
    backed_up(tmp_path, cli_env)
    make_ro(ro_dir)
    restore = ro_cli(ro_dir, cli_env, "-d", "src.db", "restore", "-o", str(ro_dir / "out.db"))
    ro_dir.chmod(0o755)
    assert restore.returncode != 0
    assert any(w in restore.stderr.lower() for w in ("read-only", "readonly", "permission")), restore.stderr
    assert not (ro_dir / "out.db").exists()
    no_traceback(restore)


def test_cli_sync_in_read_only_directory(ro_dir: Path, tmp_path: Path, cli_env: dict[str, str]) -> None:
    db = ro_dir / "local.db"
    shutil.copy(backed_up(tmp_path, cli_env), db)
    make_ro(ro_dir)
    sync = ro_cli(ro_dir, cli_env, "-d", str(db), "sync")
    ro_dir.chmod(0o755)
    assert sync.returncode != 0
    assert any(w in sync.stderr.lower() for w in ("read-only", "readonly", "permission")), sync.stderr
    assert "Errno" not in sync.stderr, sync.stderr
    no_traceback(sync)


# ---- a generation of another database -----------------------------------------


def replicate(db: Path, cli_env: dict[str, str], rows: list[str]) -> None:
    conn = bottomless.connect(str(db), config=Config.from_env(cli_env), isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS t(v TEXT)")
    for v in rows:
        conn.execute("INSERT INTO t VALUES (?)", (v,))
    conn.flush()
    conn.close()


def test_generation_of_another_database(tmp_path: Path, cli_env: dict[str, str], store: S3Store) -> None:
    replicate(tmp_path / "alpha.db", cli_env, ["alpha 1", "alpha 2"])
    replicate(tmp_path / "beta.db", cli_env, ["beta 1"])
    (alpha_folder,) = generation_objects(store, "alpha.db")
    alpha_gen = alpha_folder.removeprefix("alpha.db-")

    # Asking beta for alpha's generation: a clear error, nothing written.
    out = tmp_path / "out.db"
    wrong = run_cli(cli_env, "-d", "beta.db", "restore", "-g", alpha_gen, "-o", str(out), check=False)
    assert wrong.returncode != 0 and alpha_gen in wrong.stderr, wrong.stderr
    no_traceback(wrong)
    assert not out.exists()
    # With its own name it restores.
    run_cli(cli_env, "-d", "alpha.db", "restore", "-g", alpha_gen, "-o", str(out))
    assert read_rows(out, "SELECT v FROM t") == [("alpha 1",), ("alpha 2",)]

    # Without -d, two databases in the bucket: the CLI asks which one.
    ambiguous = run_cli(cli_env, "restore", "-o", str(tmp_path / "amb.db"), check=False)
    assert ambiguous.returncode != 0, ambiguous.stdout
    assert "alpha.db" in ambiguous.stderr and "beta.db" in ambiguous.stderr, ambiguous.stderr
    no_traceback(ambiguous)

    # Copies of alpha's objects under a third name restore as that name only
    # and never leak into beta's restores.
    for info in list(store.list_objects(alpha_folder + "/")):
        store.put(info.key.replace("alpha.db-", "gamma.db-", 1), store.get(info.key))
    gamma = tmp_path / "gamma.db"
    run_cli(cli_env, "-d", "gamma.db", "restore", "-o", str(gamma))
    assert read_rows(gamma, "SELECT v FROM t") == [("alpha 1",), ("alpha 2",)]
    assert integrity(gamma) == "ok"
    beta = tmp_path / "beta-restored.db"
    run_cli(cli_env, "-d", "beta.db", "restore", "-o", str(beta))
    assert read_rows(beta, "SELECT v FROM t") == [("beta 1",)]

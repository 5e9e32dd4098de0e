"""What a replicated folder holds: real SQLite databases matching the
pattern, named by their path inside the folder; never a WAL, journal or
side folder; a matching file that is not a database is reported."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

from bottomless.discovery import scan
from bottomless.side_files import SideFolder
from bottomless.tenant_names import path_of


def make_db(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t(x)")
    con.commit()
    con.close()


def test_finds_databases_by_pattern_and_depth(tmp_path: Path) -> None:
    make_db(tmp_path / "a.db")
    make_db(tmp_path / "acme" / "b.db")
    make_db(tmp_path / "other.sqlite")
    side = SideFolder.of(tmp_path / "a.db").path
    os.mkdir(side)
    make_db(Path(side) / "inner.db")  # a side folder is never searched
    (tmp_path / "notes.db").write_bytes(b"not a database at all, just text")
    (tmp_path / "new.db").write_bytes(b"")  # being created: passed over quietly

    flat = scan(tmp_path)
    assert flat.databases == {"a.db": tmp_path / "a.db"}
    assert flat.skipped == {tmp_path / "notes.db": "not an SQLite database (no SQLite header)"}

    deep = scan(tmp_path, recursive=True)
    assert deep.databases == {"a.db": tmp_path / "a.db", "acme%2Fb.db": tmp_path / "acme" / "b.db"}
    assert all(tmp_path / path_of(name) == path for name, path in deep.databases.items())

    assert scan(tmp_path, pattern="*", recursive=False).databases.keys() == {"a.db", "other.sqlite"}


def test_open_database_companions_are_not_databases(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    make_db(db)
    con = sqlite3.connect(db)
    con.execute("INSERT INTO t VALUES (1)")  # leaves -wal and -shm while open
    con.commit()
    assert (tmp_path / "live.db-wal").exists()
    found = scan(tmp_path, pattern="*")
    con.close()
    assert found.databases == {"live.db": db}
    assert found.skipped == {}


def test_missing_folder_holds_nothing(tmp_path: Path) -> None:
    assert scan(tmp_path / "not-yet").databases == {}


def test_unreadable_database_is_reported() -> None:
    """As a user who may list the folder but not read the file (as root,
    the scan runs as ``nobody``, since root reads every file)."""
    folder = Path(tempfile.mkdtemp(prefix="bottomless-scan-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        make_db(folder / "locked.db")
        (folder / "locked.db").chmod(0o600)
        code = (
            f"from pathlib import Path; from bottomless.discovery import scan; print(repr(scan(Path({str(folder)!r}))))"
        )
        user = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else []
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        out = subprocess.run(
            [*user, sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        ).stdout
        assert "databases={}" in out
        assert "locked.db'): \"permission denied" in out
    finally:
        shutil.rmtree(folder, ignore_errors=True)

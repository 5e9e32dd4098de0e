"""The seed's flow with nothing else started by the user: a shell loads the
extension and writes; the extension starts a replicator that outlives the
shell until everything is in S3. Opening the missing database again restores
it first."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bottomless._paths import extension_path
from bottomless.lock import is_locked
from bottomless.s3 import S3Store
from bottomless.side_files import SideFolder
from bottomless.spool import Spool, spool_dir
from conftest import remove_local, run_cli, run_shell

DB = "test.db"
ROWS = [(1, "one"), (2, "two"), (3, "three")]


def wait_shipped(db: Path, timeout: float = 90) -> None:
    """Until the spool is fully acknowledged and no replicator runs (one that
    had nothing to ship, as after a read-only session, exits at once)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Path(spool_dir(str(db))).is_dir() and not is_locked(spool_dir(str(db))):
            with Spool(str(db)) as spool:
                stats = spool.stats()
            if stats.records == 0:
                return
        time.sleep(0.2)
    log = SideFolder.of(str(db)).log
    pytest.fail(
        f"the autostarted replicator did not ship {db} in {timeout}s; its log:\n"
        f"{log.read_text() if log.exists() else '(none)'}"
    )


@pytest.mark.parametrize("host", ["sqlite3", "libsql"])
def test_shell_writes_reach_s3_and_come_back(
    host: str, request: pytest.FixtureRequest, tmp_path: Path, cli_env: dict[str, str], store: S3Store
) -> None:
    shell = request.getfixturevalue(f"{host}_shell")
    param = "vfs" if host == "sqlite3" else "wal"
    env = {**cli_env, "LIBSQL_BOTTOMLESS_AUTOSTART": "1"}
    opening = f".load {extension_path()}\n.open file:{DB}?{param}=bottomless\n"
    inserts = "".join(f"INSERT INTO t VALUES ({i}, '{v}');\n" for i, v in ROWS)
    run_shell(
        shell,
        opening + "PRAGMA journal_mode=wal;\nCREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n" + inserts,
        env,
        cwd=tmp_path,
    )
    db = tmp_path / DB
    wait_shipped(db)
    listing = run_cli(cli_env, "-d", DB, "ls")
    assert listing.stdout.strip(), "no generation in the bucket"

    remove_local(db)
    out = run_shell(shell, opening + "SELECT id, v FROM t ORDER BY id;\n", env, cwd=tmp_path)
    assert out.stdout.split() == [f"{i}|{v}" for i, v in ROWS], out.stdout
    wait_shipped(db)

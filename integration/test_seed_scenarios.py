"""The seed's smoke test and restore test, word for word, through every host:
Debian's sqlite3 CLI (``?vfs=bottomless``), the libSQL 0.2 shell
(``?wal=bottomless``, when LIBSQL_SHELL is set), Python's sqlite3 through
``bottomless.connect`` and apsw through ``bottomless.connect_apsw``.

Shells have no replicator of their own here (LIBSQL_BOTTOMLESS_AUTOSTART=0):
``bottomless-cli sync`` ships their spool after they exit.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bottomless import extension_path
from bottomless.s3 import S3Store
from conftest import generation_objects, integrity, read_rows, remove_local, run_cli, run_shell

DB = "test.db"
BATCH = re.compile(r"^(\d{12})-(\d{12})-(\d+)\.zstd$")

# The seed's statements.
SEED_SETUP = ["PRAGMA page_size=65536", "PRAGMA journal_mode=wal"]
SEED_PHASE_1 = [
    "CREATE TABLE test(v)",
    "INSERT INTO test VALUES (42)",
    "INSERT INTO test VALUES (zeroblob(8193))",
    "INSERT INTO test VALUES ('hey')",
]
SEED_PHASE_2 = ["INSERT INTO test VALUES ('second phase')", "INSERT INTO test VALUES (7)"]
EXPECTED_1 = [(42,), (bytes(8193),), ("hey",)]
EXPECTED_2 = EXPECTED_1 + [("second phase",), (7,)]

PY_WRITER = """
import json, sys
import bottomless
db, endpoint, bucket, host, statements, timeout = sys.argv[1:7]
sqls = json.loads(statements)
# The seed's "PRAGMA page_size=N" before WAL mode: given to connect(), which
# creates the database in WAL mode with it.
page_size = int(sqls.pop(0).split("=")[1]) if sqls and sqls[0].startswith("PRAGMA page_size=") else None
if host == "python":
    conn = bottomless.connect(db, endpoint=endpoint, bucket=bucket, isolation_level=None, page_size=page_size)
    for sql in sqls:
        conn.execute(sql)
    conn.flush()
    conn.close()
else:
    conn = bottomless.connect_apsw(db, endpoint=endpoint, bucket=bucket, page_size=page_size)
    for sql in sqls:
        conn.execute(sql)
    conn.close()
    bottomless.wait_durable(db, timeout=float(timeout))
"""

Writer = Callable[[list[str]], None]
HOSTS = ["sqlite3", "libsql", "python", "apsw"]


@pytest.fixture(params=HOSTS)
def host(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def writer(request: pytest.FixtureRequest, host: str, tmp_path: Path, cli_env: dict[str, str]) -> Writer:
    durable_timeout = 10 if request.node.get_closest_marker("xfail") else 60
    """Runs statements against tmp_path/test.db through ``host`` and returns
    once they are in S3."""
    if host in ("sqlite3", "libsql"):
        shell = request.getfixturevalue(f"{host}_shell")
        param = "vfs" if host == "sqlite3" else "wal"

        def shell_write(statements: list[str]) -> None:
            script = f".load {extension_path()}\n.open file:{DB}?{param}=bottomless\n"
            script += "".join(f"{sql};\n" for sql in statements)
            run_shell(shell, script, cli_env, cwd=tmp_path)
            run_cli(cli_env, "-d", DB, "sync", cwd=tmp_path)

        return shell_write

    def py_write(statements: list[str]) -> None:
        args = [DB, cli_env["LIBSQL_BOTTOMLESS_ENDPOINT"], cli_env["LIBSQL_BOTTOMLESS_BUCKET"], host]
        proc = subprocess.run(
            [sys.executable, "-c", PY_WRITER, *args, json.dumps(statements), str(durable_timeout)],
            env=cli_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, f"{host} writer failed:\n{proc.stdout}\n{proc.stderr}"

    return py_write


def check_layout(store: S3Store, total_rows_frames: bool) -> tuple[str, list[tuple[int, int, int]]]:
    """The one generation folder holds the seed's objects; returns it and its
    batches as (first, last, secs), checked contiguous from frame 1."""
    folders = generation_objects(store, DB)
    assert len(folders) == 1, f"expected one generation, found {sorted(folders)}"
    folder, names = next(iter(folders.items()))
    uuid7 = r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}"
    assert re.fullmatch(re.escape(DB) + "-" + uuid7, folder), folder
    for required in ("db.zstd", ".meta", ".changecounter"):
        assert required in names, f"{folder}/{required} is missing; objects: {sorted(names)}"
    batches = []
    for name in names:
        m = BATCH.match(name)
        if m:
            batches.append((int(m[1]), int(m[2]), int(m[3])))
        else:
            assert name in ("db.zstd", ".meta", ".changecounter", ".dep"), f"unexpected object {folder}/{name}"
    batches.sort()
    expected_first = 1
    for first, last, _ in batches:
        assert first == expected_first and last >= first, f"batches not contiguous: {batches}"
        expected_first = last + 1
    if total_rows_frames:
        assert batches, f"no batch objects in {folder}: {sorted(names)}"
    return folder, batches


def test_seed_smoke(writer: Writer, host: str, tmp_path: Path, store: S3Store, cli_env: dict[str, str]) -> None:
    db = tmp_path / DB
    writer(SEED_SETUP + SEED_PHASE_1)
    assert read_rows(db, "SELECT v FROM test") == EXPECTED_1
    check_layout(store, total_rows_frames=False)

    writer(SEED_PHASE_2)
    _, batches = check_layout(store, total_rows_frames=True)
    assert read_rows(db, "SELECT v FROM test") == EXPECTED_2

    verify = run_cli(cli_env, "-d", DB, "verify", cwd=tmp_path)
    assert re.search(r"integrity check:\s+ok", verify.stdout), verify.stdout
    ls = run_cli(cli_env, "-d", DB, "ls", "-v", cwd=tmp_path)
    assert f"consistent WAL frame: {batches[-1][1]}" in ls.stdout, ls.stdout


def test_seed_restore(writer: Writer, host: str, tmp_path: Path, store: S3Store, cli_env: dict[str, str]) -> None:
    db = tmp_path / DB
    writer(SEED_SETUP + SEED_PHASE_1)
    writer(SEED_PHASE_2)
    page_size = read_rows(db, "PRAGMA page_size")[0][0]
    if host != "libsql":
        # libSQL 0.2 itself runs "PRAGMA journal_mode=wal" when a database is
        # opened with non-default WAL methods, so page 1 is written (4 KiB
        # pages) before the seed's PRAGMA page_size can act.
        assert page_size in (65536, 4096)

    remove_local(db)
    assert not db.exists()
    # The seed's restore: by database name into the current directory.
    out = run_cli(cli_env, "-d", DB, "restore", cwd=tmp_path)
    assert db.exists(), out.stdout + out.stderr
    assert read_rows(db, "SELECT v FROM test") == EXPECTED_2
    assert integrity(db) == "ok"
    assert read_rows(db, "PRAGMA page_size")[0][0] == page_size

    # And into a named output file.
    other = tmp_path / "elsewhere" / "copy.db"
    other.parent.mkdir()
    run_cli(cli_env, "-d", DB, "restore", "-o", str(other), cwd=tmp_path)
    assert read_rows(other, "SELECT v FROM test") == EXPECTED_2
    assert integrity(other) == "ok"


RESTORED_THEN_REFUSED = (
    "after `bottomless-cli -d test.db restore` rebuilt the database in place, the next sync/replicator refuses "
    "it with DivergedError 'the bucket already holds test.db ... never replicated from here or is not newer: "
    "restore it (bottomless-cli restore)': the CLI restore leaves no restored-from marker (only "
    "restore_on_open does) and Replicator._local_is_newer compares the header change counter, which WAL "
    "commits do not bump; with connect_apsw the spawned replicator dies of it silently and wait_durable just "
    "times out"
)


def test_seed_continue_after_cli_restore(
    writer: Writer, host: str, tmp_path: Path, store: S3Store, cli_env: dict[str, str]
) -> None:
    """A database restored in place by ``bottomless-cli restore`` keeps
    replicating when the host writes to it again."""
    db = tmp_path / DB
    writer(SEED_SETUP + SEED_PHASE_1)
    remove_local(db)
    run_cli(cli_env, "-d", DB, "restore", cwd=tmp_path)
    writer(["INSERT INTO test VALUES ('after restore')"])
    remove_local(db)
    run_cli(cli_env, "-d", DB, "restore", cwd=tmp_path)
    assert read_rows(db, "SELECT v FROM test") == EXPECTED_1 + [("after restore",)]
    assert integrity(db) == "ok"


@pytest.mark.parametrize("host", ["sqlite3", "python", "apsw"])
def test_seed_page_size_is_honoured(writer: Writer, host: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The seed sets 64 KiB pages before switching to WAL."""
    writer(SEED_SETUP + SEED_PHASE_1)
    assert read_rows(tmp_path / DB, "PRAGMA page_size")[0][0] == 65536

"""End-to-end fixtures: a real S3 HTTP server (BOTTOMLESS_TEST_ENDPOINT, else
the one BOTTOMLESS_TEST_SERVER names: ``moto``, ``s3rver`` or ``minio``; by
default MinIO through testcontainers when Docker answers, else embedded moto),
a fresh bucket per test, what that server honours, the native core, and
helpers to run the CLI and the shells."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import bottomless
import s3rver
from bottomless import server_features
from bottomless._native import Native, load
from bottomless.config import Config
from bottomless.embedded import DEMO_CREDENTIALS, embedded_s3
from bottomless.errors import UnsupportedServer
from bottomless.lock import is_locked
from bottomless.s3 import S3Store
from bottomless.server_features import ServerFeatures
from bottomless.side_files import SideFolder, folder_of
from bottomless.sqlite_vfs import register_python_sqlite

NATIVE_FUNCTIONS = (
    "bottomless_wal_checksum",
    "bottomless_finish_restore",
    "bottomless_check_frames",
    "bottomless_write_newest",
    "bottomless_write_image",
)


def _minio() -> Iterator[str] | None:
    """MinIO in a container when a Docker engine answers; None otherwise.

    Constructing the container object is what talks to Docker, and it fails
    in a fraction of a second without an engine, so that is where we give up
    (never wait for ``start()``)."""
    if os.environ.get("BOTTOMLESS_TEST_NO_DOCKER"):
        return None
    try:
        import docker.errors

        with warnings.catch_warnings():  # testcontainers.minio: "deprecated, use ...community.minio"
            warnings.simplefilter("ignore", DeprecationWarning)
            from testcontainers.minio import MinioContainer
    except ImportError:
        return None
    try:
        container = MinioContainer()
    except docker.errors.DockerException:
        return None

    def run() -> Iterator[str]:
        with container:
            os.environ["AWS_ACCESS_KEY_ID"] = container.access_key
            os.environ["AWS_SECRET_ACCESS_KEY"] = container.secret_key
            host = container.get_container_host_ip()
            port = container.get_exposed_port(container.port)
            yield f"http://{host}:{port}"

    return run()


SERVERS = ("moto", "s3rver", "minio")


@pytest.fixture(scope="session")
def s3_backend() -> Iterator[tuple[str, str]]:
    """(kind, endpoint) of the S3 server the suite talks to: an external one
    named by BOTTOMLESS_TEST_ENDPOINT (credentials from AWS_* variables), else
    the one BOTTOMLESS_TEST_SERVER names, else MinIO via testcontainers when
    Docker answers, else moto's server on a free loopback port. The endpoint
    and credentials also go into os.environ so that CLI subprocesses see them."""
    configured = os.environ.get("BOTTOMLESS_TEST_ENDPOINT")
    if configured:
        for name, value in DEMO_CREDENTIALS.items():
            os.environ.setdefault(name, value)
        yield "external", configured
        return
    wanted = os.environ.get("BOTTOMLESS_TEST_SERVER", "")
    if wanted and wanted not in SERVERS:
        pytest.exit(f"BOTTOMLESS_TEST_SERVER={wanted!r} is not one of {', '.join(SERVERS)}", returncode=4)
    if wanted == "s3rver":
        os.environ["AWS_ACCESS_KEY_ID"] = s3rver.ACCESS_KEY
        os.environ["AWS_SECRET_ACCESS_KEY"] = s3rver.SECRET_KEY
        with s3rver.running() as endpoint:
            yield "s3rver", endpoint
        return
    minio = _minio() if wanted in ("", "minio") else None
    if minio is not None:
        yield "minio", next(minio)
        for _ in minio:  # runs the container's exit
            pass
        return
    if wanted == "minio":
        pytest.exit("BOTTOMLESS_TEST_SERVER=minio but no Docker engine answers", returncode=4)
    for name, value in DEMO_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    with embedded_s3() as endpoint:
        yield "moto", endpoint


@pytest.fixture(scope="session")
def s3_endpoint(s3_backend: tuple[str, str]) -> str:
    return s3_backend[1]


@pytest.fixture(scope="session")
def server(s3_endpoint: str) -> ServerFeatures:
    """What the suite's server honours, probed once (in a bucket of its own)."""
    probe_store = S3Store(s3_endpoint, f"probe-{uuid.uuid4().hex[:12]}")
    probe_store.ensure_bucket()
    return server_features.probe(probe_store, "suite")


def conditional_writes(server: ServerFeatures) -> bool:
    """Whether the server keeps objects write-once and the lease fenced."""
    return server.honours("conditional_create") and server.honours("conditional_replace")


@pytest.fixture
def bucket_name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(s3_endpoint: str, bucket_name: str) -> S3Store:
    s = S3Store(s3_endpoint, bucket_name)
    s.ensure_bucket()
    return s


@pytest.fixture(scope="session")
def native() -> Native:
    lib = load()
    missing = []
    for name in NATIVE_FUNCTIONS:
        try:
            getattr(lib.lib, name)
        except AttributeError:
            missing.append(name)
    if missing:
        pytest.fail(f"the native library {lib.path} lacks {', '.join(missing)}")
    return lib


# ---- helpers for end-to-end scenarios ------------------------------------------


@pytest.fixture
def cli_env(s3_endpoint: str, bucket_name: str, store: S3Store, server: ServerFeatures) -> dict[str, str]:
    """Environment for CLI and shell subprocesses: this test's bucket, no
    autostart (shells are shipped by an explicit ``sync``), quiet logs. On a
    server that does not honour conditional writes, the setting that accepts
    that risk (without it the replicator refuses to start: ``fencing_env``
    is for the tests that check that)."""
    env = dict(os.environ)
    for name in [n for n in env if n.startswith("LIBSQL_BOTTOMLESS_")]:
        del env[name]
    env.update(
        LIBSQL_BOTTOMLESS_ENDPOINT=s3_endpoint,
        LIBSQL_BOTTOMLESS_BUCKET=bucket_name,
        LIBSQL_BOTTOMLESS_AUTOSTART="0",
        BOTTOMLESS_PYTHON=sys.executable,
        RUST_LOG="",
        BOTTOMLESS_LOG="",
    )
    if not conditional_writes(server):
        env["LIBSQL_BOTTOMLESS_CONDITIONAL_WRITES"] = "off"
    return env


def refused_without_conditional_writes(server: ServerFeatures, env: dict[str, str], tmp_path: Path) -> bool:
    """For tests of what conditional writes guarantee: on a server without
    them, check that a replicator asked for those guarantees (``env`` from
    ``fencing_env``) refuses to start, saying what the server does and which
    setting accepts the risk, and return True (the guarantee itself cannot
    be tested there); False on a server that honours them."""
    if conditional_writes(server):
        return False
    db = tmp_path / "refused.db"
    conn = bottomless.connect(str(db), config=Config.from_env(env), isolation_level=None)
    try:
        conn.execute("CREATE TABLE t(x)")
        conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(UnsupportedServer, match=r"(ignores|refuses).*LIBSQL_BOTTOMLESS_CONDITIONAL_WRITES=off"):
            conn.flush(timeout=60)
    finally:
        conn.close()
    return True


@pytest.fixture
def fencing_env(cli_env: dict[str, str]) -> dict[str, str]:
    """``cli_env`` asking for write-once objects and the lease whatever the
    server honours: tests of fencing use it, and on a server that lacks
    conditional writes assert the refusal to start instead."""
    env = dict(cli_env)
    env.pop("LIBSQL_BOTTOMLESS_CONDITIONAL_WRITES", None)
    return env


def run_cli(
    env: dict[str, str], *args: str, check: bool = True, timeout: float = 120, cwd: str | Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``bottomless-cli ARGS`` in a subprocess (the installed entry point's
    module, with this interpreter)."""
    proc = subprocess.run(
        [sys.executable, "-m", "bottomless_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        pytest.fail(f"bottomless-cli {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_shell(
    shell: str, script: str, env: dict[str, str], cwd: str | Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Feed ``script`` to a sqlite3/libsql shell; fails the test on an error."""
    proc = subprocess.run(
        [shell], input=".bail on\n" + script, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd
    )
    if proc.returncode != 0 or "Error" in proc.stderr:
        pytest.fail(f"{shell} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def remove_local(db: Path) -> None:
    """Delete a database with its WAL, shm, journal and bottomless folder."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(folder_of(db), ignore_errors=True)


def vfs_wal_connection(db: Path, timeout: float = 5.0) -> sqlite3.Connection:
    """An application's connection through the bottomless VFS (Python's
    sqlite3, autocommit, sqlite3's busy ``timeout``), in WAL mode: the
    capture is on."""
    register_python_sqlite()
    conn = sqlite3.connect(f"file:{db}?vfs=bottomless", uri=True, timeout=timeout, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    return conn


def wait_replicator_started(db: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until ``bottomless-cli replicate`` (``proc``) holds the database's
    replicator lock and has its first generation in S3."""
    side = SideFolder.of(str(db))
    deadline = time.monotonic() + timeout
    while not (side.state.exists() and is_locked(str(side.path))):
        assert proc.poll() is None, "the replicator exited before it started"
        assert time.monotonic() < deadline, f"the replicator did not start in {timeout:.0f} s"
        time.sleep(0.05)


def restored_equals(db: Path, env: dict[str, str], tmp_path: Path) -> None:
    """``bottomless-cli restore`` of ``db`` (its S3 copy as it stands) passes
    the integrity check and holds exactly what ``db`` holds."""
    expected = dump(db)
    out = tmp_path / "restored.db"
    run_cli(env, "-d", db.name, "restore", "-o", str(out))
    assert integrity(out) == "ok"
    assert dump(out) == expected


def read_rows(db: Path | str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` read with plain sqlite3 (no VFS), read-only."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def integrity(db: Path | str) -> str:
    return str(read_rows(db, "PRAGMA integrity_check")[0][0])


def dump(db: Path | str) -> list[str]:
    """Logical content of a database (schema and rows, in order)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def generation_objects(store: S3Store, db_name: str) -> dict[str, list[str]]:
    """``{generation folder: [object names]}`` for one database."""
    out: dict[str, list[str]] = {}
    for info in store.list_objects(f"{db_name}-"):
        folder, _, name = info.key.partition("/")
        out.setdefault(folder, []).append(name)
    return out


@pytest.fixture(scope="session")
def libsql_shell() -> str:
    shell = os.environ.get("LIBSQL_SHELL")
    if not shell:
        pytest.skip("LIBSQL_SHELL is not set: point it at a libSQL 0.2 shell binary to run the libSQL scenarios")
    if not os.access(shell, os.X_OK):
        pytest.fail(f"LIBSQL_SHELL={shell} is not an executable file")
    return shell


@pytest.fixture(scope="session")
def sqlite3_shell() -> str:
    shell = shutil.which("sqlite3")
    if shell is None:
        pytest.skip("no sqlite3 CLI on PATH (apt-get install sqlite3)")
    return shell

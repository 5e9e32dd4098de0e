"""Replication and restore through a faulty network (integration/faultproxy.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import bottomless
from bottomless.config import Config
from bottomless.restore import restore
from bottomless.s3 import S3Store
from conftest import integrity, read_rows, remove_local, run_cli
from faultproxy import FaultProxy, Faults

# Depends on how the S3 server behaves: `.ci/s3rver -m s3_server` runs these against s3rver.
pytestmark = pytest.mark.s3_server

DB = "faulty.db"


@pytest.fixture
def proxy(s3_endpoint: str) -> Iterator[FaultProxy]:
    with FaultProxy(s3_endpoint, Faults(seed=1234)) as p:
        yield p


def proxied_env(cli_env: dict[str, str], proxy: FaultProxy) -> dict[str, str]:
    return {**cli_env, "LIBSQL_BOTTOMLESS_ENDPOINT": proxy.endpoint}


def test_proxy_faults_are_visible(proxy: FaultProxy, bucket_name: str, store: S3Store) -> None:
    """The proxy itself: errors and drops reach the client (with retries off)."""
    from bottomless.s3 import RetryPolicy

    direct = store
    direct.put("k", b"x" * 1000)
    proxy.faults.error_rate = 1.0
    flaky = S3Store(proxy.endpoint, bucket_name, retry=RetryPolicy(attempts=1))
    with pytest.raises(Exception, match="SlowDown|503"):
        flaky.get("k")
    proxy.faults.error_rate, proxy.faults.drop_rate = 0.0, 1.0
    with pytest.raises(Exception):  # noqa: B017 (botocore's incomplete-read error, whatever its class)
        flaky.get("k")
    proxy.faults.drop_rate = 0.0
    assert flaky.get("k") == b"x" * 1000


def test_replicate_through_ten_percent_faults(
    proxy: FaultProxy, tmp_path: Path, cli_env: dict[str, str], store: S3Store
) -> None:
    proxy.faults.error_rate, proxy.faults.slow_rate, proxy.faults.drop_rate = 0.04, 0.03, 0.03
    proxy.faults.slow_secs = 0.2
    env = proxied_env(cli_env, proxy)
    db = tmp_path / DB
    config = Config.from_env(env).with_overrides(batch_max_frames=3)
    conn = bottomless.connect(str(db), config=config, isolation_level=None)
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT)")
    for round_ in range(10):
        for i in range(40):
            conn.execute("INSERT INTO t(body) VALUES (?)", (f"round {round_} row {i} " + "x" * (i * 37),))
        if round_ % 2:
            conn.execute("DELETE FROM t WHERE id % 7 = ?", (round_,))
        conn.flush(timeout=120)
    conn.close()
    expected = read_rows(db, "SELECT * FROM t ORDER BY id")
    faults = {k: v for k, v in proxy.counts.items() if k != "ok"}
    assert sum(faults.values()) > 0, f"no fault was injected: {dict(proxy.counts)}"
    print(f"fault proxy: {dict(proxy.counts)}")

    out = tmp_path / "restored.db"
    run_cli(cli_env, "-d", DB, "restore", "-o", str(out))
    assert read_rows(out, "SELECT * FROM t ORDER BY id") == expected
    assert integrity(out) == "ok"

    # And directly, with the library.
    direct = tmp_path / "direct.db"
    result = restore(store, DB, str(direct))
    assert result.integrity == "ok"
    assert read_rows(direct, "SELECT * FROM t ORDER BY id") == expected


def test_restore_through_dropped_downloads(
    proxy: FaultProxy, tmp_path: Path, cli_env: dict[str, str], store: S3Store
) -> None:
    db = tmp_path / DB
    conn = bottomless.connect(str(db), config=Config.from_env(cli_env), isolation_level=None)
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT)")
    for i in range(20):
        conn.execute("INSERT INTO t(body) VALUES (?)", (f"row {i}",))
        if i % 5 == 4:
            conn.flush()
    conn.close()
    expected = read_rows(db, "SELECT * FROM t ORDER BY id")

    proxy.faults.drop_first_gets = True  # every object's first download is cut in half
    out = tmp_path / "restored.db"
    result = run_cli(proxied_env(cli_env, proxy), "-d", DB, "restore", "-o", str(out), check=False)
    assert proxy.counts["drop"] > 0
    assert result.returncode == 0, result.stderr
    assert read_rows(out, "SELECT * FROM t ORDER BY id") == expected


def test_outage_then_heal(proxy: FaultProxy, tmp_path: Path, cli_env: dict[str, str], store: S3Store) -> None:
    env = proxied_env(cli_env, proxy)
    db = tmp_path / DB
    conn = bottomless.connect(str(db), config=Config.from_env(env), isolation_level=None)
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT)")
    conn.flush()

    proxy.faults.outage = True
    started = time.monotonic()
    for i in range(200):
        conn.execute("INSERT INTO t(body) VALUES (?)", (f"during outage {i}",))
    assert time.monotonic() - started < 10, "commits stalled while S3 was unreachable"
    with pytest.raises(TimeoutError):
        conn.flush(timeout=2)
    assert proxy.counts["refused"] > 0
    for i in range(50):
        conn.execute("INSERT INTO t(body) VALUES (?)", (f"still out {i}",))

    proxy.faults.outage = False
    conn.flush(timeout=120)
    conn.close()
    expected = read_rows(db, "SELECT * FROM t ORDER BY id")
    assert len(expected) == 250

    remove_local(db)
    run_cli(cli_env, "-d", DB, "restore", "-o", str(db))
    assert read_rows(db, "SELECT * FROM t ORDER BY id") == expected
    assert integrity(db) == "ok"


def test_cli_reports_unreachable_endpoint(proxy: FaultProxy, tmp_path: Path, cli_env: dict[str, str]) -> None:
    proxy.faults.outage = True
    env = proxied_env(cli_env, proxy)
    started = time.monotonic()
    result = run_cli(env, "-d", DB, "restore", "-o", str(tmp_path / "x.db"), check=False, timeout=120)
    assert result.returncode != 0
    assert "cannot reach S3 endpoint" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 60

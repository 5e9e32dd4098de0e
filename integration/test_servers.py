"""S3-compatible servers that lack a feature, played by the fault proxy in
front of the suite's server: the replicator knows what the server does
(probed once, remembered beside the spool), refuses to start where a
guarantee it needs is missing, says so in one line with the setting that
accepts the risk, and never falls back silently. Errors are typed where
they are read; deletes work without multi-object delete."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import bottomless
from bottomless import catalog, server_features
from bottomless.config import Config
from bottomless.errors import RestoreError, S3Error, UnsupportedServer
from bottomless.replicator import Replicator
from bottomless.restore_fetch import get_part
from bottomless.s3 import RetryPolicy, S3Store
from bottomless.server_features import HONOURED, IGNORED, ServerFeatures, probe
from bottomless.side_files import SideFolder
from conftest import integrity, read_rows, refused_without_conditional_writes, run_cli
from faultproxy import FaultProxy, Faults

# Depends on how the S3 server behaves: `.ci/s3rver -m s3_server` runs these against s3rver.
pytestmark = pytest.mark.s3_server

DB = "app.db"


@pytest.fixture
def proxy(s3_endpoint: str) -> Iterator[FaultProxy]:
    with FaultProxy(s3_endpoint, Faults()) as p:
        yield p


def through(env: dict[str, str], proxy: FaultProxy, **settings: str) -> dict[str, str]:
    out = {**env, "LIBSQL_BOTTOMLESS_ENDPOINT": proxy.endpoint}
    out.update({f"LIBSQL_BOTTOMLESS_{k.upper()}": v for k, v in settings.items()})
    return out


def write_rows(db: Path, env: dict[str, str], rows: int = 20) -> bottomless.Connection:
    conn = bottomless.connect(str(db), config=Config.from_env(env), isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, body TEXT)")
    for i in range(rows):
        conn.execute("INSERT INTO t(body) VALUES (?)", (f"row {i}",))
    return conn


def refusal(db: Path, env: dict[str, str]) -> UnsupportedServer:
    """Start replicating ``db``: the start must be refused, flush() must say why."""
    conn = write_rows(db, env, rows=3)
    try:
        with pytest.raises(UnsupportedServer) as info:
            conn.flush(timeout=60)
        assert conn.replicator.error is info.value
    finally:
        conn.close()
    assert "\n" not in str(info.value)
    assert not info.value.transient
    return info.value


# ---- conditional writes ---------------------------------------------------------------


def test_server_ignoring_conditional_headers_is_refused(
    proxy: FaultProxy, tmp_path: Path, fencing_env: dict[str, str], store: S3Store
) -> None:
    proxy.faults.conditional = "ignore"
    error = refusal(tmp_path / DB, through(fencing_env, proxy))
    assert f"S3 at {proxy.endpoint}" in str(error)
    assert "ignores If-None-Match" in str(error) and "LIBSQL_BOTTOMLESS_CONDITIONAL_WRITES=off" in str(error)
    assert catalog.list_generations(store, DB) == []  # nothing shipped
    assert [o.key for o in store.list_objects("")] == []  # the probe cleaned up after itself

    # The CLI says the same in one line.
    proc = run_cli(through(fencing_env, proxy), "-d", str(tmp_path / DB), "sync", check=False)
    assert proc.returncode != 0
    assert "ignores If-None-Match" in proc.stderr and "Traceback" not in proc.stderr


def test_conditional_writes_off_replicates_and_sends_no_condition(
    proxy: FaultProxy, tmp_path: Path, fencing_env: dict[str, str], store: S3Store, caplog: pytest.LogCaptureFixture
) -> None:
    proxy.faults.conditional = "ignore"
    env = through(fencing_env, proxy, conditional_writes="off")
    db = tmp_path / DB
    conn = write_rows(db, env)
    conn.flush(timeout=60)
    assert conn.replicator.lease is None
    conn.close()
    assert proxy.counts["conditional-ignored"] == 0  # not one If-None-Match/If-Match went out
    assert any("CONDITIONAL_WRITES=off" in r.message for r in caplog.records)
    out = tmp_path / "out.db"
    run_cli(fencing_env, "-d", DB, "restore", "-o", str(out))
    assert read_rows(out, "SELECT count(*) FROM t") == [(20,)]
    assert integrity(out) == "ok"


@pytest.mark.parametrize(("mode", "code"), [("501", "NotImplemented"), ("400", "InvalidRequest")])
def test_server_refusing_conditional_puts_stops_at_once(
    proxy: FaultProxy, tmp_path: Path, fencing_env: dict[str, str], mode: str, code: str
) -> None:
    proxy.faults.conditional = mode
    error = refusal(tmp_path / DB, through(fencing_env, proxy))
    assert f"refuses ({code}) conditional PUTs with If-None-Match" in str(error)
    assert "LIBSQL_BOTTOMLESS_CONDITIONAL_WRITES=off" in str(error)
    # If-None-Match and If-Match were each asked once, not retried forever.
    assert proxy.counts[f"refused-{mode}"] == 2


def test_if_match_not_implemented_needs_only_the_lease_off(
    proxy: FaultProxy, tmp_path: Path, fencing_env: dict[str, str], server: ServerFeatures
) -> None:
    """AWS itself before late 2024: If-None-Match yes, If-Match 501."""
    if refused_without_conditional_writes(server, fencing_env, tmp_path):
        return
    proxy.faults.conditional, proxy.faults.conditional_headers = "501", ("if-match",)
    error = refusal(tmp_path / DB, through(fencing_env, proxy))
    assert "PUTs with If-Match" in str(error) and "LIBSQL_BOTTOMLESS_LEASE_SECS=0" in str(error)

    refused = proxy.counts["refused-501"]
    env = through(fencing_env, proxy, lease_secs="0")
    conn = write_rows(tmp_path / DB, env)
    conn.flush(timeout=60)
    conn.close()
    assert proxy.counts["refused-501"] == refused  # no If-Match sent without the lease
    out = tmp_path / "out.db"
    run_cli(fencing_env, "-d", DB, "restore", "-o", str(out))
    assert read_rows(out, "SELECT count(*) FROM t") == [(23,)]


def test_reading_needs_no_feature(
    proxy: FaultProxy, tmp_path: Path, cli_env: dict[str, str], store: S3Store
) -> None:
    """ls, restore and verify work on a server that refuses every optional
    feature, and never probe it."""
    conn = write_rows(tmp_path / DB, cli_env)
    conn.flush(timeout=60)
    conn.close()
    proxy.faults.conditional, proxy.faults.multi_delete = "501", "501"
    env = through(cli_env, proxy)
    generations = catalog.list_generations(store, DB)
    assert run_cli(env, "-d", DB, "ls").stdout.split() == [str(g) for g in generations]
    run_cli(env, "-d", DB, "verify")
    out = tmp_path / "out.db"
    run_cli(env, "-d", DB, "restore", "-o", str(out))
    assert read_rows(out, "SELECT count(*) FROM t") == [(20,)]
    assert not [kind for kind in proxy.counts if kind.startswith("refused")]


def test_features_are_probed_once_and_remembered(
    proxy: FaultProxy, tmp_path: Path, cli_env: dict[str, str], store: S3Store
) -> None:
    env = through(cli_env, proxy)
    db = tmp_path / DB
    write_rows(db, env).close()
    remembered = json.loads(SideFolder.of(str(db)).server_features.read_text())
    assert remembered["endpoint"] == proxy.endpoint and remembered["bucket"] == store.bucket

    rep = Replicator(str(db), Config.from_env(env))
    sent: list[str] = []
    rep.store.client.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.url))
    assert rep.lock.acquire(timeout=5)
    try:
        rep.prepare()
    finally:
        rep.lock.release()
        rep.spool.close()
    assert sent and not [url for url in sent if ".probe-" in url]


def test_databases_starting_at_once_on_one_store_probe_the_server_once(
    s3_endpoint: str, tmp_path: Path, cli_env: dict[str, str], store: S3Store
) -> None:
    # As a fleet starts them: several threads, one store, nothing remembered yet.
    shared = S3Store(s3_endpoint, store.bucket)
    probes: list[str] = []
    shared.client.meta.events.register(
        "before-send.s3", lambda request, **_: probes.append(request.url) if ".probe-" in request.url else None
    )
    dbs = [tmp_path / f"t{i}.db" for i in range(8)]
    for db in dbs:
        sqlite3.connect(db).close()
    start = threading.Barrier(len(dbs))

    def check(db: Path) -> str:
        folder = SideFolder.of(str(db))
        folder.ensure()
        start.wait()
        try:
            features = server_features.check(shared, folder.path, db.name, conditional_writes=True, lease=True)
        except UnsupportedServer as exc:  # s3rver ignores If-None-Match: every database must hear so
            return f"refused: {exc}"
        return features.conditional_create

    with ThreadPoolExecutor(len(dbs)) as pool:
        answers = list(pool.map(check, dbs))
    assert len(set(answers)) == 1, answers  # every database took the same answer
    assert answers[0] == HONOURED or answers[0].startswith("refused: "), answers
    one_probe = {url.rsplit("/", 1)[1].split("?")[0] for url in probes}
    assert len(one_probe) == 1, probes  # one probe object: the others took its answer


# ---- typed errors -------------------------------------------------------------------


def test_permanent_error_names_operation_code_and_remedy(proxy: FaultProxy, store: S3Store) -> None:
    proxy.faults.conditional = "501"
    direct = S3Store(proxy.endpoint, store.bucket, retry=RetryPolicy(attempts=5, base_delay=0.01))
    with pytest.raises(S3Error) as info:
        direct.put("k", b"v", if_none_match=True)
    error = info.value
    assert not error.transient and error.operation == "PutObject" and error.code == "NotImplemented"
    assert "PutObject" in str(error) and "NotImplemented" in str(error) and "SECURITY.md" in str(error)
    assert direct.stats.snapshot()["PUT"] == 1  # not retried


def test_throttling_is_transient_and_retried(proxy: FaultProxy, store: S3Store) -> None:
    proxy.faults.error_rate = 1.0
    direct = S3Store(proxy.endpoint, store.bucket, retry=RetryPolicy(attempts=3, base_delay=0.01))
    with pytest.raises(S3Error) as info:
        direct.get("k")
    assert info.value.transient and info.value.code == "SlowDown"
    assert direct.stats.snapshot()["GET"] == 3


def test_invalid_bucket_name_is_a_clear_error(s3_endpoint: str, cli_env: dict[str, str]) -> None:
    with pytest.raises(S3Error, match="bucket name 'Not a bucket!'.*LIBSQL_BOTTOMLESS_BUCKET") as info:
        S3Store(s3_endpoint, "Not a bucket!").check_bucket()
    assert not info.value.transient
    proc = run_cli(cli_env, "-b", "Not a bucket!", "ls", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "bucket name" in proc.stderr


# ---- deletes ------------------------------------------------------------------------


def test_deletes_fall_back_to_one_request_per_key(
    proxy: FaultProxy, tmp_path: Path, cli_env: dict[str, str], store: S3Store
) -> None:
    proxy.faults.multi_delete = "501"
    direct = S3Store(proxy.endpoint, store.bucket)
    for i in range(3):
        store.put(f"x/{i}", b"v")
    assert direct.delete_many([f"x/{i}" for i in range(3)]) == 3
    assert [o.key for o in store.list_objects("x/")] == []
    assert proxy.counts["refused-501"] == 1
    direct.put("x/again", b"v")
    direct.delete_many(["x/again"])
    assert proxy.counts["refused-501"] == 1  # remembered: asked once per store

    # rm through the CLI, on a server without multi-object delete.
    db = tmp_path / DB
    conn = write_rows(db, cli_env)
    conn.flush(timeout=60)
    conn.close()
    [generation] = catalog.list_generations(store, DB)
    run_cli(through(cli_env, proxy), "-d", DB, "rm", "-g", str(generation))
    assert catalog.list_generations(store, DB) == []
    assert [o.key for o in store.list_objects(f"{DB}-")] == []


def test_delete_objects_carries_content_md5(proxy: FaultProxy, store: S3Store) -> None:
    proxy.faults.multi_delete = "md5"
    direct = S3Store(proxy.endpoint, store.bucket)
    store.put("y/1", b"v")
    assert direct.delete_many(["y/1"]) == 1
    assert proxy.counts["refused-md5"] == 0 and direct.multi_delete
    assert store.head("y/1") is None


# ---- ranged GET -----------------------------------------------------------------------


def test_server_ignoring_range_is_detected(proxy: FaultProxy, store: S3Store) -> None:
    """The restore's two ways of reading a big object: a ranged part is
    exactly its bytes, and a server that answers it with the whole body is
    named, not trusted; one streaming GET returns the whole body."""
    body = os.urandom(1024 * 1024)
    store.put("big", body)
    direct = S3Store(proxy.endpoint, store.bucket)
    assert get_part(direct, "big", 4096, 8191) == body[4096:8192]
    assert b"".join(direct.stream("big", 64 * 1024)) == body
    assert probe(direct, "probe.db").ranged_get == HONOURED

    proxy.faults.ranged_get = "ignore"
    assert probe(direct, "probe.db").ranged_get == IGNORED
    with pytest.raises(RestoreError, match="ignores Range"):
        get_part(direct, "big", 4096, 8191)

"""Safe by default, against a real S3 server: one writer per database
(conditional writes and a lease), client-side encryption, no secret in any
log line, names from the bucket never escape into local paths."""

from __future__ import annotations

import base64
import logging
import sqlite3
import struct
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import zstandard

import bottomless
from bottomless import catalog, layout
from bottomless.config import Config
from bottomless.crypto import MAGIC, METADATA_KEY, Cipher
from bottomless.errors import RestoreError
from bottomless.lease import FencedError, Lease, LeaseInfo
from bottomless.replicator import Replicator
from bottomless.restore import restore
from bottomless.restore_marker import mark_restored
from bottomless.s3 import PreconditionFailed, RetryPolicy, S3Store
from bottomless.server_features import ServerFeatures
from conftest import read_rows, refused_without_conditional_writes, run_cli, vfs_wal_connection
from faultproxy import FaultProxy

# Depends on how the S3 server behaves: `.ci/s3rver -m s3_server` runs these against s3rver.
pytestmark = pytest.mark.s3_server

DB = "app.db"
KEY = base64.b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.b64encode(bytes(range(1, 33))).decode()


def config_for(cli_env: dict[str, str], **overrides: Any) -> Config:
    return Config.from_env(cli_env).with_overrides(**overrides)


def connect(db: Path, config: Config) -> bottomless.Connection:
    return bottomless.connect(str(db), config=config, isolation_level=None)


def insert(conn: sqlite3.Connection, tag: str, n: int) -> None:
    for i in range(n):
        conn.execute("INSERT INTO t(tag, body) VALUES (?, ?)", (tag, f"{tag}-{i}-" + "x" * 200))


def new_db(path: Path, config: Config, rows: int = 10) -> bottomless.Connection:
    conn = connect(path, config)
    conn.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, tag TEXT, body TEXT)")
    insert(conn, "a", rows)
    conn.flush()
    return conn


def wait_for(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


# ---- 1. single writer -------------------------------------------------------------


def test_restored_copy_started_beside_the_original_is_fenced(
    tmp_path: Path,
    fencing_env: dict[str, str],
    server: ServerFeatures,
    store: S3Store,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if refused_without_conditional_writes(server, fencing_env, tmp_path):
        return
    config = config_for(fencing_env)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = new_db(tmp_path / "a" / DB, config)
    generations_before = catalog.list_generations(store, DB)

    # A copy restored elsewhere and opened for writing while the original runs.
    copy = tmp_path / "b" / DB
    result = restore(store, DB, str(copy))
    mark_restored(str(copy), str(result.generation))
    keys_before = sorted(o.key for o in store.list_objects(""))
    second = connect(copy, config)
    second.execute("INSERT INTO t(tag, body) VALUES ('b', 'from the copy')")
    wait_for(lambda: second.replicator.error is not None)
    error = second.replicator.error
    assert isinstance(error, FencedError)
    assert "another writer" in str(error) and str(tmp_path / "a" / DB) in str(error)
    assert any("replication of" in r.message and "stopped" in r.message for r in caplog.records)
    # It left nothing in the bucket (its server probe's scratch object is gone too).
    assert sorted(o.key for o in store.list_objects("")) == keys_before
    with pytest.raises(FencedError):
        second.flush(timeout=5)
    second.close()

    # The first writer never noticed and keeps every commit.
    insert(first, "a2", 20)
    first.flush()
    first.close()
    assert catalog.list_generations(store, DB) == generations_before
    out = tmp_path / "check.db"
    restore(store, DB, str(out))
    assert read_rows(out, "SELECT tag, count(*) FROM t GROUP BY tag ORDER BY tag") == [("a", 10), ("a2", 20)]


def test_clean_stop_releases_the_lease_for_the_next_writer(
    tmp_path: Path, fencing_env: dict[str, str], server: ServerFeatures, store: S3Store
) -> None:
    if refused_without_conditional_writes(server, fencing_env, tmp_path):
        return
    config = config_for(fencing_env)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    new_db(tmp_path / "a" / DB, config).close()
    held = store.get(layout.lease_key(DB))
    info = LeaseInfo.parse(held)
    assert info is not None and info.expires_at == 0  # released on close

    copy = tmp_path / "b" / DB
    result = restore(store, DB, str(copy))
    mark_restored(str(copy), str(result.generation))
    second = connect(copy, config)
    insert(second, "b", 5)
    second.flush()
    assert second.replicator.error is None
    second.close()


def test_takeover_after_expiry_fences_the_stalled_writer(
    tmp_path: Path, fencing_env: dict[str, str], server: ServerFeatures, store: S3Store
) -> None:
    if refused_without_conditional_writes(server, fencing_env, tmp_path):
        return
    config = config_for(fencing_env, lease_secs=1.5)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    db = tmp_path / "a" / DB
    conn = vfs_wal_connection(db)
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, tag TEXT, body TEXT)")
    stalled = Replicator(str(db), config)
    assert stalled.lock.acquire(timeout=1)
    stalled.ship()  # a writer that then stalls (no thread renews its lease)
    time.sleep(2.0)

    copy = tmp_path / "b" / DB
    result = restore(store, DB, str(copy))
    mark_restored(str(copy), str(result.generation))
    taker = Replicator(str(copy), config)
    assert taker.lock.acquire(timeout=1)
    taker.ship()
    assert taker.state is not None and taker.state.generation != str(result.generation)

    insert(conn, "late", 3)
    keys_before = {o.key for o in store.list_objects("")}
    with pytest.raises(FencedError, match="lost the lease"):
        stalled.ship()
    assert {o.key for o in store.list_objects("")} - keys_before == set()  # nothing interleaved
    for rep in (stalled, taker):
        rep.lock.release()
        rep.spool.close()
    conn.close()


def test_write_once_objects_refuse_other_content(
    store: S3Store, server: ServerFeatures, fencing_env: dict[str, str], tmp_path: Path
) -> None:
    if refused_without_conditional_writes(server, fencing_env, tmp_path):
        return
    key = "db-x/000000000001-000000000001-1.zstd"
    store.put(key, b"one", if_none_match=True)
    store.put(key, b"one", if_none_match=True)  # the same bytes again: a retry, fine
    with pytest.raises(PreconditionFailed, match="another writer"):
        store.put(key, b"two", if_none_match=True)
    assert store.get(key) == b"one"


def test_retried_conditional_put_after_a_lost_answer_succeeds(
    s3_endpoint: str, store: S3Store, server: ServerFeatures, fencing_env: dict[str, str], tmp_path: Path
) -> None:
    """A conditional PUT that took effect but whose answer the network lost
    is retried, meets its own object, and counts as written."""
    if refused_without_conditional_writes(server, fencing_env, tmp_path):
        return
    with FaultProxy(s3_endpoint) as proxy:
        flaky = S3Store(proxy.endpoint, store.bucket, retry=RetryPolicy(attempts=3, base_delay=0.01))
        proxy.faults.lose_answers = 1
        flaky.put("db-y/000000000001-000000000002-1.zstd", b"batch", if_none_match=True)
        assert proxy.counts["drop"] == 1 and proxy.faults.lose_answers == 0
        assert store.get("db-y/000000000001-000000000002-1.zstd") == b"batch"

        lease = Lease(flaky, "leased.db", "/somewhere/leased.db", ttl=60)
        lease.acquire()
        proxy.faults.lose_answers = 1
        lease.renew()  # the renewal lands, its answer is lost, the retry gets 412: still ours
        assert proxy.counts["drop"] == 2 and lease.held
    stored = LeaseInfo.parse(store.get(layout.lease_key("leased.db")))
    assert stored is not None and stored.owner == lease.owner


def test_idle_holder_makes_no_request_and_keeps_its_lease(
    tmp_path: Path, fencing_env: dict[str, str], server: ServerFeatures, store: S3Store
) -> None:
    """An idle database costs nothing, even past its lease's expiry; the next
    commit renews the lease (nobody took it) and ships."""
    if refused_without_conditional_writes(server, fencing_env, tmp_path):
        return
    conn = new_db(tmp_path / DB, config_for(fencing_env, lease_secs=1.0))
    before = conn.replicator.store.stats.snapshot()
    time.sleep(2.5)
    assert conn.replicator.store.stats.snapshot() == before  # idle: no request at all
    first = LeaseInfo.parse(store.get(layout.lease_key(DB)))
    insert(conn, "after idle", 5)
    conn.flush()
    second = LeaseInfo.parse(store.get(layout.lease_key(DB)))
    assert first is not None and second is not None and second.expires_at > first.expires_at
    assert second.owner == first.owner
    conn.close()


# ---- 2. encryption ----------------------------------------------------------------


def test_encrypted_generation_round_trip_and_clear_failures(
    tmp_path: Path, cli_env: dict[str, str], store: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_for(cli_env, encryption_key=KEY)
    conn = new_db(tmp_path / DB, config, rows=50)
    insert(conn, "b", 30)
    conn.flush()
    conn.close()

    gen = catalog.load_generation(store, DB, catalog.list_generations(store, DB)[0])
    assert gen.snapshot is not None and gen.batches
    for key in [gen.snapshot.key] + [b.key for b in gen.batches]:
        response = store.client.get_object(Bucket=store.bucket, Key=key)
        assert response["Body"].read().startswith(MAGIC)
        assert response["Metadata"].get(METADATA_KEY) == "aes-256-gcm"

    good = tmp_path / "good.db"
    restore(store, DB, str(good), cipher=Cipher.from_settings(KEY, None))
    assert read_rows(good, "SELECT tag, count(*) FROM t GROUP BY tag ORDER BY tag") == [("a", 50), ("b", 30)]

    with pytest.raises(RestoreError, match=f"object '{gen.snapshot.key}' is encrypted.*ENCRYPTION_KEY"):
        restore(store, DB, str(tmp_path / "nokey.db"), cipher=None)
    with pytest.raises(RestoreError, match=f"cannot decrypt object '{gen.snapshot.key}': wrong encryption key"):
        restore(store, DB, str(tmp_path / "wrong.db"), cipher=Cipher.from_settings(OTHER_KEY, None))
    assert not (tmp_path / "nokey.db").exists() and not (tmp_path / "wrong.db").exists()

    # The key comes from the environment by default.
    monkeypatch.setenv("LIBSQL_BOTTOMLESS_ENCRYPTION_KEY", KEY)
    restore(store, DB, str(tmp_path / "env.db"))

    # An object moved to another key does not decrypt.
    if len(gen.batches) >= 1:
        victim = gen.batches[-1]
        store.put(victim.key + ".bak", store.get(victim.key))
        moved_key = layout.batch_key(DB, gen.generation, 10**6, 10**6 + victim.last - victim.first, 1, "zstd")
        store.put(moved_key, store.get(victim.key))
        cipher = Cipher.from_settings(KEY, None)
        assert cipher is not None
        with pytest.raises(Exception, match="cannot decrypt"):
            cipher.decrypt(store.get(moved_key), moved_key)


def test_cli_restore_with_key_file_and_without(tmp_path: Path, cli_env: dict[str, str], store: S3Store) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    conn = new_db(tmp_path / DB, config_for(cli_env, encryption_key_file=str(key_file)))
    conn.close()

    env = dict(cli_env, LIBSQL_BOTTOMLESS_ENCRYPTION_KEY_FILE=str(key_file))
    run_cli(env, "-d", DB, "restore", "-o", str(tmp_path / "ok.db"))
    assert read_rows(tmp_path / "ok.db", "SELECT count(*) FROM t") == [(10,)]

    failed = run_cli(cli_env, "-d", DB, "restore", "-o", str(tmp_path / "no.db"), check=False)
    assert failed.returncode == 1
    assert "is encrypted" in failed.stderr and "LIBSQL_BOTTOMLESS_ENCRYPTION_KEY" in failed.stderr
    assert "Traceback" not in failed.stderr

    wrong = dict(cli_env, LIBSQL_BOTTOMLESS_ENCRYPTION_KEY=OTHER_KEY)
    failed = run_cli(wrong, "-d", DB, "restore", "-o", str(tmp_path / "no.db"), check=False)
    assert failed.returncode == 1 and "wrong encryption key" in failed.stderr
    assert not (tmp_path / "no.db").exists()


def test_ls_verbose_reads_encrypted_generations(tmp_path: Path, cli_env: dict[str, str], store: S3Store) -> None:
    """``ls -v`` decrypts the last batch with the key from the environment to
    show its frame checksum, and says what is missing without one."""
    conn = new_db(tmp_path / DB, config_for(cli_env, encryption_key=KEY))
    insert(conn, "b", 5)
    conn.flush()
    conn.close()
    gen = catalog.load_generation(store, DB, catalog.list_generations(store, DB)[0])
    last = gen.batches[-1]
    frames = zstandard.ZstdDecompressor().decompress(
        Cipher(base64.b64decode(KEY)).decrypt(store.get(last.key), last.key)
    )
    page_size = len(frames) // (last.last - last.first + 1) - 24
    c1, c2 = struct.unpack_from(">2I", frames, len(frames) - page_size - 8)
    listing = run_cli(dict(cli_env, LIBSQL_BOTTOMLESS_ENCRYPTION_KEY=KEY), "-d", DB, "ls", "-v", "-l", "1").stdout
    assert f"WAL frame checksum:   {(c1 << 32) | c2:x}\n" in listing, listing
    without = run_cli(cli_env, "-d", DB, "ls", "-v", "-l", "1")
    assert "unknown (encrypted: set LIBSQL_BOTTOMLESS_ENCRYPTION_KEY to read it)" in without.stdout, without.stdout
    assert "Traceback" not in without.stderr


def test_unencrypted_bucket_stays_readable_with_a_key(tmp_path: Path, cli_env: dict[str, str], store: S3Store) -> None:
    new_db(tmp_path / DB, config_for(cli_env)).close()
    out = tmp_path / "out.db"
    restore(store, DB, str(out), cipher=Cipher.from_settings(KEY, None))
    assert read_rows(out, "SELECT count(*) FROM t") == [(10,)]


def test_turning_encryption_on_starts_a_new_generation(tmp_path: Path, cli_env: dict[str, str], store: S3Store) -> None:
    db = tmp_path / DB
    new_db(db, config_for(cli_env)).close()
    plain = catalog.list_generations(store, DB)
    conn = connect(db, config_for(cli_env, encryption_key=KEY))
    insert(conn, "enc", 5)
    conn.flush()
    conn.close()
    generations = catalog.list_generations(store, DB)
    assert len(generations) == len(plain) + 1
    newest = catalog.load_generation(store, DB, generations[0])
    assert newest.snapshot is not None and store.get(newest.snapshot.key).startswith(MAGIC)
    for batch in catalog.load_generation(store, DB, plain[0]).batches:
        assert not store.get(batch.key).startswith(MAGIC)
    out = tmp_path / "out.db"
    restore(store, DB, str(out), cipher=Cipher.from_settings(KEY, None))
    assert read_rows(out, "SELECT count(*) FROM t") == [(15,)]


def test_mixed_plain_batch_in_encrypted_generation_is_refused(
    tmp_path: Path, cli_env: dict[str, str], store: S3Store
) -> None:
    conn = new_db(tmp_path / DB, config_for(cli_env, encryption_key=KEY))
    insert(conn, "b", 5)
    conn.flush()
    conn.close()
    gen = catalog.load_generation(store, DB, catalog.list_generations(store, DB)[0])
    cipher = Cipher.from_settings(KEY, None)
    assert cipher is not None
    batch = gen.batches[0]
    plain = cipher.decrypt(store.get(batch.key), batch.key)
    store.put(batch.key, plain)  # substituted by someone without the key
    with pytest.raises(RestoreError, match=f"object '{batch.key}' is not encrypted"):
        restore(store, DB, str(tmp_path / "out.db"), cipher=cipher)


# ---- 3. secrets and names -----------------------------------------------------------


def test_no_secret_in_any_log_line(
    tmp_path: Path,
    cli_env: dict[str, str],
    store: S3Store,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A secret unlike anything else in the run (the demo one equals the access key id).
    secret = "s3cr3t-" + uuid.uuid4().hex
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    cli_env = dict(cli_env, AWS_SECRET_ACCESS_KEY=secret)
    secrets = [secret, KEY, bytes(range(32)).hex()]
    caplog.set_level(logging.DEBUG)
    for name in ("bottomless", "botocore", "boto3", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)  # earlier CLI runs may have raised them
    config = config_for(cli_env, encryption_key=KEY)
    assert KEY not in repr(config) and KEY not in str(config)
    conn = new_db(tmp_path / DB, config, rows=30)
    insert(conn, "b", 10)
    conn.flush()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    restore(store, DB, str(tmp_path / "in-process.db"), cipher=Cipher.from_settings(KEY, None))
    with pytest.raises(RestoreError):
        restore(store, DB, str(tmp_path / "wrong.db"), cipher=Cipher.from_settings(OTHER_KEY, None))
    lines = [r.getMessage() for r in caplog.records] + [caplog.text]
    assert any("batch" in line for line in lines)  # the capture did see the run

    env = dict(cli_env, LIBSQL_BOTTOMLESS_ENCRYPTION_KEY=KEY, BOTTOMLESS_LOG="trace")
    outputs = []
    for args, succeeds in (
        (("ls", "-v"), True),
        (("ls", "--json", "-v"), True),
        (("restore", "-o", str(tmp_path / "cli.db")), True),
        (("verify",), True),
        (("-e", "http://127.0.0.1:1", "ls"), False),
    ):
        proc = run_cli(env, "-d", DB, *args, check=False)
        assert (proc.returncode == 0) == succeeds, f"{args}: exit {proc.returncode}\n{proc.stderr}"
        outputs += [proc.stdout, proc.stderr]
    bad_key = dict(env, LIBSQL_BOTTOMLESS_ENCRYPTION_KEY=KEY[:-4] + "!!!!")
    proc = run_cli(bad_key, "-d", DB, "ls", check=False)
    assert proc.returncode != 0 and "ENCRYPTION_KEY" in proc.stderr
    outputs += [proc.stdout, proc.stderr]
    assert any("DEBUG" in text for text in outputs)  # trace logging was on
    for text in lines + outputs:
        for value in secrets + [KEY[:-4]]:
            assert value not in text


def test_names_from_the_bucket_never_become_paths(tmp_path: Path, cli_env: dict[str, str], store: S3Store) -> None:
    gen = uuid.UUID("01234567-89ab-7def-8123-456789abcdef")
    for name in ("..", ".", "~root"):
        store.put(f"{name}-{gen}/db.raw", b"SQLite format 3\0")
    assert catalog.list_databases(store) == []
    work = tmp_path / "work"
    work.mkdir()
    proc = run_cli(cli_env, "restore", check=False, cwd=work)
    assert proc.returncode == 1 and "no database backups" in proc.stderr
    assert list(work.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    for name in ("..", "a\\b", "."):  # not a name, and not a path either
        proc = run_cli(cli_env, "-d", name, "restore", check=False, cwd=work)
        assert proc.returncode != 0 and "'-d' / '--database'" in proc.stderr, proc.stderr
    for name in ("../x", "/abs", "a/b"):  # a path: its file name, which the bucket does not hold
        proc = run_cli(cli_env, "-d", name, "restore", check=False, cwd=work)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
        assert "no generation of database" in proc.stderr or "does not exist" in proc.stderr, proc.stderr
    assert list(work.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["work"]

"""bottomless-cli end to end (click's runner, and one real subprocess)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from backup_writer import GenerationWriter, SourceDb
from bottomless import layout
from bottomless._native import Native
from bottomless.catalog import list_generations
from bottomless.generation import format_created_at
from bottomless.s3 import S3Store
from bottomless_cli.main import cli

# Depends on how the S3 server behaves: `.ci/s3rver -m s3_server` runs these against s3rver.
pytestmark = pytest.mark.s3_server

DB = "cli.db"


@pytest.fixture
def env(s3_endpoint: str, bucket_name: str) -> dict[str, str]:
    return {
        "LIBSQL_BOTTOMLESS_ENDPOINT": s3_endpoint,
        "LIBSQL_BOTTOMLESS_BUCKET": bucket_name,
        "LIBSQL_BOTTOMLESS_DATABASE_ID": "",
        "RUST_LOG": "",
        "BOTTOMLESS_LOG": "",
    }


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def two_generations(store: S3Store, native: Native, tmp_path: Path) -> tuple[SourceDb, list[GenerationWriter]]:
    src = SourceDb(tmp_path / DB)
    src.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT)")
    writers = []
    for round_ in range(2):
        writer = GenerationWriter(store, DB, native, src.page_size)
        writer.start(src.snapshot())
        for _ in range(3):
            src.execute("INSERT INTO t(body) VALUES (?)", (f"round {round_}",))
            writer.add_batch(src.take())
        writers.append(writer)
        time.sleep(0.01)
    return src, writers


def test_ls_lists_newest_first(env: dict[str, str], two_generations: tuple[SourceDb, list[GenerationWriter]]) -> None:
    _, (old, new) = two_generations
    result = run(env, "ls")
    assert result.exit_code == 0, result.output
    assert result.output.split() == [str(new.generation), str(old.generation)]
    assert run(env, "ls", "-l", "1").output.split() == [str(new.generation)]
    assert run(env, "-d", DB, "ls", "-g", str(old.generation)).output.split() == [str(old.generation)]
    future = run(env, "ls", "--older-than", "2999-01-01", "--newer-than", "2000-01-01")
    assert future.output.split() == [str(new.generation), str(old.generation)]
    assert run(env, "ls", "--older-than", "2000-01-01").output == ""


def test_ls_verbose_fields(
    env: dict[str, str],
    store: S3Store,
    two_generations: tuple[SourceDb, list[GenerationWriter]],
) -> None:
    _, (_, new) = two_generations
    result = run(env, "ls", "-v", "-l", "1")
    assert result.exit_code == 0, result.output
    snapshot = store.head(layout.snapshot_key(DB, new.generation, "zstd"))
    assert snapshot is not None
    counter = list(store.get(layout.change_counter_key(DB, new.generation)))
    assert new.chain is not None
    assert result.output.splitlines() == [
        str(new.generation),
        f"\tcreated at (UTC):     {format_created_at(new.generation)}",
        f"\tchange counter:       {counter}",
        f"\tconsistent WAL frame: {new.next_frame - 1}",
        f"\tWAL frame checksum:   {new.chain.checksum_hex()}",
        "\tmain database snapshot:",
        f"\t\tobject size:   {snapshot.size}",
        f"\t\tlast modified: {snapshot.last_modified.strftime('%Y-%m-%dT%H:%M:%SZ')}",
    ]
    data = json.loads(run(env, "ls", "-v", "--json").output)
    assert [d["generation"] for d in data][0] == str(new.generation)
    assert data[0]["consistent_wal_frame"] == new.next_frame - 1
    assert data[0]["snapshot"]["object_size"] == snapshot.size
    plain = json.loads(run(env, "ls", "--json").output)
    assert set(plain[0]) == {"generation", "created_at"}


def test_restore_and_verify(
    env: dict[str, str],
    tmp_path: Path,
    two_generations: tuple[SourceDb, list[GenerationWriter]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src, (old, new) = two_generations
    out = tmp_path / "out" / "restored.db"
    out.parent.mkdir()
    result = run(env, "restore", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"from generation {new.generation}" in result.output
    got = sqlite3.connect(out).execute("SELECT id, body FROM t ORDER BY id").fetchall()
    assert got == src.rows("SELECT id, body FROM t ORDER BY id")

    monkeypatch.chdir(tmp_path / "out")
    result = run(env, "-d", DB, "restore", "-g", str(old.generation))
    assert result.exit_code == 0, result.output
    got = sqlite3.connect(tmp_path / "out" / DB).execute("SELECT count(*) FROM t").fetchall()
    assert got == [(3,)]

    result = run(env, "verify")
    assert result.exit_code == 0, result.output
    assert "integrity check:    ok" in result.output
    assert f"checksums verified: {new.next_frame - 1}" in result.output


def test_verify_reports_a_damaged_batch(
    env: dict[str, str],
    store: S3Store,
    two_generations: tuple[SourceDb, list[GenerationWriter]],
) -> None:
    _, (_, new) = two_generations
    key = next(k for k in new.keys if "000000000002-" in k)
    store.put(key, b"not zstd at all")
    result = run(env, "verify")
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert key in result.output and "zstd" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_rm(
    env: dict[str, str],
    store: S3Store,
    two_generations: tuple[SourceDb, list[GenerationWriter]],
) -> None:
    _, (old, new) = two_generations
    assert run(env, "rm").exit_code == 2  # needs -g or --older-than
    result = run(env, "rm", "-v", "--older-than", "2999-01-01")
    assert result.output.splitlines() == [f"Removed generation {old.generation}", "Removed 1 generation"]
    assert list_generations(store, DB) == [new.generation]
    result = run(env, "rm", "-v", "--older-than", "2999-01-01")
    assert result.output.splitlines() == ["Removed 0 generations"]  # never the newest
    result = run(env, "rm", "-v", "-g", str(new.generation))
    assert result.output.splitlines() == [f"Removed generation {new.generation}"]
    assert list(store.list_objects("")) == []


def test_rm_keeps_a_parent_that_a_kept_generation_needs(
    env: dict[str, str], store: S3Store, native: Native, tmp_path: Path
) -> None:
    src = SourceDb(tmp_path / DB)
    src.execute("CREATE TABLE t(x)")
    parent = GenerationWriter(store, DB, native, src.page_size)
    parent.start(src.snapshot())
    time.sleep(0.01)
    child = GenerationWriter(store, DB, native, src.page_size)
    child.start(None, parent=parent.generation)
    src.execute("INSERT INTO t VALUES (1)")
    child.add_batch(src.take())
    result = run(env, "rm", "-v", "--older-than", "2999-01-01")
    assert "Removed 0 generations" in result.output
    assert list_generations(store, DB) == [child.generation, parent.generation]


def test_database_detection(
    env: dict[str, str], store: S3Store, two_generations: tuple[SourceDb, list[GenerationWriter]]
) -> None:
    store.put(f"other.db-{two_generations[1][0].generation}/.meta", b"x" * 12)
    result = run(env, "ls")
    assert result.exit_code == 1
    assert "several databases (cli.db, other.db)" in result.output
    assert "-d/--database" in result.output
    assert run(env, "-d", "other.db", "ls").exit_code == 0


def test_errors_are_one_clear_line(env: dict[str, str], s3_endpoint: str, store: S3Store) -> None:
    result = run(env, "-b", "missing-bucket", "ls")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: bucket 'missing-bucket' does not exist at {s3_endpoint}; create it "
        f"(aws s3 mb s3://missing-bucket --endpoint-url {s3_endpoint}) or choose another "
        "with -b/--bucket or LIBSQL_BOTTOMLESS_BUCKET\n"
    )
    bad = run({**env, "LIBSQL_BOTTOMLESS_COMPRESSION": "lz4"}, "ls")
    assert bad.exit_code == 1 and "LIBSQL_BOTTOMLESS_COMPRESSION" in bad.output
    result = run(env, "ls")
    assert result.exit_code == 1 and "no database backups in bucket" in result.output
    assert run(env, "ls", "-g", "nope").exit_code == 2


def test_subprocess_entry_point_and_log_level(env: dict[str, str], store: S3Store) -> None:
    base = {**os.environ, **env}
    help_ = subprocess.run([sys.executable, "-m", "bottomless_cli", "--help"], capture_output=True, text=True)
    assert help_.returncode == 0
    for command in ("ls", "restore", "rm", "verify"):
        assert command in help_.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "bottomless_cli", "ls"],
        capture_output=True,
        text=True,
        env={**base, "RUST_LOG": "chatty"},
    )
    assert bad.returncode == 1
    assert bad.stderr == "Error: RUST_LOG: 'chatty' is not a log level (error, warn, info, debug, trace)\n"
    info = subprocess.run(
        [sys.executable, "-m", "bottomless_cli", "-d", DB, "ls"],
        capture_output=True,
        text=True,
        env={**base, "BOTTOMLESS_LOG": "info"},
    )
    assert info.returncode == 0, info.stderr
    assert "INFO bottomless.s3: Bucket" in info.stderr


def test_restore_to_a_point_in_time(env: dict[str, str], store: S3Store, native: Native, tmp_path: Path) -> None:
    src = SourceDb(tmp_path / DB)
    src.execute("CREATE TABLE t(x)")
    writer = GenerationWriter(store, DB, native, src.page_size)
    writer.start(src.snapshot())
    base = int(time.time()) + 3600
    for i in range(3):
        src.execute("INSERT INTO t VALUES (?)", (i,))
        writer.add_batch(src.take(), unix_secs=base + 60 * i)
    moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + 61))
    out = tmp_path / "pit.db"
    result = run(env, "restore", "-u", moment, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert sqlite3.connect(out).execute("SELECT x FROM t ORDER BY x").fetchall() == [(0,), (1,)]
    result = run(env, "verify", "-u", moment)
    assert "checksums verified: 2" in result.output
    bad = run(env, "restore", "-u", "tomorrow")
    assert bad.exit_code == 2 and "not a date" in bad.output

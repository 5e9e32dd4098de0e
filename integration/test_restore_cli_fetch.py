"""``restore`` and ``verify`` fetch a snapshot through one streaming GET by
default, or in ranged parts with ``--part-size``: the same bytes either
way, and a bad value is one clear error before anything is fetched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import bottomless
from bottomless.config import Config
from bottomless.s3 import S3Store
from conftest import dump, generation_objects, integrity, run_cli

ROWS = 600  # of 4 KiB random bytes: a snapshot of about 2.5 MiB that does not compress


def replicated(tmp_path: Path, cli_env: dict[str, str], store: S3Store) -> Path:
    """A database that existed before replication started (so its pages are
    in the snapshot), plus a batch after it; the snapshot spans several MiB."""
    db = tmp_path / "big.db"
    plain = sqlite3.connect(db)
    plain.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    plain.executemany("INSERT INTO t(v) VALUES (randomblob(4096))", [()] * ROWS)
    plain.commit()
    plain.close()
    conn = bottomless.connect(str(db), config=Config.from_env(cli_env), isolation_level=None)
    conn.execute("UPDATE t SET v = x'00' WHERE id = 7")
    conn.flush()
    conn.close()
    store_sizes = {info.key: info.size for info in store.list_objects("big.db-")}
    snapshots = [size for key, size in store_sizes.items() if key.rsplit("/", 1)[1].startswith("db.")]
    assert snapshots and max(snapshots) > 2 << 20, f"the snapshot is too small to take several parts: {store_sizes}"
    return db


@pytest.mark.parametrize("options", [[], ["--part-size", "1", "--parallel", "2"], ["--parallel", "1"]])
def test_restore_streamed_or_in_parts_gives_the_same_database(
    options: list[str], tmp_path: Path, cli_env: dict[str, str], store: S3Store
) -> None:
    db = replicated(tmp_path, cli_env, store)
    out = tmp_path / "restored.db"
    run_cli(cli_env, "-d", db.name, "restore", "-o", str(out), *options)
    assert integrity(out) == "ok"
    assert dump(out) == dump(db)
    verified = run_cli(cli_env, "-d", db.name, "verify", *options)
    assert "integrity check:    ok" in verified.stdout, verified.stdout


@pytest.mark.parametrize("options", [["--part-size", "-1"], ["--parallel", "0"], ["--part-size", "many"]])
def test_a_bad_fetch_option_is_named(
    options: list[str], tmp_path: Path, cli_env: dict[str, str], store: S3Store
) -> None:
    db = replicated(tmp_path, cli_env, store)
    out = tmp_path / "restored.db"
    proc = run_cli(cli_env, "-d", db.name, "restore", "-o", str(out), *options, check=False)
    assert proc.returncode == 2, proc.stdout
    assert options[0] in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not out.exists()
    assert generation_objects(store, db.name)  # the backup is untouched

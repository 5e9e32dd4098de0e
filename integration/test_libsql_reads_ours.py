"""Buckets this project writes, restored by libSQL's restore logic.

``libsql_reader.py`` is libSQL's bottomless restore written again from its
source (it imports nothing of this project). A bucket passes when that
reader restores it completely and exactly: no quiet stop, every frame's
checksum verified, and the result equal to the source database (integrity
check, rows, full dump).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import bottomless
from bottomless import extension_path
from bottomless.config import Config
from bottomless.restore import restore
from bottomless.s3 import S3Store
from conftest import dump, generation_objects, integrity, read_rows, run_cli, run_shell
from libsql_reader import LibsqlError, LibsqlReader

DB = "app.db"
# Objects libSQL's batch parser passes over in its own buckets too.
LIBSQL_OWN = {"db.zstd", "db.gz", "db.raw", ".meta", ".dep", ".changecounter"}


def _config(store: S3Store, **overrides: object) -> Config:
    return Config.from_env().with_overrides(
        endpoint=store.endpoint, bucket=store.bucket, batch_interval_secs=0.05, **overrides
    )


def _write(
    path: Path,
    store: S3Store,
    transactions: int,
    page_size: int | None = None,
    flush_every: int = 0,
    **config: object,
) -> None:
    conn = bottomless.connect(str(path), config=_config(store, **config), isolation_level=None, page_size=page_size)
    try:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT, n INTEGER)")
        conn.execute("CREATE INDEX t_n ON t(n)")
        conn.flush()  # the first generation's snapshot; what follows goes into batches
        for i in range(transactions):
            conn.execute("INSERT INTO t(body, n) VALUES (?, ?)", (f"row {i} " + "x" * (i % 700), i * 7 % 101))
            if i % 50 == 49:
                conn.execute("DELETE FROM t WHERE n < 5")
            if flush_every and i % flush_every == flush_every - 1:
                conn.flush()
        conn.flush()
    finally:
        conn.close()


def _libsql_restore(store: S3Store, target: Path, **kwargs: object) -> object:
    reader = LibsqlReader(store.client, store.bucket, DB)
    result = reader.restore(target, **kwargs)  # type: ignore[arg-type]
    assert result.stopped == [], f"libSQL's reader stopped early: {result.stopped}"
    for key in result.skipped:
        name = key.rpartition("/")[2]
        assert name in LIBSQL_OWN or ".merged." in name, f"libSQL's reader passed over {key}"
    return result


def _same_database(restored: Path, source: Path) -> None:
    assert integrity(restored) == "ok"
    sql = "SELECT id, body, n FROM t ORDER BY id"
    assert read_rows(restored, sql) == read_rows(source, sql)
    assert dump(restored) == dump(source)


def test_many_small_batches_with_merged_objects(store: S3Store, tmp_path: Path) -> None:
    """400 transactions shipped one per batch: the replicator also uploads
    merged runs of 64, which libSQL's reader must not replay."""
    source = tmp_path / DB
    _write(source, store, 400, batch_max_frames=1)
    names = [n for folder in generation_objects(store, DB).values() for n in folder]
    assert any(".merged." in n for n in names), f"no merged object was written: {sorted(names)[:10]}"
    target = tmp_path / "libsql.db"
    result = _libsql_restore(store, target)
    assert result.transactions_applied >= 400  # type: ignore[attr-defined]
    _same_database(target, source)


def test_generations_chained_by_dep(store: S3Store, tmp_path: Path) -> None:
    """New generations every 100 frames (snapshot + .dep); libSQL restores the newest."""
    source = tmp_path / DB
    _write(source, store, 330, flush_every=60, batch_max_frames=7, snapshot_frames=100)
    folders = generation_objects(store, DB)
    assert len(folders) >= 3
    assert sum(".dep" in names and ".meta" in names for names in folders.values()) >= 2
    target = tmp_path / "libsql.db"
    _libsql_restore(store, target)
    _same_database(target, source)


@pytest.mark.parametrize("compression", ["gz", "raw"])
def test_other_codecs(store: S3Store, tmp_path: Path, compression: str) -> None:
    source = tmp_path / DB
    _write(source, store, 120, batch_max_frames=5, compression=compression)
    target = tmp_path / "libsql.db"
    _libsql_restore(store, target)
    _same_database(target, source)


def test_sqlite3_shell_bucket(store: S3Store, tmp_path: Path, sqlite3_shell: str, cli_env: dict[str, str]) -> None:
    """Written by Debian's sqlite3 CLI through ``?vfs=bottomless``, shipped by ``sync``."""
    script = f".load {extension_path()}\n.open file:{DB}?vfs=bottomless\n"
    script += "CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT, n INTEGER);\n"
    script += "".join(f"INSERT INTO t(body, n) VALUES ('shell {i}', {i});\n" for i in range(150))
    script += "BEGIN; UPDATE t SET body = body || '!' WHERE n % 3 = 0; COMMIT;\n"
    run_shell(sqlite3_shell, script, cli_env, cwd=tmp_path)
    run_cli(cli_env, "-d", DB, "sync", cwd=tmp_path)
    target = tmp_path / "libsql.db"
    _libsql_restore(store, target)
    _same_database(target, tmp_path / DB)


def test_libsql_cannot_restore_other_page_sizes_with_a_snapshot(store: S3Store, tmp_path: Path) -> None:
    """libSQL's own limit, which the README states: after a snapshot it takes
    the page size of the (new, empty) restore target, 4096, and refuses the
    .meta's. This project's restore has no such limit."""
    source = tmp_path / DB
    _write(source, store, 20, page_size=65536)
    with pytest.raises(LibsqlError, match="Cannot set page size to 65536"):
        LibsqlReader(store.client, store.bucket, DB).restore(tmp_path / "libsql.db")
    ours = tmp_path / "ours.db"
    restore(store, DB, str(ours))
    _same_database(ours, source)

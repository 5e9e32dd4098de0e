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
from backup_writer import GenerationWriter, SourceDb
from bottomless import extension_path
from bottomless._native import Native
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
    """New generations every 10 shipped frames (snapshot + .dep); libSQL restores the newest."""
    source = tmp_path / DB
    _write(source, store, 330, flush_every=60, batch_max_frames=7, snapshot_frames=10)
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


@pytest.mark.parametrize("host", ["sqlite3", "libsql"])
def test_shell_bucket(
    store: S3Store, tmp_path: Path, request: pytest.FixtureRequest, cli_env: dict[str, str], host: str
) -> None:
    """Written by Debian's sqlite3 CLI (``?vfs=bottomless``) or a libSQL 0.2
    shell (``?wal=bottomless``, when LIBSQL_SHELL is set), shipped by ``sync``."""
    shell = request.getfixturevalue(f"{host}_shell")
    param = "vfs" if host == "sqlite3" else "wal"
    script = f".load {extension_path()}\n.open file:{DB}?{param}=bottomless\n"
    script += "CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT, n INTEGER);\n"
    script += "".join(f"INSERT INTO t(body, n) VALUES ('shell {i}', {i});\n" for i in range(150))
    script += "BEGIN; UPDATE t SET body = body || '!' WHERE n % 3 = 0; COMMIT;\n"
    run_shell(shell, script, cli_env, cwd=tmp_path)
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


def _earlier_style_bucket(store: S3Store, tmp_path: Path, native: Native, big_endian: bool) -> SourceDb:
    """A generation as this project wrote them before: a merged object under
    a plain batch name, checksum words big-endian when ``big_endian``."""
    (tmp_path / "src").mkdir(parents=True)
    src = SourceDb(tmp_path / "src" / DB)
    src.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT, n INTEGER)")
    writer = GenerationWriter(store, DB, native, src.page_size, big_endian=big_endian)
    writer.start(src.snapshot())
    chain_at_start = writer.chain
    batches = []
    for i in range(6):
        src.execute("INSERT INTO t(body, n) VALUES (?, ?)", (f"row {i}", i))
        batches.append(src.take())
        writer.add_batch(batches[-1])
    # The run of all six, uploaded again as one object the old way.
    rerun = GenerationWriter(store, DB, native, src.page_size, generation=writer.generation, big_endian=big_endian)
    rerun.meta, rerun.chain = writer.meta, chain_at_start
    rerun.add_batch([tx for txs in batches for tx in txs])
    return src


@pytest.mark.parametrize("big_endian", [True, False])
def test_earlier_buckets_still_restore_here(store: S3Store, tmp_path: Path, native: Native, big_endian: bool) -> None:
    src = _earlier_style_bucket(store, tmp_path, native, big_endian)
    ours = tmp_path / "ours.db"
    result = restore(store, DB, str(ours))
    assert result.checksums_verified == 6
    sql = "SELECT id, body, n FROM t ORDER BY id"
    assert read_rows(ours, sql) == src.rows(sql) and len(src.rows(sql)) == 6
    src.close()


def test_the_reader_catches_what_broke_libsql_before(store: S3Store, tmp_path: Path, native: Native) -> None:
    """The yardstick is not blind: big-endian words fail libSQL's checksum at
    frame 1, and a merged object under a batch name makes it stop quietly."""
    _earlier_style_bucket(store, tmp_path, native, big_endian=True).close()
    with pytest.raises(LibsqlError, match="Frame checksum verification failed"):
        LibsqlReader(store.client, store.bucket, DB).restore(tmp_path / "be.db")
    store.delete_many([o.key for o in store.list_objects(f"{DB}-")])
    _earlier_style_bucket(store, tmp_path / "again", native, big_endian=False).close()
    result = LibsqlReader(store.client, store.bucket, DB).restore(tmp_path / "le.db")
    assert result.stopped and "Missing series of consecutive frames" in result.stopped[0]
    assert result.transactions_applied == 1  # the first small batch, then the quiet stop

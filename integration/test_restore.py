"""Restore end to end against a real S3 server and the native core."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backup_writer import GenerationWriter, SourceDb
from bottomless import layout
from bottomless._native import Native
from bottomless.compression import compress
from bottomless.errors import RestoreError
from bottomless.frames import Meta
from bottomless.restore import restore
from bottomless.s3 import S3Store

# Depends on how the S3 server behaves: `.ci/s3rver -m s3_server` runs these against s3rver.
pytestmark = pytest.mark.s3_server

DB = "app.db"


@pytest.fixture
def source(tmp_path: Path) -> Iterator[SourceDb]:
    (tmp_path / "source").mkdir()
    src = SourceDb(tmp_path / "source" / DB)
    src.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT)")
    src.execute("INSERT INTO t(body) VALUES ('seed')")
    yield src
    src.close()


def insert(src: SourceDb, n: int, size: int = 300) -> None:
    for _ in range(n):
        src.execute("INSERT INTO t(body) VALUES (?)", ("x" * size,))


def rows(path: str | Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT id, body FROM t ORDER BY id").fetchall()
    finally:
        conn.close()


def write_generation(
    store: S3Store,
    src: SourceDb,
    native: Native,
    batches: int = 3,
    per_batch: int = 4,
    compression: str = "zstd",
) -> GenerationWriter:
    writer = GenerationWriter(store, DB, native, src.page_size, compression)
    writer.start(src.snapshot())
    for _ in range(batches):
        insert(src, per_batch)
        writer.add_batch(src.take())
    return writer


@pytest.mark.parametrize("compression", ["zstd", "gz", "raw"])
def test_restore_newest_reproduces_the_source(
    store: S3Store, native: Native, source: SourceDb, tmp_path: Path, compression: str
) -> None:
    writer = write_generation(store, source, native, compression=compression)
    target = tmp_path / "restored.db"
    result = restore(store, DB, str(target))
    assert rows(target) == source.rows("SELECT id, body FROM t ORDER BY id")
    assert len(rows(target)) == 13
    assert result.generation == writer.generation
    assert result.integrity == "ok"
    assert result.frames_applied == writer.next_frame - 1 == result.checksums_verified
    assert result.batches_applied == 3
    assert not list(tmp_path.glob(".restored.db.restore-*"))  # temp file renamed away


def test_point_in_time_stops_at_the_last_batch_before_the_time(
    store: S3Store, native: Native, source: SourceDb, tmp_path: Path
) -> None:
    writer = GenerationWriter(store, DB, native, source.page_size)
    writer.start(source.snapshot())
    base = int(time.time()) + 100
    counts = []
    for i in range(4):
        insert(source, 5)
        writer.add_batch(source.take(), unix_secs=base + 10 * i)
        counts.append(len(source.rows("SELECT id FROM t")))
    until = datetime.fromtimestamp(base + 15, UTC)
    result = restore(store, DB, str(tmp_path / "pit.db"), until=until)
    assert len(rows(tmp_path / "pit.db")) == counts[1] == 11
    assert result.batches_applied == 2
    restore(store, DB, str(tmp_path / "all.db"), until=datetime.fromtimestamp(base + 99, UTC))
    assert len(rows(tmp_path / "all.db")) == counts[3]
    with pytest.raises(RestoreError, match="no generation .* at or before"):
        restore(store, DB, str(tmp_path / "x.db"), until=datetime(2000, 1, 1, tzinfo=UTC))


def test_restore_follows_dep_into_the_parent_generation(
    store: S3Store, native: Native, source: SourceDb, tmp_path: Path
) -> None:
    parent = write_generation(store, source, native, batches=2)
    parent_rows = source.rows("SELECT id, body FROM t ORDER BY id")
    time.sleep(0.01)
    child = GenerationWriter(store, DB, native, source.page_size)
    child.start(None, parent=parent.generation)  # no snapshot of its own
    insert(source, 6)
    child.add_batch(source.take())
    insert(source, 2)
    child.add_batch(source.take())

    result = restore(store, DB, str(tmp_path / "newest.db"))
    assert result.generations == [parent.generation, child.generation]
    assert rows(tmp_path / "newest.db") == source.rows("SELECT id, body FROM t ORDER BY id")
    restore(store, DB, str(tmp_path / "parent.db"), generation=parent.generation)
    assert rows(tmp_path / "parent.db") == parent_rows


def test_missing_batch_is_a_gap_not_a_shorter_database(
    store: S3Store, native: Native, source: SourceDb, tmp_path: Path
) -> None:
    writer = write_generation(store, source, native, batches=3)
    batches = [k for k in writer.keys if layout.parse_batch_name(k.rsplit("/", 1)[1])]
    store.delete_many([batches[1]])
    target = tmp_path / "restored.db"
    target.write_bytes(b"previous content")
    with pytest.raises(RestoreError, match=f"gap .*found {batches[2]}"):
        restore(store, DB, str(target))
    assert target.read_bytes() == b"previous content"
    assert [p.name for p in tmp_path.iterdir()] == ["source", "restored.db"]


def test_damaged_page_fails_its_checksum(store: S3Store, native: Native, source: SourceDb, tmp_path: Path) -> None:
    writer = GenerationWriter(store, DB, native, source.page_size, compression="gz")
    writer.start(source.snapshot())
    insert(source, 3)
    writer.add_batch(source.take())
    insert(source, 3)
    txs = source.take()
    frames, _ = GenerationWriter(store, DB, native, source.page_size, meta=writer.meta, chain=writer.chain).encode(txs)
    damaged = bytearray(frames)
    damaged[24 + 100] ^= 0xFF  # a byte of the first frame's page
    key = writer.add_batch(txs, raw=bytes(damaged))
    with pytest.raises(RestoreError, match=key) as failure:
        restore(store, DB, str(tmp_path / "r.db"))
    assert "checksum" in str(failure.value)


def test_wrong_seed_in_meta_fails_the_first_batch(
    store: S3Store, native: Native, source: SourceDb, tmp_path: Path
) -> None:
    writer = write_generation(store, source, native, batches=2)
    assert writer.meta is not None
    wrong = Meta(writer.meta.page_size, writer.meta.seed1 ^ 1, writer.meta.seed2)
    store.put(layout.meta_key(DB, writer.generation), wrong.encode())
    first_batch = next(k for k in writer.keys if "000000000001-" in k)
    with pytest.raises(RestoreError, match=first_batch):
        restore(store, DB, str(tmp_path / "r.db"))


def test_meta_page_size_mismatch_is_named(store: S3Store, native: Native, source: SourceDb, tmp_path: Path) -> None:
    writer = write_generation(store, source, native, batches=1)
    assert writer.meta is not None
    store.put(layout.meta_key(DB, writer.generation), Meta(1024, 1, 2).encode())
    with pytest.raises(RestoreError, match=r"db\.zstd.*differs from \.meta"):
        restore(store, DB, str(tmp_path / "r.db"))


@pytest.mark.parametrize("how", ["compressed-cut", "pages-cut"])
def test_truncated_snapshot_is_refused(
    store: S3Store, native: Native, source: SourceDb, tmp_path: Path, how: str
) -> None:
    insert(source, 200)  # a snapshot of several pages
    writer = write_generation(store, source, native, batches=1)
    key = layout.snapshot_key(DB, writer.generation, "zstd")
    snapshot = source.path.read_bytes()
    if how == "compressed-cut":
        packed = store.get(key)
        store.put(key, packed[: len(packed) - 20])
    else:
        store.put(key, compress(snapshot[: len(snapshot) - source.page_size], "zstd"))
    with pytest.raises(RestoreError, match=key.replace(".", r"\.")):
        restore(store, DB, str(tmp_path / "r.db"))


def test_generation_without_snapshot_or_dep(store: S3Store, native: Native, source: SourceDb, tmp_path: Path) -> None:
    writer = write_generation(store, source, native, batches=1)
    store.delete_many([layout.snapshot_key(DB, writer.generation, "zstd")])
    with pytest.raises(RestoreError, match="no snapshot .* and no .dep parent"):
        restore(store, DB, str(tmp_path / "r.db"))


def test_missing_meta_is_named(store: S3Store, native: Native, source: SourceDb, tmp_path: Path) -> None:
    writer = write_generation(store, source, native, batches=1)
    key = layout.meta_key(DB, writer.generation)
    store.delete_many([key])
    with pytest.raises(RestoreError, match=f"{key!r} is missing"):
        restore(store, DB, str(tmp_path / "r.db"))


def test_batch_shorter_than_its_name(store: S3Store, native: Native, source: SourceDb, tmp_path: Path) -> None:
    writer = GenerationWriter(store, DB, native, source.page_size)
    writer.start(source.snapshot())
    insert(source, 4)
    txs = source.take()
    frames, _ = GenerationWriter(store, DB, native, source.page_size, meta=writer.meta).encode(txs)
    key = writer.add_batch(txs, raw=frames[: len(frames) - (24 + source.page_size)])
    with pytest.raises(RestoreError, match=f"{key!r} holds"):
        restore(store, DB, str(tmp_path / "r.db"))


def test_no_backups_at_all(store: S3Store, tmp_path: Path) -> None:
    with pytest.raises(RestoreError, match="no generation of database 'app.db'"):
        restore(store, DB, str(tmp_path / "r.db"))


def test_replacing_a_database_drops_its_stale_wal(
    store: S3Store, native: Native, source: SourceDb, tmp_path: Path
) -> None:
    write_generation(store, source, native, batches=1)
    target = tmp_path / "live.db"
    other = sqlite3.connect(target, isolation_level=None)
    other.execute("PRAGMA journal_mode=wal")
    other.execute("PRAGMA wal_autocheckpoint=0")
    other.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT)")
    other.execute("INSERT INTO t(body) VALUES ('stale')")
    wal = Path(str(target) + "-wal").read_bytes()
    other.close()
    Path(str(target) + "-wal").write_bytes(wal)  # as if the process had crashed
    restore(store, DB, str(target))
    assert not Path(str(target) + "-wal").exists()
    assert rows(target) == source.rows("SELECT id, body FROM t ORDER BY id")


def test_more_than_a_thousand_batches(store: S3Store, native: Native, source: SourceDb, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    writer = GenerationWriter(store, DB, native, source.page_size, compression="raw")
    writer.start(source.snapshot())
    for i in range(1005):
        source.execute("INSERT INTO t(body) VALUES (?)", (str(i),))
    txs = source.take()
    assert len(txs) == 1005
    uploads = []
    for tx in txs:  # encode in order (the chain), upload in parallel
        frames, count = writer.encode([tx])
        key = layout.batch_key(
            DB, writer.generation, writer.next_frame, writer.next_frame + count - 1, int(time.time()), "raw"
        )
        writer.next_frame += count
        uploads.append((key, frames))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: store.put(*kv), uploads))
    before = store.stats.snapshot()["LIST"]
    result = restore(store, DB, str(tmp_path / "big.db"), workers=16)
    assert store.stats.snapshot()["LIST"] - before >= 3  # generations + 2 pages of objects
    assert result.batches_applied == 1005
    assert len(rows(tmp_path / "big.db")) == 1006

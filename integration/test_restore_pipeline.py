"""The restore pipeline (restore_pipeline.py): parallel fetches, batches
applied newest first with each page written once, the snapshot streamed in
ranged parts; a bad object anywhere is named and nothing is renamed into
place. Tuning with tiny parts and budgets forces many requests in flight
on small databases."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from backup_writer import GenerationWriter, SourceDb
from bottomless import catalog, layout
from bottomless._native import Native
from bottomless.compression import compress
from bottomless.crypto import Cipher
from bottomless.errors import RestoreError
from bottomless.objects import encode_body
from bottomless.restore import Tuning, restore
from bottomless.restore_fetch import LocalObjects
from bottomless.s3 import S3Store
from conftest import run_cli

pytestmark = pytest.mark.s3_server

DB = "app.db"
TINY = Tuning(workers=4, part_size=4096, snapshot_budget=3 * 4096, batch_budget=1)
# The snapshot through one streaming GET, read in small pieces, little read ahead.
STREAM = Tuning(workers=4, part_size=0, snapshot_budget=3 * 4096, batch_budget=1, stream_chunk=4096)
TUNINGS = pytest.mark.parametrize("tuning", [TINY, STREAM], ids=["parts", "stream"])


@pytest.fixture
def source(tmp_path: Path) -> Iterator[SourceDb]:
    (tmp_path / "source").mkdir()
    src = SourceDb(tmp_path / "source" / DB)
    src.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER, body TEXT)")
    src.execute(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 300) "
        "INSERT INTO t(n, body) SELECT x, hex(randomblob(400)) FROM c"
    )
    yield src
    src.close()


def rows(path: str | Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT id, n, body FROM t ORDER BY id").fetchall()
    finally:
        conn.close()


def history(store: S3Store, src: SourceDb, native: Native, batches: int = 12, codec: str = "zstd") -> GenerationWriter:
    """A snapshot, then batches that rewrite the same rows again and again
    (so most pages have many images) and add a few."""
    writer = GenerationWriter(store, DB, native, src.page_size, codec)
    writer.start(src.snapshot())
    for i in range(batches):
        src.execute("UPDATE t SET n = n + 1 WHERE id % 7 = ?", (i % 7,))
        src.execute("INSERT INTO t(n, body) VALUES (?, hex(randomblob(300)))", (i,))
        writer.add_batch(src.take())
    return writer


def batch_keys(writer: GenerationWriter) -> list[str]:
    return [k for k in writer.keys if layout.parse_batch_name(k.rsplit("/", 1)[1])]


def test_each_page_is_written_once_and_the_newest_image_wins(
    store: S3Store, native: Native, source: SourceDb, tmp_path: Path
) -> None:
    writer = history(store, source, native)
    target = tmp_path / "r.db"
    result = restore(store, DB, str(target), tuning=TINY)
    assert rows(target) == source.rows("SELECT id, n, body FROM t ORDER BY id")
    assert result.integrity == "ok"
    assert result.frames_applied == writer.next_frame - 1
    # Many frames rewrite the same pages; every page of the file is still written once.
    assert result.frames_applied > result.db_size
    assert result.pages_written == result.db_size
    fetched = [o for o in store.list_objects(f"{DB}-{writer.generation}/") if not o.key.endswith(".meta")]
    fetched = [o for o in fetched if not o.key.endswith(".changecounter")]
    assert result.figures is not None and result.figures.fetched == sum(o.size for o in fetched)


@TUNINGS
@pytest.mark.parametrize("codec", ["zstd", "gz", "raw"])
def test_tiny_parts_and_budgets_restore_the_same_bytes(
    store: S3Store, native: Native, source: SourceDb, tmp_path: Path, codec: str, tuning: Tuning
) -> None:
    history(store, source, native, batches=5, codec=codec)
    restore(store, DB, str(tmp_path / "default.db"))
    restore(store, DB, str(tmp_path / "tiny.db"), tuning=tuning)
    assert (tmp_path / "tiny.db").read_bytes() == (tmp_path / "default.db").read_bytes()
    assert rows(tmp_path / "tiny.db") == source.rows("SELECT id, n, body FROM t ORDER BY id")


def test_corrupt_batch_in_the_middle_is_named_and_nothing_is_replaced(
    store: S3Store, native: Native, source: SourceDb, tmp_path: Path
) -> None:
    writer = history(store, source, native, batches=20)
    victim = batch_keys(writer)[9]
    frames = bytearray(_frames(store, victim))
    frames[24 + 500] ^= 0x01  # a byte of the first frame's page
    store.put(victim, compress(bytes(frames), "zstd"))
    target = tmp_path / "r.db"
    target.write_bytes(b"previous content")
    with pytest.raises(RestoreError, match=victim) as failure:
        restore(store, DB, str(target), tuning=TINY)
    assert "checksum" in str(failure.value)
    assert target.read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.db", "source"]


def test_damage_inside_a_later_frame_of_a_batch_is_named(
    store: S3Store, native: Native, source: SourceDb, tmp_path: Path
) -> None:
    writer = history(store, source, native, batches=6)
    victim = batch_keys(writer)[2]
    frames = bytearray(_frames(store, victim))
    assert len(frames) >= 2 * (24 + source.page_size)
    frames[-100] ^= 0x01  # the last frame's page
    store.put(victim, compress(bytes(frames), "zstd"))
    with pytest.raises(RestoreError, match=f"{victim}.*checksum"):
        restore(store, DB, str(tmp_path / "r.db"), tuning=TINY)
    assert not (tmp_path / "r.db").exists()


@TUNINGS
def test_corrupt_snapshot_part_is_named_and_nothing_is_replaced(
    store: S3Store, native: Native, source: SourceDb, tmp_path: Path, tuning: Tuning
) -> None:
    # gzip's CRC catches any damaged byte (a zstd snapshot carries no checksum)
    writer = history(store, source, native, batches=3, codec="gz")
    key = layout.snapshot_key(DB, writer.generation, "gz")
    packed = bytearray(store.get(key))
    assert len(packed) > 8 * TINY.part_size
    packed[len(packed) // 2] ^= 0xFF  # inside a middle part
    store.put(key, bytes(packed))
    target = tmp_path / "r.db"
    target.write_bytes(b"previous content")
    with pytest.raises(RestoreError, match=key.replace(".", r"\.")):
        restore(store, DB, str(target), tuning=tuning)
    assert target.read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.db", "source"]


@TUNINGS
def test_encrypted_snapshot_streams_through_small_parts(
    store: S3Store, native: Native, source: SourceDb, tmp_path: Path, tuning: Tuning
) -> None:
    writer = history(store, source, native, batches=3)
    cipher = Cipher(bytes(range(32)))
    for key in batch_keys(writer) + [layout.snapshot_key(DB, writer.generation, "zstd")]:
        plain = _frames(store, key)
        store.put(key, encode_body(plain, "zstd", key, cipher))
    restore(store, DB, str(tmp_path / "r.db"), tuning=tuning, cipher=cipher)
    assert rows(tmp_path / "r.db") == source.rows("SELECT id, n, body FROM t ORDER BY id")


@pytest.mark.parametrize("tuning", [None, STREAM], ids=["default", "stream"])
def test_restore_from_a_local_copy_of_the_objects(
    store: S3Store, native: Native, source: SourceDb, tmp_path: Path, tuning: Tuning | None
) -> None:
    writer = history(store, source, native, batches=4)
    mirror = tmp_path / "mirror"
    for obj in store.list_objects(f"{DB}-{writer.generation}/"):
        path = mirror / obj.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(store.get(obj.key))
    restore(store, DB, str(tmp_path / "r.db"), source=LocalObjects(mirror), tuning=tuning)
    assert rows(tmp_path / "r.db") == source.rows("SELECT id, n, body FROM t ORDER BY id")


def test_cli_restore_and_verify_print_their_figures(
    store: S3Store, native: Native, source: SourceDb, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    writer = history(store, source, native, batches=4)
    out = tmp_path / "out.db"
    proc = run_cli(cli_env, "-d", DB, "restore", "-o", str(out), "--json")
    figures = json.loads(proc.stdout)
    gen = catalog.load_generation(store, DB, writer.generation)
    assert gen.snapshot is not None
    assert figures["generation"] == str(writer.generation)
    assert figures["integrity"] == "ok"
    assert figures["bytes_fetched"] == gen.snapshot.size + sum(b.size for b in gen.batches)
    assert figures["objects_fetched"] == 1 + len(gen.batches)
    assert figures["database_bytes"] == out.stat().st_size == figures["pages"] * figures["page_size"]
    assert figures["pages_written"] == figures["pages"]
    assert figures["frames_applied"] == writer.next_frame - 1
    assert figures["seconds"] > 0 and figures["mib_per_s"] > 0

    text = run_cli(cli_env, "-d", DB, "restore", "-o", str(tmp_path / "two.db")).stdout
    summary = text.strip().splitlines()[-1]
    assert summary.startswith(f"restored {DB} generation {writer.generation}: ")
    assert f"({figures['pages']} pages)" in summary and "MiB/s" in summary and "integrity ok" in summary

    verified = json.loads(run_cli(cli_env, "-d", DB, "verify", "--json").stdout)
    assert verified["integrity"] == "ok"
    assert verified["checksums_verified"] == writer.next_frame - 1
    assert verified["bytes_fetched"] == figures["bytes_fetched"]
    text = run_cli(cli_env, "-d", DB, "verify").stdout
    assert text.strip().splitlines()[-1].startswith(f"verified {DB} generation {writer.generation}: ")


def _frames(store: S3Store, key: str) -> bytes:
    from bottomless.compression import decompress

    return decompress(store.get(key), "zstd", key)

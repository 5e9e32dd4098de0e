"""Buckets written the way libSQL's bottomless writes them, read by this project.

``libsql_writer.py`` builds them from a real SQLite WAL by libSQL's rules
(raw frames with the WAL's salts and SQLite's checksums, ``.meta`` from the
WAL header, batches cut every N frames wherever that falls, a first
generation without snapshot or ``.dep``, a generation per TRUNCATE
checkpoint, a snapshot-only generation without ``.meta``, sqld's
``ns-<id>:<name>`` database names). ``bottomless-cli`` restores them (newest,
``-g``, ``-u``), verifies them and lists them, with checksum verification on,
and the result is compared with the source database.
"""

from __future__ import annotations

import gzip
import re
import struct
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

import bottomless
from bottomless.s3 import S3Store
from conftest import dump, integrity, run_cli
from libsql_reader import LibsqlError, LibsqlReader
from libsql_writer import LibsqlStyleWriter

NAME = "ns-4f1c2a:app"  # how sqld names a namespace's database


@dataclass
class Scenario:
    writer: LibsqlStyleWriter
    states: dict[str, list[str]] = field(default_factory=dict)  # dumps at named moments
    times: dict[str, int] = field(default_factory=dict)  # unix seconds of those moments
    last_checksum: str = "0"
    last_frame: int = 0


def _transactions(writer: LibsqlStyleWriter, start: int, count: int, big_every: int = 7) -> None:
    for i in range(start, start + count):
        if i % big_every == 0:
            # A transaction of many pages, so batches of N frames end inside it.
            writer.execute("BEGIN")
            for j in range(12):
                writer.execute("INSERT INTO t(body, n) VALUES (?, ?)", (f"big {i}.{j} " + "y" * 900, j))
            writer.execute("COMMIT")
        else:
            writer.execute("INSERT INTO t(body, n) VALUES (?, ?)", (f"row {i}", i % 13))


def build(
    store: S3Store,
    tmp_path: Path,
    page_size: int = 4096,
    max_frames: int = 5,
    codec: str = "zstd",
    start_ns: int = 1_750_000_000 * 10**9,
) -> Scenario:
    path = tmp_path / "source.db"
    writer = LibsqlStyleWriter(store.client, store.bucket, NAME, path, page_size, max_frames, codec, start_ns)
    sc = Scenario(writer)
    writer.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT, n INTEGER)")
    writer.execute("CREATE INDEX t_n ON t(n)")
    _transactions(writer, 0, 20)
    writer.flush()
    sc.states["gen1-early"], sc.times["gen1-early"] = writer.dump(), writer.now_ns // 10**9
    writer.tick(100)
    _transactions(writer, 20, 20)
    writer.flush()
    sc.states["gen1"] = writer.dump()
    writer.tick(100)
    writer.checkpoint()  # generation 2: snapshot + .dep
    _transactions(writer, 40, 25)
    writer.execute("DELETE FROM t WHERE n = 3")
    writer.flush()
    writer.tick(100)
    writer.checkpoint()  # generation 3
    _transactions(writer, 65, 30)
    flushed = writer.flush()
    sc.last_frame, sc.last_checksum = flushed.last_frame, flushed.last_checksum
    sc.states["final"] = writer.dump()
    return sc


def _restore_cli(cli_env: dict[str, str], tmp_path: Path, out: str, *args: str) -> Path:
    target = tmp_path / out
    run_cli(cli_env, "-d", NAME, "restore", "-o", str(target), *args, cwd=tmp_path)
    assert integrity(target) == "ok"
    return target


@pytest.mark.parametrize(
    ("page_size", "codec", "max_frames"),
    [(4096, "zstd", 5), (1024, "gz", 3), (65536, "raw", 2), (8192, "zstd", 10000)],
)
def test_restore_newest_verify_and_ls(
    store: S3Store, tmp_path: Path, cli_env: dict[str, str], page_size: int, codec: str, max_frames: int
) -> None:
    sc = build(store, tmp_path, page_size, max_frames, codec)
    target = _restore_cli(cli_env, tmp_path, "restored.db")
    assert dump(target) == sc.states["final"]
    run_cli(cli_env, "-d", NAME, "verify", cwd=tmp_path)
    listing = run_cli(cli_env, "-d", NAME, "ls", "-v", "-l", "1", cwd=tmp_path).stdout
    assert str(sc.writer.generation) in listing
    assert re.search(rf"consistent WAL frame: +{sc.last_frame}\n", listing), listing
    assert re.search(rf"WAL frame checksum: +{sc.last_checksum}\n", listing), listing
    assert "object size:" in listing and "change counter:" in listing
    sc.writer.close()


def test_first_generation_without_snapshot_by_name_and_by_time(
    store: S3Store, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    sc = build(store, tmp_path)
    first = sc.writer.generations[0]
    names = [o.key for o in store.list_objects(f"{NAME}-{first}/")]
    assert not any("/db." in k or k.endswith("/.dep") for k in names), names
    whole = _restore_cli(cli_env, tmp_path, "gen1.db", "-g", str(first))
    assert dump(whole) == sc.states["gen1"]
    moment = datetime.fromtimestamp(sc.times["gen1-early"] + 50, UTC).strftime("%Y-%m-%d %H:%M:%S")
    early = _restore_cli(cli_env, tmp_path, "early.db", "-u", moment)
    assert dump(early) == sc.states["gen1-early"]
    sc.writer.close()


def test_snapshot_only_generation(store: S3Store, tmp_path: Path, cli_env: dict[str, str]) -> None:
    """A checkpoint with nothing written after it: the newest generation
    holds a snapshot, .dep and .changecounter, and no .meta."""
    sc = build(store, tmp_path)
    sc.writer.tick(100)  # generations are ordered by their creation time
    newest = sc.writer.checkpoint()
    names = {o.key.rpartition("/")[2] for o in store.list_objects(f"{NAME}-{newest}/")}
    assert ".meta" not in names and "db.zstd" in names
    target = _restore_cli(cli_env, tmp_path, "restored.db")
    assert dump(target) == sc.states["final"]
    run_cli(cli_env, "-d", NAME, "verify", cwd=tmp_path)
    listing = run_cli(cli_env, "-d", NAME, "ls", "-v", "-l", "1", cwd=tmp_path).stdout
    assert re.search(r"consistent WAL frame: +0\n", listing), listing
    sc.writer.close()


def test_restore_on_open(store: S3Store, tmp_path: Path) -> None:
    sc = build(store, tmp_path)
    path = tmp_path / "opened.db"
    conn = bottomless.connect(str(path), endpoint=store.endpoint, bucket=store.bucket, database_id=NAME)
    try:
        assert list(conn.iterdump()) == sc.states["final"]
    finally:
        conn.close()
    sc.writer.close()


def test_transaction_left_open_at_the_end_is_not_applied(
    store: S3Store, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """libSQL ships frames before their commit; the last batch may end
    inside a transaction, whose frames a restore leaves out."""
    sc = build(store, tmp_path)
    before = sc.writer.dump()
    sent = sc.writer.sent
    _transactions(sc.writer, 200, 1, big_every=1)  # one transaction of many frames
    sc.writer.flush(upto=sc.writer.wal_frames() - 2)
    assert sc.writer.sent > sent
    target = _restore_cli(cli_env, tmp_path, "restored.db")
    assert dump(target) == before
    sc.writer.close()


def _batches(store: S3Store, generation: uuid.UUID) -> list[str]:
    return sorted(k.key for k in store.list_objects(f"{NAME}-{generation}/") if re.search(r"/\d{12}-", k.key))


def test_bad_checksum_names_the_object(store: S3Store, tmp_path: Path, cli_env: dict[str, str]) -> None:
    sc = build(store, tmp_path)
    key = _batches(store, sc.writer.generation)[3]
    frames = bytearray(store.get(key))
    if key.endswith(".zstd"):
        import zstandard

        frames = bytearray(zstandard.ZstdDecompressor().decompress(bytes(frames)))
        frames[24 + 100] ^= 0x01  # a byte of the first frame's page
        body = zstandard.ZstdCompressor().compress(bytes(frames))
    else:
        frames = bytearray(gzip.decompress(bytes(frames)))
        frames[24 + 100] ^= 0x01
        body = gzip.compress(bytes(frames))
    store.put(key, body)
    for command in (["verify"], ["restore", "-o", str(tmp_path / "r.db")]):
        proc = run_cli(cli_env, "-d", NAME, *command, check=False, cwd=tmp_path)
        assert proc.returncode != 0
        assert key in proc.stderr and "checksum" in proc.stderr, proc.stderr
    assert not (tmp_path / "r.db").exists()
    sc.writer.close()


def test_gap_names_the_object(store: S3Store, tmp_path: Path, cli_env: dict[str, str]) -> None:
    sc = build(store, tmp_path)
    batches = _batches(store, sc.writer.generation)
    store.delete_many([batches[2]])
    proc = run_cli(cli_env, "-d", NAME, "verify", check=False, cwd=tmp_path)
    assert proc.returncode != 0
    assert "gap" in proc.stderr and batches[3] in proc.stderr, proc.stderr
    sc.writer.close()


def test_frames_carry_the_wals_own_salts(store: S3Store, tmp_path: Path) -> None:
    """The fixture is what libSQL ships: SQLite's frames byte for byte, whose
    salts are the WAL header's, not a seed of ours."""
    sc = build(store, tmp_path)
    first = _batches(store, sc.writer.generation)[0]
    import zstandard

    frames = zstandard.ZstdDecompressor().decompress(store.get(first))
    with open(f"{sc.writer.path}-wal", "rb") as wal:
        header = wal.read(32 + 24 + 4096)
    assert frames[: 24 + 4096] == header[32:]
    assert struct.unpack(">2I", frames[8:16]) == struct.unpack(">2I", header[16:24])
    sc.writer.close()


def test_the_two_fixtures_agree(store: S3Store, tmp_path: Path) -> None:
    """libSQL's reader (libsql_reader.py) restores libSQL's writer's bucket
    (libsql_writer.py), both written from libSQL's source: the yardsticks
    agree with each other, including libSQL's page-size limit."""
    sc = build(store, tmp_path)
    result = LibsqlReader(store.client, store.bucket, NAME).restore(tmp_path / "libsql.db")
    assert result.stopped == []
    assert dump(tmp_path / "libsql.db") == sc.states["final"]
    sc.writer.close()
    big = tmp_path / "big"
    big.mkdir()
    other = build(store, big, page_size=65536, start_ns=1_760_000_000 * 10**9)  # newer generations
    with pytest.raises(LibsqlError, match="Cannot set page size to 65536"):
        LibsqlReader(store.client, store.bucket, NAME).restore(big / "libsql.db")
    other.writer.close()

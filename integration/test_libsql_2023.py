"""libSQL's 2023 per-page layout (the one the seed README's ``ls -v`` shows),
built by ``libsql2023_writer.py`` from a real SQLite WAL, read by
``bottomless-cli`` restore, verify and ``ls -v``."""

from __future__ import annotations

import gzip
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bottomless.s3 import S3Store
from conftest import dump, integrity, run_cli
from libsql2023_writer import Libsql2023Writer, crc64_ecma

NAME = "data.db"


def build(store: S3Store, tmp_path: Path, page_size: int = 4096) -> tuple[Libsql2023Writer, dict[str, list[str]]]:
    w = Libsql2023Writer(store.client, store.bucket, NAME, tmp_path / "source.db", page_size)
    states: dict[str, list[str]] = {}
    w.commit("CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT, n INTEGER)")
    for i in range(25):
        w.commit("INSERT INTO t(body, n) VALUES (?, ?)", (f"row {i} " + "z" * (i * 40), i % 5))
    states["gen1"] = w.dump()
    w.tick(60)
    w.checkpoint()
    for i in range(25, 40):
        w.commit("INSERT INTO t(body, n) VALUES (?, ?)", (f"row {i}", i % 5))
    w.commit("DELETE FROM t WHERE n = 2")
    states["gen2"] = w.dump()
    w.tick(60)
    w.checkpoint()
    for i in range(40, 50):
        w.commit("INSERT INTO t(body, n) VALUES (?, ?)", (f"row {i} " + "q" * 2000, i))
    states["final"] = w.dump()
    return w, states


def _restore(cli_env: dict[str, str], tmp_path: Path, out: str, *args: str) -> Path:
    target = tmp_path / out
    run_cli(cli_env, "-d", NAME, "restore", "-o", str(target), *args, cwd=tmp_path)
    assert integrity(target) == "ok"
    return target


def test_crc64_is_ecma_182() -> None:
    assert crc64_ecma(b"123456789") == 0x6C40DF5F0B497347  # the catalogued check value


@pytest.mark.parametrize("page_size", [4096, 1024])
def test_restore_verify_and_ls(store: S3Store, tmp_path: Path, cli_env: dict[str, str], page_size: int) -> None:
    w, states = build(store, tmp_path, page_size)
    assert dump(_restore(cli_env, tmp_path, "newest.db")) == states["final"]
    first, second = w.generations[0], w.generations[1]
    assert dump(_restore(cli_env, tmp_path, "first.db", "-g", str(first))) == states["gen1"]
    assert dump(_restore(cli_env, tmp_path, "second.db", "-g", str(second))) == states["gen2"]
    # -u: the newest generation created at or before the time.
    moment = datetime.fromtimestamp(w.now_ns // 10**9 - 30, UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert dump(_restore(cli_env, tmp_path, "then.db", "-u", moment)) == states["gen2"]
    run_cli(cli_env, "-d", NAME, "verify", cwd=tmp_path)
    run_cli(cli_env, "-d", NAME, "verify", "-g", str(first), cwd=tmp_path)
    listing = run_cli(cli_env, "-d", NAME, "ls", "-v", cwd=tmp_path).stdout
    newest = listing.split("\n\n")[0]
    assert newest.startswith(str(w.generation))
    assert re.search(rf"consistent WAL frame: {w.last_frame}\n", newest), newest
    assert re.search(rf"WAL frame checksum:   {w.last_checksum}\n", newest), newest
    assert re.search(r"change counter:       \[\d+, \d+, \d+, \d+\]", newest), newest
    assert "main database snapshot:\n\t\tobject size:" in newest
    w.close()


def test_damaged_page_fails_its_crc(store: S3Store, tmp_path: Path, cli_env: dict[str, str]) -> None:
    w, _ = build(store, tmp_path)
    keys = sorted(o.key for o in store.list_objects(f"{NAME}-{w.generation}/") if re.search(r"/\d{12}-\d{12}-", o.key))
    key = keys[len(keys) // 2]
    page = bytearray(gzip.decompress(store.get(key)))
    page[200] ^= 0x10
    store.put(key, gzip.compress(bytes(page)))
    proc = run_cli(cli_env, "-d", NAME, "verify", check=False, cwd=tmp_path)
    assert proc.returncode != 0 and key in proc.stderr and "CRC-64" in proc.stderr, proc.stderr
    w.close()


def test_pages_of_an_unfinished_commit_are_left_out(store: S3Store, tmp_path: Path, cli_env: dict[str, str]) -> None:
    w, states = build(store, tmp_path)
    w.commit("INSERT INTO t(body, n) VALUES ('lost', 0)", finalize=False)
    assert dump(_restore(cli_env, tmp_path, "restored.db")) == states["final"]
    w.close()


def test_a_missing_page_is_a_gap(store: S3Store, tmp_path: Path, cli_env: dict[str, str]) -> None:
    w, _ = build(store, tmp_path)
    keys = sorted(o.key for o in store.list_objects(f"{NAME}-{w.generation}/") if re.search(r"/\d{12}-\d{12}-", o.key))
    store.delete_many([keys[3]])
    proc = run_cli(cli_env, "-d", NAME, "restore", "-o", str(tmp_path / "r.db"), check=False, cwd=tmp_path)
    assert proc.returncode != 0 and "gap" in proc.stderr and keys[4] in proc.stderr, proc.stderr
    w.close()

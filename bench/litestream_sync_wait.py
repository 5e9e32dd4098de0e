"""Finding (issue 19): ``litestream sync -wait`` once, then ordinary writes
under SQLite's default autocheckpoint, and Litestream 0.5.17's restore no
longer equals the source. Without that one call, the same run restores
exactly. Minimal reproduction, both ways, side by side:

1. ``litestream replicate`` on a new WAL database (moto S3 in a child process);
2. with ``--sync-wait``: ``litestream sync -wait`` once;
3. ``--seconds`` of writes (one INSERT and one UPDATE per transaction,
   default autocheckpoint);
4. wait for the replica to cover the last write (``litestream ltx``), stop,
   ``litestream restore``, compare with the source.

    PYTHONPATH=python python bench/litestream_sync_wait.py --seconds 20 --runs 2
"""

# mypy: disable-error-code="import-untyped"

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from s3bench import Litestream, S3Server, content_digest, integrity, litestream_version

from bottomless.s3 import S3Store

BUCKET = "ls-sync-wait"


def one_run(server: S3Server, work: Path, sync_wait: bool, seconds: float, n: int) -> str:
    folder = work / f"{'wait' if sync_wait else 'plain'}-{n}"
    folder.mkdir()
    db = folder / "db.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER, v BLOB)")
    ls = Litestream(db, server.endpoint, BUCKET, folder.name, work)
    ls.start()
    try:
        if sync_wait:
            ls.sync(timeout=60)
        rng = random.Random(n)
        deadline = time.monotonic() + seconds
        rows = 0
        while time.monotonic() < deadline:
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t(n, v) VALUES (0, randomblob(200))")
            rows += 1
            conn.execute("UPDATE t SET n = n + 1 WHERE id = ?", (rng.randrange(rows) + 1,))
            conn.execute("COMMIT")
        ls.wait_replicated(timeout=120)
    finally:
        conn.close()
        ls.stop()
    out = folder / "restored.db"
    ls.restore(out)
    check = integrity(out)
    equal = content_digest(out) == content_digest(db)
    return f"{rows} transactions, restore integrity {check}, equals source: {'yes' if equal else 'NO'}"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="litestream sync -wait once, then writes: does the restore hold?")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--runs", type=int, default=2)
    args = p.parse_args(argv)
    print(f"litestream {litestream_version()}, default autocheckpoint, {args.seconds:g} s of writes per run")
    with tempfile.TemporaryDirectory(prefix="ls-sync-wait-") as tmp, S3Server() as server:
        S3Store(server.endpoint, BUCKET).ensure_bucket()
        for n in range(args.runs):
            for sync_wait in (False, True):
                label = "with one sync -wait" if sync_wait else "without sync -wait"
                print(f"run {n + 1} {label}: {one_run(server, Path(tmp), sync_wait, args.seconds, n)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

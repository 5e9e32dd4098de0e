"""Benchmark: the replicator's CPU to read a batch's frames out of the spool.

Every batch the replicator ships starts with one native call
(``Spool.frames_run``): read the frames of its transactions (from the WAL
or their copy), keep each page's newest image, checksum what is kept. Under
a heavy writer that call runs several times a second and competes with the
application for the CPU, so it is measured here alone, on a fixed spool:
one database written through the extension (compare.py's workload, WAL
kept whole, no replicator), then every round reads all of its records in
batches of ``--batch-frames`` raw frames (the replicator's
``batch_max_frames``) and reports CPU microseconds per raw frame.

``--before DIR`` reads the same spool with another checkout's ``python/``
and native library, every round in a fresh child process, alternating, and
checks both produce the same bytes::

    PYTHONPATH=python python bench/batch_frames.py --before /work/before --rounds 5
"""

# mypy: disable-error-code="import-untyped"

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compare import WORKLOADS, burst
from s3bench import alternating, child_json, library_description, table, trees

HERE = Path(__file__).resolve().parent


def write_spool(db: Path, workload: str, txs: int) -> sqlite3.Connection:
    """``txs`` transactions through the extension, the WAL never
    checkpointed; the connection stays open so the WAL (and so the frames
    the records name) stays."""
    from bottomless.sqlite_vfs import register_python_sqlite

    register_python_sqlite()
    conn = sqlite3.connect(f"file:{db}?vfs=bottomless", uri=True, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("PRAGMA synchronous=NORMAL")
    w = next(x for x in WORKLOADS if x.name == workload)
    w.setup(conn)
    burst(conn, w, random.Random(1), txs)
    return conn


def read_all(db: str, batch_frames: int) -> dict[str, float | int | str]:
    """One round: every record, in batches, through frames_run."""
    from bottomless.frames import Chain
    from bottomless.spool import Record, RecordRun, Spool

    with Spool(db) as spool:
        records = list(spool.records())
        batches: list[list[Record]] = [[]]
        frames = 0
        for rec in records:
            batches[-1].append(rec)
            frames += rec.n_pages
            if frames >= batch_frames:
                batches.append([])
                frames = 0
        digest = hashlib.sha256()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for batch in batches:
            if batch:
                whole = sum(rec.n_pages for rec in batch)  # every frame: no cut
                raw, _, _ = spool.frames_run(RecordRun.of(batch), Chain(1, 2, 3, 4), whole)
                digest.update(raw)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    total = sum(rec.n_pages for rec in records)
    return {
        "frames": total,
        "batches": sum(1 for b in batches if b),
        "us_per_frame": 1e6 * cpu / total,
        "wall": wall,
        "digest": digest.hexdigest(),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="CPU per raw frame to build batches from a spool")
    p.add_argument("--workload", default="oltp", choices=[w.name for w in WORKLOADS])
    p.add_argument("--txs", type=int, default=40000, help="transactions written into the spool")
    p.add_argument("--batch-frames", type=int, default=10000, help="raw frames a batch takes (batch_max_frames)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--before", type=Path, help="another checkout to compare with, side by side")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(read_all(args.child[0], int(args.child[1]))))
        return 0
    # The spool is never shipped; at close its copy would pass the side
    # folder's cap and say so. Nothing here needs that history afterwards.
    os.environ.setdefault("LIBSQL_BOTTOMLESS_SPOOL_MAX_BYTES", str(1 << 40))
    checkouts = trees(args.before)
    with tempfile.TemporaryDirectory(prefix="bottomless-batch-frames-") as tmp:
        db = Path(tmp) / "db.sqlite"
        conn = write_spool(db, args.workload, args.txs)
        try:
            print(f"library: {library_description()}; {args.workload}, {args.txs} transactions")
            results: dict[str, list[dict[str, Any]]] = {name: [] for name in checkouts}
            for n in range(args.rounds):
                for name in alternating(list(checkouts), n):
                    result, _ = child_json(checkouts[name], HERE / "batch_frames.py", [str(db), str(args.batch_frames)])
                    results[name].append(result)
        finally:
            conn.close()
    base = statistics.median(float(r["us_per_frame"]) for r in results["this tree"])
    rows = []
    for name, runs in results.items():
        med = statistics.median(float(r["us_per_frame"]) for r in runs)
        rows.append([name, f"{runs[0]['frames']:,}", f"{runs[0]['batches']}", f"{med:.2f}", f"{med / base:.2f}"])
    print(table(["tree", "raw frames", "batches", f"CPU us/frame (median of {args.rounds})", "of this tree"], rows))
    digests = {str(r["digest"]) for runs in results.values() for r in runs}
    if len(digests) != 1:
        print("the trees built different batches from the same spool", file=sys.stderr)
        return 1
    print("every round built the same batches (sha256 of their bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

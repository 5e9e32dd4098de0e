"""Benchmark (issue 5): restore time and throughput, bottomless vs Litestream, side by side.

One database of about ``--mib`` MiB (rows of 1,000 hex characters, which
compress about 2:1) is built with plain SQLite and copied: one copy is
replicated by bottomless (``bottomless.connect()``: a snapshot, then each of
``--txs`` small UPDATE transactions shipped as its own batch, by
``batch_max_frames=1``), the other by ``litestream replicate`` (snapshot,
then the very same UPDATEs; with ``--litestream-sync each``, the default, a
``litestream sync -wait`` after each one so Litestream also holds one LTX
file per transaction before its own compaction runs). Both go to the same
moto S3 server (a child process that logs every request: s3bench.py).

Then each is restored (bottomless in this process with
``bottomless.restore.restore``, Litestream with ``litestream restore -o``),
alternating for ``--rounds``; the restored files must pass
``PRAGMA integrity_check`` and hold the same rows as their source.
``--profile`` runs the first bottomless restore under cProfile and prints
where its time goes.

    PYTHONPATH=python python bench/restore.py                 # 256 MiB, 2,000 batches
    PYTHONPATH=python python bench/restore.py --mib 64 --txs 500
"""

# mypy: disable-error-code="import-untyped"

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from s3bench import Litestream, S3Server, content_digest, integrity, library_description, litestream_version, mib, table

import bottomless
from bottomless import catalog
from bottomless.config import Config
from bottomless.replicator import wait_durable
from bottomless.restore import restore
from bottomless.s3 import S3Store

ROW_HEX = 1000  # characters per row: hex(randomblob(500))
BL_BUCKET = "restore-bottomless"
LS_BUCKET = "restore-litestream"
DB_ID = "restore-bench"


def populate(db: Path, target_mib: float) -> int:
    """A WAL-mode database of about ``target_mib`` MiB; returns its row count."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER NOT NULL, v TEXT NOT NULL)")
        rows = int(target_mib * 2**20 / (ROW_HEX + 40))
        step = 20_000
        for start in range(0, rows, step):
            count = min(step, rows - start)
            conn.execute("BEGIN")
            conn.execute(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT ?) "
                "INSERT INTO t(n, v) SELECT x, hex(randomblob(?)) FROM c",
                (count, ROW_HEX // 2),
            )
            conn.execute("COMMIT")
        conn.execute("CREATE INDEX t_n ON t(n)")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return rows
    finally:
        conn.close()


def updates(rows: int, count: int, seed: int = 5) -> list[tuple[int, str, int]]:
    """The small transactions: (n, v, id) for ``UPDATE t SET n=?, v=? WHERE id=?``, reproducible."""
    rng = random.Random(seed)
    return [
        (rng.randrange(1 << 30), rng.randbytes(ROW_HEX // 2).hex().upper(), rng.randrange(1, rows + 1))
        for _ in range(count)
    ]


def replicate_bottomless(db: Path, endpoint: str, txs: Sequence[tuple[int, str, int]]) -> tuple[int, float, float]:
    """Snapshot + one batch per transaction; returns (batches in S3, snapshot seconds, batches seconds)."""
    config = Config.from_env(
        endpoint=endpoint, bucket=BL_BUCKET, database_id=DB_ID, batch_max_frames=1, batch_interval_secs=0.05
    )
    t0 = time.perf_counter()
    conn = bottomless.connect(str(db), config=config, isolation_level=None)
    try:
        wait_durable(str(db), timeout=600)
        while conn.replicator.state is None:  # the snapshot is uploaded by the replicator thread
            time.sleep(0.05)
        t1 = time.perf_counter()
        for tx in txs:
            conn.execute("UPDATE t SET n = ?, v = ? WHERE id = ?", tx)
        wait_durable(str(db), timeout=600)
        t2 = time.perf_counter()
    finally:
        conn.close()
    store = S3Store(endpoint, BL_BUCKET)
    generations = catalog.list_generations(store, DB_ID)
    gen = catalog.load_generation(store, DB_ID, generations[0])
    if len(generations) != 1:
        raise RuntimeError(f"expected one generation, found {len(generations)}")
    return len(gen.batches), t1 - t0, t2 - t1


def replicate_litestream(
    ls: Litestream, db: Path, txs: Sequence[tuple[int, str, int]], sync_each: bool, autocheckpoint: bool
) -> tuple[float, float]:
    """Snapshot + the same transactions; returns (snapshot seconds, transactions seconds)."""
    t0 = time.perf_counter()
    ls.start()
    try:
        ls.sync(timeout=600)
        t1 = time.perf_counter()
        conn = sqlite3.connect(db, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=10000")
            if not autocheckpoint:
                conn.execute("PRAGMA wal_autocheckpoint=0")
            for tx in txs:
                conn.execute("UPDATE t SET n = ?, v = ? WHERE id = ?", tx)
                if sync_each:
                    ls.sync()
        finally:
            conn.close()
        ls.sync(timeout=600)
        t2 = time.perf_counter()
    finally:
        ls.stop()
    return t1 - t0, t2 - t1


def server_busy(server: S3Server, t0: float, t1: float) -> tuple[float, float]:
    """Seconds in [t0, t1) during which the S3 server had a request in flight
    (union of request intervals), and the longest single request."""
    spans = sorted((e.start, e.end) for e in server.events() if t0 <= e.start < t1)
    total, longest = 0.0, 0.0
    cur_start, cur_end = None, 0.0
    for start, end in spans:
        longest = max(longest, end - start)
        if cur_start is None or start > cur_end:
            if cur_start is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_start is not None:
        total += cur_end - cur_start
    return total, longest


def profiled_restore(endpoint: str, out: Path, top: int) -> tuple[float, str]:
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    restore(S3Store(endpoint, BL_BUCKET), DB_ID, str(out))
    profiler.disable()
    elapsed = time.perf_counter() - t0
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf)
    stats.sort_stats("cumulative").print_stats(top)
    buf.write("\n--- by own time ---\n")
    stats.sort_stats("tottime").print_stats(top)
    return elapsed, buf.getvalue()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Restore time and throughput: bottomless vs Litestream, same data.")
    p.add_argument("--mib", type=float, default=256.0, help="database size in MiB (default: 256)")
    p.add_argument("--txs", type=int, default=2000, help="small transactions after the snapshot (default: 2000)")
    p.add_argument("--rounds", type=int, default=1, help="alternating restore rounds per tool (default: 1)")
    p.add_argument(
        "--litestream-sync",
        choices=("each", "natural"),
        default="each",
        help="'each': litestream sync -wait after every transaction (one LTX file each, like bottomless's batches); "
        "'natural': Litestream's own 1 s cadence (default: each)",
    )
    p.add_argument(
        "--ls-no-autocheckpoint",
        action="store_true",
        help="PRAGMA wal_autocheckpoint=0 on Litestream's writer (default: SQLite's default, 1000 pages)",
    )
    p.add_argument("--profile", action="store_true", help="profile the first bottomless restore (cProfile)")
    p.add_argument("--profile-top", type=int, default=25, help="profile lines to print (default: 25)")
    p.add_argument("--dir", type=Path, default=None, help="directory for the databases (default: a temp dir)")
    args = p.parse_args(argv)
    if args.mib <= 0 or args.txs < 1 or args.rounds < 1:
        p.error("--mib must be > 0, --txs and --rounds >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bottomless-restore-", dir=args.dir) as tmp, S3Server() as server:
        work = Path(tmp)
        print(f"S3: moto in a child process at {server.endpoint}; {litestream_version()}", flush=True)
        print(f"library: {library_description()}")
        base = work / "base.db"
        t = time.perf_counter()
        rows = populate(base, args.mib)
        size = base.stat().st_size
        print(f"populated {mib(size)} ({rows:,} rows) in {time.perf_counter() - t:.1f} s", flush=True)
        txs = updates(rows, args.txs)
        bl_db, ls_db = work / "bl" / "db.sqlite", work / "ls" / "db.sqlite"
        for d in (bl_db, ls_db):
            d.parent.mkdir()
            shutil.copyfile(base, d)
        os.unlink(base)
        S3Store(server.endpoint, LS_BUCKET).ensure_bucket()

        batches, bl_snap_s, bl_tx_s = replicate_bottomless(bl_db, server.endpoint, txs)
        print(
            f"bottomless: snapshot {bl_snap_s:.1f} s, {args.txs} transactions -> {batches} batches in {bl_tx_s:.1f} s"
        )
        ls = Litestream(ls_db, server.endpoint, LS_BUCKET, DB_ID, work)
        ls_snap_s, ls_tx_s = replicate_litestream(
            ls, ls_db, txs, args.litestream_sync == "each", not args.ls_no_autocheckpoint
        )
        ls_objects = [e for e in server.events() if e.kind == "PUT" and e.path.startswith(f"/{LS_BUCKET}/")]
        print(
            f"litestream: snapshot {ls_snap_s:.1f} s, {args.txs} transactions in {ls_tx_s:.1f} s "
            f"({len(ls_objects)} PUTs)",
            flush=True,
        )

        bl_digest, ls_digest = content_digest(bl_db), content_digest(ls_db)
        if bl_digest != ls_digest:
            print("WARNING: the two sources differ (the workload is not the same)")

        times: dict[str, list[float]] = {"bottomless": [], "litestream": []}
        gets: dict[str, int] = {}
        busy: dict[str, tuple[float, float]] = {}
        checks: dict[str, tuple[str, bool, int]] = {}
        profile_text = ""
        for rnd in range(args.rounds):
            for tool in ("bottomless", "litestream"):
                out = work / f"restored-{tool}-{rnd}.db"
                t0 = time.time()
                if tool == "bottomless":
                    if args.profile and rnd == 0:
                        elapsed, profile_text = profiled_restore(server.endpoint, out, args.profile_top)
                    else:
                        p0 = time.perf_counter()
                        restore(S3Store(server.endpoint, BL_BUCKET), DB_ID, str(out))
                        elapsed = time.perf_counter() - p0
                else:
                    elapsed = ls.restore(out)
                t1 = time.time()
                times[tool].append(elapsed)
                counted = server.counts(t0, t1)
                gets[tool] = counted["GET"] + counted["LIST"]
                busy[tool] = server_busy(server, t0, t1)
                source = bl_db if tool == "bottomless" else ls_db
                checks[tool] = (integrity(out), content_digest(out) == content_digest(source), out.stat().st_size)
                print(f"  round {rnd + 1}: {tool} restore {elapsed:.2f} s", file=sys.stderr, flush=True)
                out.unlink()

    bl_t, ls_t = statistics.median(times["bottomless"]), statistics.median(times["litestream"])
    rows_out = []
    for tool, t_med, objects in (
        ("bottomless", bl_t, f"1 snapshot + {batches:,} batches"),
        ("litestream", ls_t, f"{len(ls_objects):,} PUT during replication"),
    ):
        ok, equal, out_size = checks[tool]
        rows_out.append(
            [
                tool,
                mib(out_size),
                objects,
                f"{gets[tool]:,}",
                f"{busy[tool][0]:.2f}",
                f"{busy[tool][1]:.2f}",
                f"{t_med:.2f}",
                " ".join(f"{x:.2f}" for x in times[tool]),
                f"{out_size / 2**20 / t_med:,.1f}",
                ok,
                "yes" if equal else "NO",
            ]
        )
    print()
    print(
        table(
            [
                "tool",
                "db size",
                "in S3",
                "GET+LIST in restore",
                "server busy s",
                "largest GET s",
                "restore s (median)",
                "rounds s",
                "MiB/s",
                "integrity",
                "equals source",
            ],
            rows_out,
            left=3,
        )
    )
    ratio = ls_t / bl_t
    print()
    print(f"speed-up bottomless vs litestream: {ratio:.2f}x (target >= 2x: {'met' if ratio >= 2 else 'NOT met'})")
    print(f"sources identical across tools: {'yes' if bl_digest == ls_digest else 'NO'}")
    if profile_text:
        print()
        print("cProfile of the first bottomless restore:")
        print(profile_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

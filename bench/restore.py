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

Then each is restored, each restore a process of its own whose peak RSS
is read when it ends (bottomless: ``bench/restore_run.py``, which calls
``bottomless.restore.restore``; Litestream: ``litestream restore -o``),
alternating for ``--rounds``, medians reported. Bottomless is also
restored from a local copy of its objects ("local apply": no network, the
ceiling of the restore's own side). The restored files must pass
``PRAGMA integrity_check`` and hold the same rows as their source. The S3
server's busy seconds (the union of its request intervals) show when a
restore waits on the server. ``--profile`` runs the first bottomless
restore under cProfile and prints where its time goes.

Each bottomless restore runs three ways: "bottomless" (the library's and
the CLI's default: one streaming GET of the snapshot), "bottomless-parts"
(``--part-size 16``: the snapshot in 16 MiB ranged parts fetched in
parallel, for a store where one connection carries a fraction of what a
restore takes; moto reads the whole object for every ranged GET) and
"bottomless-local". ``--server s3rver`` restores from a copy of the
objects in s3rver, which serves a range by reading only that range.
``--before DIR`` adds the restores of another checkout (its python/ and
built library), alternating with this one's: "before" (its default),
"before-stream" and "before-local". The local apply rate is printed with
and without the integrity check (the restore's own seconds less the
check's), so the apply's ceiling and the check's share are both visible.

    PYTHONPATH=python python bench/restore.py                 # 256 MiB, 2,000 batches, 3 rounds
    PYTHONPATH=python python bench/restore.py --mib 1024
    PYTHONPATH=python python bench/restore.py --mib 2048 --no-litestream --rounds 1   # peak RSS
    PYTHONPATH=python python bench/restore.py --server s3rver --before /path/to/older/checkout
"""

# mypy: disable-error-code="import-untyped"

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from restore_servers import Server, copy_bucket, s3rver
from s3bench import (
    CREDENTIALS,
    Litestream,
    S3Server,
    content_digest,
    integrity,
    library_description,
    litestream_binary,
    litestream_version,
    mib,
    table,
)

import bottomless
from bottomless import catalog
from bottomless.config import Config
from bottomless.replicator import wait_durable
from bottomless.s3 import S3Store

HERE = Path(__file__).resolve().parent
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
        conn.flush(timeout=600)  # past the snapshot, which connect()'s replicator (a child process) uploads
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


@dataclass
class Run:
    seconds: float  # wall time of the restoring process
    peak_rss: int  # bytes
    figures: dict[str, Any]
    cpu: float = 0.0  # its user + system CPU seconds: on a shared machine, wall time is mostly waiting for a core


def vm_hwm(pid: int | str) -> int:
    """Peak resident set of a process (``VmHWM``, bytes; 0 once it is gone).
    Unlike wait4's ru_maxrss it starts afresh at exec, so it does not count
    the pages a child shared with this process before exec."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str, str, float]:
    """Runs ``cmd``; (wall seconds, peak RSS bytes sampled every 10 ms, stdout, stderr, CPU seconds)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, vm_hwm(proc.pid))
            time.sleep(0.01)
        elapsed = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode:
        raise RuntimeError(f"{cmd[:3]} failed ({proc.returncode}): {stderr[-2000:]}")
    return elapsed, peak, stdout, stderr, cpu


@dataclass(frozen=True)
class Tree:
    """A checkout whose bench/restore_run.py and python/ restore (this one, or ``--before``)."""

    root: Path
    python: str

    def env(self, base: dict[str, str]) -> dict[str, str]:
        return {**base, "PYTHONPATH": str(self.root / "python")}


def restore_bottomless(
    tree: Tree, target: Server, out: Path, local: Path | None, profile: bool, part_mib: float | None
) -> tuple[Run, str]:
    cmd = [tree.python, str(tree.root / "bench" / "restore_run.py"), target.endpoint, BL_BUCKET, DB_ID, str(out)]
    if local is not None:
        cmd += ["--local", str(local)]
    if part_mib is not None:
        cmd += ["--part-mib", str(part_mib)]
    if profile:
        cmd.append("--profile")
    elapsed, rss, stdout, stderr, cpu = measured(cmd, tree.env(target.env()))
    figures = json.loads(stdout.strip().splitlines()[-1])
    return Run(elapsed, max(rss, figures.pop("peak_rss", 0)), figures, cpu), stderr


def restore_litestream(ls: Litestream, out: Path) -> Run:
    cmd = [litestream_binary(), "restore", "-config", str(ls.config), "-o", str(out), str(ls.db)]
    elapsed, rss, _, _, cpu = measured(cmd, ls.env())
    return Run(elapsed, rss, {}, cpu)


def mirror(endpoint: str, dest: Path) -> int:
    """Copies bottomless's objects to ``dest`` (one file per key); their bytes."""
    store = S3Store(endpoint, BL_BUCKET)
    total = 0
    for obj in store.list_objects(""):
        path = dest / obj.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(store.get(obj.key))
        total += obj.size
    return total


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Restore time and throughput: bottomless vs Litestream, same data.")
    p.add_argument("--mib", type=float, default=256.0, help="database size in MiB (default: 256)")
    p.add_argument("--txs", type=int, default=2000, help="small transactions after the snapshot (default: 2000)")
    p.add_argument("--rounds", type=int, default=3, help="alternating restore rounds per tool (default: 3)")
    p.add_argument("--no-litestream", action="store_true", help="bottomless only (the large memory runs)")
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
    p.add_argument(
        "--server",
        choices=("moto", "s3rver"),
        default="moto",
        help="where the restores read from: moto (where everything is replicated), or s3rver (npm) holding a copy "
        "of the objects, a server that reads only the range a ranged GET asks for (default: moto)",
    )
    p.add_argument(
        "--before",
        type=Path,
        default=None,
        help="also restore with the checkout at this path (its python/ and bench/restore_run.py, its built "
        "library), alternating with this one: before/after side by side",
    )
    p.add_argument("--before-python", default=sys.executable, help="the Python that runs --before's restores")
    p.add_argument(
        "--only",
        default=None,
        help="comma-separated restores to run (of bottomless, bottomless-parts, bottomless-local, before, "
        "before-stream, before-local, litestream; default: all)",
    )
    p.add_argument("--profile", action="store_true", help="profile the first bottomless restore (cProfile)")
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
        ls_objects: list[Any] = []
        if not args.no_litestream:
            ls_snap_s, ls_tx_s = replicate_litestream(
                ls, ls_db, txs, args.litestream_sync == "each", not args.ls_no_autocheckpoint
            )
            ls_objects = [e for e in server.events() if e.kind == "PUT" and e.path.startswith(f"/{LS_BUCKET}/")]
            print(
                f"litestream: snapshot {ls_snap_s:.1f} s, {args.txs} transactions in {ls_tx_s:.1f} s "
                f"({len(ls_objects)} PUTs)",
                flush=True,
            )
            if content_digest(bl_db) != content_digest(ls_db):
                print("WARNING: the two sources differ (the workload is not the same)")
        local = work / "mirror"
        print(f"local copy of bottomless's objects: {mib(mirror(server.endpoint, local))}", flush=True)

        moto = Server("moto", server.endpoint, CREDENTIALS, server.proc.pid if server.proc else 0)
        with contextlib.ExitStack() as stack:
            target = moto
            if args.server == "s3rver":
                target = stack.enter_context(s3rver())
                copied = sum(
                    copy_bucket(moto, target, b) for b in [BL_BUCKET] + ([] if args.no_litestream else [LS_BUCKET])
                )
                print(f"s3rver at {target.endpoint}: copied {mib(copied)} into it", flush=True)
                ls = Litestream(ls_db, target.endpoint, LS_BUCKET, DB_ID, work, target.credentials)
            this = Tree(HERE.parent, sys.executable)
            before = Tree(args.before.resolve(), args.before_python) if args.before else None
            # tool -> (tree, part size in MiB: None the library's default, 0 one streaming GET, local copy?)
            plans: dict[str, tuple[Tree, float | None, bool]] = {
                "bottomless": (this, None, False),
                "bottomless-parts": (this, 16, False),
                "bottomless-local": (this, None, True),
            }
            if before is not None:
                plans["before"] = (before, None, False)
                plans["before-stream"] = (before, 0, False)
                plans["before-local"] = (before, None, True)
            tools = list(plans) + ([] if args.no_litestream else ["litestream"])
            if args.only:
                tools = [t for t in tools if t in args.only.split(",")]
            runs: dict[str, list[Run]] = {tool: [] for tool in tools}
            gets: dict[str, list[int]] = {tool: [] for tool in tools}
            busy: dict[str, list[float]] = {tool: [] for tool in tools}
            cpu: dict[str, list[float]] = {tool: [] for tool in tools}
            checks: dict[str, tuple[str, bool, int]] = {}
            profile_text = ""
            for rnd in range(args.rounds):
                for tool in tools:
                    out = work / f"restored-{tool}-{rnd}.db"
                    t0, cpu0 = time.time(), target.cpu_seconds()
                    if tool == "litestream":
                        run = restore_litestream(ls, out)
                    else:
                        tree, part_mib, from_local = plans[tool]
                        profile = args.profile and rnd == 0 and tool == "bottomless"
                        run, err = restore_bottomless(
                            tree, target, out, local if from_local else None, profile, part_mib
                        )
                        if profile:
                            profile_text = err
                    t1 = time.time()
                    runs[tool].append(run)
                    cpu[tool].append(target.cpu_seconds() - cpu0)
                    if target is moto:
                        counted = server.counts(t0, t1)
                        gets[tool].append(counted["GET"] + counted["LIST"])
                        busy[tool].append(server_busy(server, t0, t1)[0])
                    source = ls_db if tool == "litestream" else bl_db
                    checks[tool] = (integrity(out), content_digest(out) == content_digest(source), out.stat().st_size)
                    print(
                        f"  round {rnd + 1}: {tool} restore {run.seconds:.2f} s, CPU {run.cpu:.2f} s, "
                        f"peak RSS {mib(run.peak_rss)}, "
                        f"load {os.getloadavg()[0]:.1f}, {json.dumps(run.figures)}",
                        file=sys.stderr,
                        flush=True,
                    )
                    out.unlink()

    med = {tool: statistics.median(r.seconds for r in runs[tool]) for tool in tools}
    rows_out = []
    for tool in tools:
        ok, equal, out_size = checks[tool]
        objects = (
            f"{len(ls_objects):,} PUT during replication"
            if tool == "litestream"
            else f"1 snapshot + {batches:,} batches"
        )
        inner = [r.figures.get("restore_seconds") for r in runs[tool] if r.figures]
        rows_out.append(
            [
                tool,
                mib(out_size),
                objects,
                f"{statistics.median(gets[tool]):,.0f}" if gets[tool] else "-",
                f"{statistics.median(busy[tool]):.2f}" if busy[tool] else "-",
                f"{statistics.median(cpu[tool]):.2f}",
                f"{med[tool]:.2f}",
                f"{statistics.median(r.cpu for r in runs[tool]):.2f}",
                " ".join(f"{r.seconds:.2f}" for r in runs[tool]),
                f"{statistics.median(inner):.2f}" if inner else "-",
                f"{out_size / 2**20 / med[tool]:,.1f}",
                mib(max(r.peak_rss for r in runs[tool])),
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
                "GET+LIST",
                "server busy s",
                "server CPU s",
                "process s (median)",
                "process CPU s",
                "rounds s",
                "restore() s",
                "MiB/s",
                "peak RSS",
                "integrity",
                "equals source",
            ],
            rows_out,
            left=3,
        )
    )
    print()
    for tool in [t for t in tools if t != "litestream"]:
        phases = [r.figures for r in runs[tool]]
        keys = [k for k in phases[0] if k.endswith("_seconds") and k != "restore_seconds"]
        start = statistics.median(r.seconds - r.figures["restore_seconds"] for r in runs[tool])
        print(
            f"{tool}, where the time goes (medians, s): start-up {start:.2f}, "
            + ", ".join(f"{k[: -len('_seconds')]} {statistics.median(p[k] for p in phases):.2f}" for k in keys)
        )
    print(f"S3 server: {target.name}; load average at the end {os.getloadavg()[0]:.1f} (2 cores)")
    for tool in [t for t in ("bottomless-local", "before-local") if t in med]:
        check = statistics.median(r.figures.get("integrity_seconds", 0.0) for r in runs[tool])
        print(
            f"local apply, {tool}: {out_size / 2**20 / med[tool]:,.1f} MiB/s with the integrity check "
            f"(target >= 800), {out_size / 2**20 / (med[tool] - check):,.1f} MiB/s without it; "
            f"the check (and the fsync beside it) {check:.2f} s, {check / med[tool]:.0%} of the process's seconds"
        )
    for tool in [t for t in ("bottomless", "bottomless-parts") if t in med]:
        print(f"end to end, {tool}: {out_size / 2**20 / med[tool]:,.1f} MiB/s (target >= 300)")
        if "litestream" in med:
            ratio = med["litestream"] / med[tool]
            verdict = "met" if ratio >= 4 else "NOT met"
            print(f"speed-up {tool} vs litestream: {ratio:.2f}x (target >= 4x: {verdict})")
    pairs = (("bottomless", "before"), ("bottomless", "before-stream"), ("bottomless-local", "before-local"))
    for tool, old in pairs:
        if tool in med and old in med:
            print(f"{tool} vs {old}: {med[old] / med[tool]:.2f}x faster (process seconds, medians)")
    if profile_text:
        print()
        print("cProfile of the first bottomless restore:")
        print(profile_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

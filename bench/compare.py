"""Benchmark (issue 8): bottomless vs Litestream 0.5, side by side, on named workloads.

One moto S3 server (a child process that logs every request it serves, so
requests are counted the same way for both tools: s3bench.py). For each
workload, alternating tools, each on a fresh database in its own folder:

1. write throughput: ``--txs``-scaled fixed number of transactions as fast as
   one writer can, with replication off (plain WAL, measured before and after
   the tools, averaged) and on (bottomless: ``bottomless.connect()``;
   Litestream: ``litestream replicate`` running on the database);
2. steady rate for ``--steady-seconds``: commit-to-S3 lag p50/p99 and
   requests per hour by kind; peak local disk beside the database (the
   spool folder or Litestream's ``.<db>-litestream`` folder, plus the WAL);
3. idle for ``--idle-seconds`` (starting ``--settle`` seconds after the last
   commit): requests per hour by kind;
4. stop replication, restore (bottomless in this process, ``litestream
   restore -o``), integrity check, compare rows with the source.

Lag, timed at the server for both tools (moto logs when it finished
receiving each PUT). bottomless: a thread polls the spool's ``acked_seq``
every 5 ms; a commit is durable when the server finished the last batch PUT
before its ack was seen (the ack follows that PUT; the time to the ack
itself, after the state's fsync, is printed too, as "ack p50/p99").
Litestream (no per-commit acknowledgement to observe): a commit belongs to
the first local level-0 LTX file written after it (file mtime), and is
durable when the server finished receiving that file's PUT. A commit that
lands during the few milliseconds between Litestream reading the WAL and
closing its LTX file is attributed to the next file, which can only
overstate Litestream's lag, by at most one sync interval, for those commits.

All connections use ``synchronous=NORMAL`` and SQLite's default
autocheckpoint (``--ls-no-autocheckpoint`` turns it off for Litestream's
writer). Litestream's replica is waited for by polling ``litestream ltx``
(s3bench.Litestream.wait_replicated), never ``litestream sync -wait``, which
in 0.5.17 lets later restores come out wrong (litestream_sync_wait.py); every workload is seeded, so
both tools' databases end with the same rows.

    PYTHONPATH=python python bench/compare.py                      # ~5 minutes
    PYTHONPATH=python python bench/compare.py --workload oltp --steady-seconds 60 --idle-seconds 120
"""

# mypy: disable-error-code="import-untyped"

from __future__ import annotations

import argparse
import bisect
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from replicate import Watcher
from s3bench import (
    KINDS,
    Litestream,
    S3Server,
    content_digest,
    dir_bytes,
    file_bytes,
    integrity,
    library_description,
    litestream_version,
    per_hour,
    percentile,
    table,
)

import bottomless
from bottomless.config import Config
from bottomless.replicator import wait_durable
from bottomless.restore import restore
from bottomless.s3 import S3Store
from bottomless.side_files import folder_of

BL_BUCKET = "compare-bottomless"
LS_BUCKET = "compare-litestream"
TOOLS: tuple[str, ...] = ("bottomless", "litestream")

TxFn = Callable[[sqlite3.Connection, random.Random], None]


# ---- workloads ---------------------------------------------------------------------


def _oltp_setup(conn: sqlite3.Connection) -> None:
    conn.executescript(
        """
        CREATE TABLE accounts(id INTEGER PRIMARY KEY, name TEXT NOT NULL, balance INTEGER NOT NULL);
        CREATE TABLE orders(id INTEGER PRIMARY KEY, account INTEGER NOT NULL, amount INTEGER NOT NULL,
                            note TEXT NOT NULL, at INTEGER NOT NULL);
        CREATE INDEX orders_account ON orders(account, at);
        CREATE TABLE events(id INTEGER PRIMARY KEY, kind TEXT NOT NULL, ref INTEGER NOT NULL, at INTEGER NOT NULL);
        CREATE INDEX events_kind ON events(kind, at);
        """
    )
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO accounts(id, name, balance) VALUES (?, ?, 1000000)", ((i, f"account-{i}") for i in range(10_000))
    )
    conn.execute("COMMIT")


def _oltp_tx(conn: sqlite3.Connection, rng: random.Random) -> None:
    account, amount, at = rng.randrange(10_000), rng.randrange(1, 500), rng.randrange(1 << 40)
    conn.execute("BEGIN")
    conn.execute("UPDATE accounts SET balance = balance - ? WHERE id = ?", (amount, account))
    cur = conn.execute(
        "INSERT INTO orders(account, amount, note, at) VALUES (?, ?, ?, ?)",
        (account, amount, "order " + rng.randbytes(24).hex(), at),
    )
    conn.execute("INSERT INTO events(kind, ref, at) VALUES (?, ?, ?)", (rng.choice("abcdefgh"), cur.lastrowid, at))
    conn.execute("COMMIT")


def _bulk_setup(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE items(id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v BLOB NOT NULL)")


def _bulk_tx(conn: sqlite3.Connection, rng: random.Random) -> None:
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO items(k, v) VALUES (?, ?)", [(rng.randrange(1 << 40), rng.randbytes(100)) for _ in range(1000)]
    )
    conn.execute("COMMIT")


BLOB_ROWS = 64
BLOB_BYTES = 64 * 1024


def _blob_setup(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO blobs(id, data) VALUES (?, zeroblob(?))", ((i, BLOB_BYTES) for i in range(BLOB_ROWS)))
    conn.execute("COMMIT")


def _blob_tx(conn: sqlite3.Connection, rng: random.Random) -> None:
    # Half random, half zeros: compressible about 2:1, as real blobs often are.
    data = rng.randbytes(BLOB_BYTES // 2) + bytes(BLOB_BYTES // 2)
    conn.execute("UPDATE blobs SET data = ? WHERE id = ?", (data, rng.randrange(BLOB_ROWS)))


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    setup: Callable[[sqlite3.Connection], None]
    tx: TxFn
    burst_txs: int  # transactions of the throughput phase (scaled by --scale)
    rate: float  # transactions per second of the steady phase


ARRIVALS_SEED = 7  # of the steady phase's commit times

WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "oltp",
        "BEGIN; UPDATE 1 of 10k accounts; INSERT order; INSERT event; COMMIT (3 tables, 2 secondary indexes)",
        _oltp_setup,
        _oltp_tx,
        4000,
        200.0,
    ),
    Workload("bulk", "BEGIN; INSERT 1,000 rows of 100 random bytes; COMMIT", _bulk_setup, _bulk_tx, 150, 5.0),
    Workload(
        "blob",
        f"UPDATE one of {BLOB_ROWS} rows with a new {BLOB_BYTES // 1024} KiB blob (half random)",
        _blob_setup,
        _blob_tx,
        600,
        20.0,
    ),
)


# ---- one run -----------------------------------------------------------------------


@dataclass
class RunResult:
    workload: str
    tool: str
    burst_tps: float = 0.0
    steady_tps: float = 0.0
    lag_p50: float = float("nan")
    lag_p99: float = float("nan")
    lag_unknown: int = 0
    ack_p50: float = float("nan")  # bottomless only: commit to the ack seen locally
    ack_p99: float = float("nan")
    steady_per_hour: dict[str, float] = field(default_factory=dict)
    idle_per_hour: dict[str, float] = field(default_factory=dict)
    side_bytes: int = 0
    wal_bytes: int = 0
    db_bytes: int = 0
    restore_secs: float = 0.0
    integrity: str = ""
    equal: bool = False
    digest: str = ""


class DiskSampler(threading.Thread):
    """Peak bytes of the side folder and of the WAL, sampled every 0.25 s."""

    def __init__(self, side: Path, wal: Path) -> None:
        super().__init__(name="disk-sampler", daemon=True)
        self.side, self.wal = side, wal
        self.peak_side = 0
        self.peak_wal = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.peak_side = max(self.peak_side, dir_bytes(self.side))
            self.peak_wal = max(self.peak_wal, file_bytes(self.wal))
            self.stop_event.wait(0.25)


def burst(
    conn: sqlite3.Connection, w: Workload, rng: random.Random, count: int, latencies: list[float] | None = None
) -> float:
    """tx/s of ``count`` transactions back to back; each one's seconds go
    to ``latencies`` when given."""
    t0 = time.perf_counter()
    if latencies is None:
        for _ in range(count):
            w.tx(conn, rng)
    else:
        for _ in range(count):
            start = time.perf_counter()
            w.tx(conn, rng)
            latencies.append(time.perf_counter() - start)
    return count / (time.perf_counter() - t0)


def steady(conn: sqlite3.Connection, w: Workload, rng: random.Random, count: int) -> list[float]:
    """Commit ``count`` transactions at ``w.rate`` on average; returns each
    one's commit time. They start at random (Poisson) times, the same for
    every tool: at a fixed rate, the phase between the commits and a tool's
    one-second tick alone would set the median lag (bulk's 5 commits a
    second: up to 100 ms either way, by luck)."""
    arrivals = random.Random(ARRIVALS_SEED)
    out = [0.0] * count
    t0 = time.time()
    at = 0.0
    for i in range(count):
        at += arrivals.expovariate(w.rate)
        delay = t0 + at - time.time()
        if delay > 0:
            time.sleep(delay)
        w.tx(conn, rng)
        out[i] = time.time()
    return out


def measure_off(work: Path, w: Workload, count: int) -> float:
    db = work / f"off-{w.name}-{time.monotonic_ns()}.db"
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("PRAGMA synchronous=NORMAL")
        w.setup(conn)
        return burst(conn, w, random.Random(1), count)
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)


def run_bottomless(server: S3Server, work: Path, w: Workload, args: argparse.Namespace) -> RunResult:
    r = RunResult(w.name, "bottomless")
    folder = work / f"bl-{w.name}"
    folder.mkdir()
    db = folder / "db.sqlite"
    cfg = Config.from_env(endpoint=server.endpoint, bucket=BL_BUCKET, database_id=f"cmp-{w.name}")
    conn = bottomless.connect(str(db), config=cfg, isolation_level=None)
    sampler = DiskSampler(Path(folder_of(db)), Path(f"{db}-wal"))
    try:
        conn.execute("PRAGMA synchronous=NORMAL")
        w.setup(conn)
        rng = random.Random(1)
        r.burst_tps = burst(conn, w, rng, int(w.burst_txs * args.scale))
        wait_durable(str(db), timeout=300)
        time.sleep(1.5)
        watcher = Watcher(str(db), 0.005)
        base = watcher.acked
        watcher.start()
        sampler.start()
        count = int(w.rate * args.steady_seconds)
        committed = steady(conn, w, rng, count)
        sampler.stop_event.set()
        t_end = committed[-1]
        deadline = time.time() + 300
        while watcher.acked < base + count:  # the watcher, not wait_durable: it must see the last ack itself
            if time.time() > deadline:
                raise RuntimeError(f"commits up to seq {base + count} not durable after 300 s")
            time.sleep(0.01)
        watcher.stop_event.set()
        watcher.join()
        acks = [watcher.durable[base + 1 + i] for i in range(count)]
        to_ack = [a - c for a, c in zip(acks, committed, strict=True)]
        r.ack_p50, r.ack_p99 = percentile(to_ack, 50), percentile(to_ack, 99)
        puts = sorted(
            e.end
            for e in server.events()
            if e.kind == "PUT" and e.status == 200 and e.path.startswith(f"/{BL_BUCKET}/cmp-{w.name}-")
        )
        lags: list[float] = []
        for ack, tc in zip(acks, committed, strict=True):
            landed = bisect.bisect_right(puts, ack)  # the batch's PUT ended before its ack was written
            if landed == 0:
                r.lag_unknown += 1
            else:
                lags.append(puts[landed - 1] - tc)
        r.steady_tps = count / (t_end - committed[0]) if count > 1 else 0.0
        r.lag_p50, r.lag_p99 = percentile(lags, 50), percentile(lags, 99)
        r.steady_per_hour = per_hour(server.counts(committed[0], t_end), t_end - committed[0])
        idle_start = max(time.time(), t_end + args.settle)
        time.sleep(idle_start + args.idle_seconds - time.time())
        r.idle_per_hour = per_hour(server.counts(idle_start, idle_start + args.idle_seconds), args.idle_seconds)
    finally:
        sampler.stop_event.set()
        conn.close()
    r.side_bytes, r.wal_bytes = sampler.peak_side, sampler.peak_wal
    finish(r, db, lambda out: restore(S3Store(server.endpoint, BL_BUCKET), f"cmp-{w.name}", str(out)), folder)
    return r


def run_litestream(server: S3Server, work: Path, w: Workload, args: argparse.Namespace) -> RunResult:
    r = RunResult(w.name, "litestream")
    folder = work / f"ls-{w.name}"
    folder.mkdir()
    db = folder / "db.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    if args.ls_no_autocheckpoint:
        conn.execute("PRAGMA wal_autocheckpoint=0")
    ls = Litestream(db, server.endpoint, LS_BUCKET, f"cmp-{w.name}", work)
    ls.start()
    sampler = DiskSampler(ls.local_dir(), Path(f"{db}-wal"))
    try:
        w.setup(conn)
        rng = random.Random(1)
        r.burst_tps = burst(conn, w, rng, int(w.burst_txs * args.scale))
        ls.wait_replicated(timeout=300)
        time.sleep(1.5)
        sampler.start()
        count = int(w.rate * args.steady_seconds)
        committed = steady(conn, w, rng, count)
        sampler.stop_event.set()
        t_end = committed[-1]
        local = sorted(ls.local_ltx(), key=lambda item: item[1])  # before L0 retention can drop any
        r.steady_tps = count / (t_end - committed[0]) if count > 1 else 0.0
        r.steady_per_hour = per_hour(server.counts(committed[0], t_end), t_end - committed[0])
        idle_start = max(time.time(), t_end + args.settle)
        time.sleep(idle_start + args.idle_seconds - time.time())
        r.idle_per_hour = per_hour(server.counts(idle_start, idle_start + args.idle_seconds), args.idle_seconds)
        local = sorted(set(local) | set(ls.local_ltx()), key=lambda item: item[1])
        uploaded: dict[str, float] = {}
        prefix = f"/{LS_BUCKET}/cmp-{w.name}/0000/"
        for e in server.events():
            if e.kind == "PUT" and e.path.startswith(prefix) and e.status == 200:
                uploaded.setdefault(e.path[len(prefix) :], e.end)
        lags: list[float] = []
        j = 0
        for tc in committed:
            while j < len(local) and local[j][1] < tc:
                j += 1
            if j < len(local) and local[j][0] in uploaded:
                lags.append(uploaded[local[j][0]] - tc)
            else:
                r.lag_unknown += 1
        r.lag_p50, r.lag_p99 = percentile(lags, 50), percentile(lags, 99)
    finally:
        sampler.stop_event.set()
        conn.close()
        ls.stop()
    r.side_bytes, r.wal_bytes = sampler.peak_side, sampler.peak_wal
    finish(r, db, ls.restore, folder)
    return r


def finish(r: RunResult, db: Path, do_restore: Callable[[Path], object], folder: Path) -> None:
    out = folder / "restored.sqlite"
    r.db_bytes = db.stat().st_size
    t0 = time.perf_counter()
    do_restore(out)
    r.restore_secs = time.perf_counter() - t0
    r.integrity = integrity(out)
    r.digest = content_digest(db)
    r.equal = content_digest(out) == r.digest


# ---- report -------------------------------------------------------------------------


def kinds(per_h: dict[str, float]) -> str:
    return "/".join(f"{per_h.get(k, 0):,.0f}" for k in KINDS)


def report(results: Sequence[RunResult], off: dict[str, float]) -> str:
    rows = []
    for r in results:
        rows.append(
            [
                r.workload,
                r.tool,
                f"{off[r.workload]:,.0f}",
                f"{r.burst_tps:,.0f}",
                f"{r.burst_tps / off[r.workload]:.2f}",
                f"{r.steady_tps:,.0f}",
                f"{r.lag_p50 * 1000:,.0f}",
                f"{r.lag_p99 * 1000:,.0f}" + (f" ({r.lag_unknown} n/a)" if r.lag_unknown else ""),
                "-" if r.ack_p50 != r.ack_p50 else f"{r.ack_p50 * 1000:,.0f}/{r.ack_p99 * 1000:,.0f}",
                kinds(r.steady_per_hour),
                kinds(r.idle_per_hour),
                f"{r.side_bytes / 2**20:,.2f}",
                f"{r.wal_bytes / 2**20:,.2f}",
                f"{r.db_bytes / 2**20:,.1f}",
                f"{r.restore_secs:.2f}",
                r.integrity if len(r.integrity) < 20 else r.integrity[:17] + "...",
                "yes" if r.equal else "NO",
            ]
        )
    header = [
        "workload",
        "tool",
        "tx/s off",
        "tx/s on",
        "on/off",
        "steady tx/s",
        "lag p50 ms",
        "lag p99 ms",
        "ack p50/p99 ms",
        "req/h steady PUT/GET/LIST/DEL",
        "req/h idle PUT/GET/LIST/DEL",
        "side dir MiB",
        "WAL MiB",
        "db MiB",
        "restore s",
        "integrity",
        "= source",
    ]
    return table(header, rows, left=2)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    names = [w.name for w in WORKLOADS]
    p = argparse.ArgumentParser(description="bottomless vs Litestream 0.5 on named workloads, one table.")
    p.add_argument("--workload", action="append", choices=names, help="run only this workload (repeatable)")
    p.add_argument("--steady-seconds", type=float, default=15.0, help="steady-rate phase per run (default: 15)")
    p.add_argument("--idle-seconds", type=float, default=20.0, help="idle window per run (default: 20)")
    p.add_argument("--settle", type=float, default=3.0, help="seconds after the last commit before idle (default: 3)")
    p.add_argument("--scale", type=float, default=1.0, help="multiplies the throughput phase's transactions")
    p.add_argument(
        "--ls-no-autocheckpoint",
        action="store_true",
        help="PRAGMA wal_autocheckpoint=0 on Litestream's writer (default: SQLite's default, 1000 pages)",
    )
    p.add_argument("--dir", type=Path, default=None, help="directory for the databases (default: a temp dir)")
    args = p.parse_args(argv)
    if min(args.steady_seconds, args.idle_seconds, args.scale) <= 0 or args.settle < 0:
        p.error("durations and --scale must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workloads = [w for w in WORKLOADS if not args.workload or w.name in args.workload]
    results: list[RunResult] = []
    off: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bottomless-compare-", dir=args.dir) as tmp, S3Server() as server:
        work = Path(tmp)
        S3Store(server.endpoint, LS_BUCKET).ensure_bucket()
        print(f"S3: moto in a child process at {server.endpoint}, requests counted at the server")
        print(f"library: {library_description()}")
        print(
            f"litestream {litestream_version()} (defaults: 1 s sync interval"
            f"{'; writer with wal_autocheckpoint=0' if args.ls_no_autocheckpoint else ''}); "
            "bottomless batch interval 1 s"
        )
        for w in workloads:
            print(
                f"  {w.name}: {w.description}; throughput phase {int(w.burst_txs * args.scale)} txs, "
                f"steady {w.rate:g} tx/s"
            )
        print(flush=True)
        for i, w in enumerate(workloads):
            offs = [measure_off(work, w, int(w.burst_txs * args.scale))]
            order = TOOLS if i % 2 == 0 else TOOLS[::-1]  # alternate who goes first
            for tool in order:
                runner = run_bottomless if tool == "bottomless" else run_litestream
                r = runner(server, work, w, args)
                results.append(r)
                print(
                    f"  {w.name}/{tool}: {r.burst_tps:,.0f} tx/s, lag p99 {r.lag_p99 * 1000:,.0f} ms, "
                    f"restore {r.restore_secs:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
            offs.append(measure_off(work, w, int(w.burst_txs * args.scale)))
            off[w.name] = statistics.mean(offs)
    print(report(results, off))
    print()
    for w in workloads:
        digests = {r.digest for r in results if r.workload == w.name}
        print(f"{w.name}: both sources hold the same rows: {'yes' if len(digests) == 1 else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

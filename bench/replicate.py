"""Benchmark (issue 4): commit-to-S3 lag and S3 requests per hour at a steady write rate.

For each rate (default 200 and 2,000 transactions per second) a fresh
database is opened with ``bottomless.connect()`` against moto's S3 server
(in a child process, every request logged at the server: see s3bench.py).
A writer commits one small INSERT per transaction on a fixed schedule for
``--seconds``; it records the time each transaction's COMMIT returned, by
spool sequence number (one per transaction). A watcher thread polls the
spool's ``acked_seq`` every ``--poll-ms`` and records when each sequence
number became durable in S3. Lag = durable time - commit time.

Requests per hour are counted at the server: "steady" over the writing
window, "idle" over ``--idle-seconds`` that start once everything written is
in S3 (at least one batch interval + 0.5 s after the last commit),
extrapolated to an hour.

Run from the repository root (build the library first)::

    python -m ziglang build -Doptimize=ReleaseFast
    PYTHONPATH=python python bench/replicate.py               # 2 x 60 s + idle windows
    PYTHONPATH=python python bench/replicate.py --seconds 10  # quicker
"""

# mypy: disable-error-code="import-untyped"

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from s3bench import KINDS, S3Server, library_description, per_hour, percentile, table

import bottomless
from bottomless.config import Config
from bottomless.replicator import wait_durable
from bottomless.spool import Spool

ROW_BYTES = 100
BUCKET = "replicate-bench"


@dataclass(frozen=True)
class RateResult:
    rate: int
    transactions: int
    achieved_tps: float
    seconds: float
    lag_p50: float
    lag_p99: float
    lag_max: float
    steady_per_hour: dict[str, float]
    idle_per_hour: dict[str, float]
    idle_seconds: float
    batches: int


class Watcher(threading.Thread):
    """Polls ``acked_seq`` and records when each sequence number became durable."""

    def __init__(self, db: str, poll: float) -> None:
        super().__init__(name="acked-watcher", daemon=True)
        self.spool = Spool(db)
        self.poll = poll
        self.durable: dict[int, float] = {}
        self.stop_event = threading.Event()
        self.acked = self.spool.stats().acked_seq

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                acked = self.spool.stats().acked_seq
                if acked > self.acked:
                    now = time.time()
                    for seq in range(self.acked + 1, acked + 1):
                        self.durable[seq] = now
                    self.acked = acked
                self.stop_event.wait(self.poll)
        finally:
            self.spool.close()


def run_rate(server: S3Server, work: Path, rate: int, args: argparse.Namespace) -> RateResult:
    db = work / f"rate-{rate}.db"
    config = Config.from_env(
        endpoint=server.endpoint,
        bucket=BUCKET,
        database_id=f"rate-{rate}",
        batch_interval_secs=args.interval,
    )
    conn = bottomless.connect(str(db), config=config, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB)")
        # Not conn.flush(): with nothing left to ship it leaves the replicator
        # thread spinning until the next commit (see the report).
        wait_durable(str(db), timeout=60)
        time.sleep(args.interval + 0.5)  # the setup's requests stay out of the steady window
        watcher = Watcher(str(db), args.poll_ms / 1000)
        base = watcher.acked
        watcher.start()
        n = int(rate * args.seconds)
        committed = [0.0] * n
        payload = b"x" * ROW_BYTES
        t0 = time.time()
        for i in range(n):
            due = t0 + i / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            conn.execute("INSERT INTO t(v) VALUES (?)", (payload,))
            committed[i] = time.time()
        t_end = committed[-1]
        with Spool(str(db)) as spool:
            last = spool.stats().last_seq
        if last != base + n:
            raise RuntimeError(f"expected spool seq {base + n} after {n} commits, found {last}")
        deadline = time.time() + 120
        while watcher.acked < last:
            if time.time() > deadline:
                raise RuntimeError(f"commits up to {last} not durable after 120 s (acked {watcher.acked})")
            time.sleep(0.01)
        idle_start = max(time.time(), t_end + args.interval + 0.5) + 0.1
        time.sleep(max(0.0, idle_start - time.time()) + args.idle_seconds)
        idle_end = idle_start + args.idle_seconds
        watcher.stop_event.set()
        watcher.join()
        lags = [watcher.durable[base + 1 + i] - committed[i] for i in range(n)]
        steady = server.counts(t0, t_end)
        idle = server.counts(idle_start, idle_end)
        batches = sum(
            1
            for e in server.events()
            if t0 <= e.start < idle_end
            and e.kind == "PUT"
            and e.path.rsplit(".", 1)[-1] in ("zstd", "gz", "raw")
            and "/db." not in e.path
        )
        return RateResult(
            rate=rate,
            transactions=n,
            achieved_tps=n / (t_end - t0),
            seconds=t_end - t0,
            lag_p50=percentile(lags, 50),
            lag_p99=percentile(lags, 99),
            lag_max=max(lags),
            steady_per_hour=per_hour(steady, t_end - t0),
            idle_per_hour=per_hour(idle, args.idle_seconds),
            idle_seconds=args.idle_seconds,
            batches=batches,
        )
    finally:
        conn.close()


def report(results: Sequence[RateResult], interval: float) -> str:
    lag_target = interval + 0.5
    put_target = 3600.0 / interval
    rows = []
    for r in results:
        rows.append(
            [
                f"{r.rate:,}",
                f"{r.achieved_tps:,.0f}",
                f"{r.transactions:,}",
                f"{r.batches:,}",
                f"{r.lag_p50 * 1000:,.0f}",
                f"{r.lag_p99 * 1000:,.0f}",
                f"{r.lag_max * 1000:,.0f}",
                "yes" if r.lag_p99 <= lag_target else "NO",
                f"{r.steady_per_hour['PUT']:,.0f}",
                "yes" if r.steady_per_hour["PUT"] <= put_target else "NO",
                " ".join(f"{k}={r.steady_per_hour[k]:,.0f}" for k in KINDS if k != "PUT"),
                f"{sum(r.idle_per_hour.values()):,.0f}",
                "yes" if sum(r.idle_per_hour.values()) == 0 else "NO",
            ]
        )
    header = [
        "tx/s target",
        "tx/s achieved",
        "txs",
        "batches",
        "lag p50 ms",
        "lag p99 ms",
        "lag max ms",
        f"p99<={lag_target:g}s",
        "PUT/h steady",
        f"<={put_target:,.0f}",
        "other req/h steady",
        "req/h idle",
        "idle=0",
    ]
    return table(header, rows, left=1)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Commit-to-S3 lag and S3 requests per hour at steady write rates.")
    p.add_argument("--seconds", type=float, default=60.0, help="steady writing time per rate (default: 60)")
    p.add_argument(
        "--rates", type=int, nargs="+", default=[200, 2000], help="transactions per second (default: 200 2000)"
    )
    p.add_argument("--idle-seconds", type=float, default=20.0, help="idle window after the last commit (default: 20)")
    p.add_argument("--interval", type=float, default=1.0, help="batch interval in seconds (default: 1.0)")
    p.add_argument("--poll-ms", type=float, default=5.0, help="acked_seq polling period (default: 5)")
    p.add_argument("--dir", type=Path, default=None, help="directory for the databases (default: a temp dir)")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = p.parse_args(argv)
    if args.seconds <= 0 or args.idle_seconds <= 0 or args.interval <= 0 or min(args.rates) <= 0:
        p.error("--seconds, --idle-seconds, --interval and --rates must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results: list[RateResult] = []
    with tempfile.TemporaryDirectory(prefix="bottomless-replicate-", dir=args.dir) as tmp, S3Server() as server:
        print(f"S3: moto in a child process at {server.endpoint}, requests counted at the server")
        print(f"library: {library_description()}")
        print(
            f"workload: one {ROW_BYTES}-byte INSERT per transaction (autocommit, synchronous=NORMAL), "
            f"{args.seconds:g} s per rate, batch interval {args.interval:g} s, idle window {args.idle_seconds:g} s",
            flush=True,
        )
        for rate in args.rates:
            r = run_rate(server, Path(tmp), rate, args)
            print(
                f"  {rate} tx/s: achieved {r.achieved_tps:,.0f}, lag p50 {r.lag_p50 * 1000:.0f} ms "
                f"p99 {r.lag_p99 * 1000:.0f} ms max {r.lag_max * 1000:.0f} ms",
                file=sys.stderr,
                flush=True,
            )
            results.append(r)
    print()
    print(report(results, args.interval))
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

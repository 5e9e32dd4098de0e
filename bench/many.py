"""Benchmark (issue 17): a thousand databases in one replicator process.

One ``bottomless-cli replicate --dir DIR`` process ships every database in a
folder to moto's S3 server, which runs in a child process of its own and
logs every request it serves (s3bench.py). Measured from outside the
replicator, never from its own metrics:

- resident memory per idle database over the process's base: the process
  is run twice, with ``--small`` databases and with ``--databases``, each
  time once every database has its first generation in S3 and the server
  has been quiet for a while; (RSS_large - RSS_small) / (large - small);
- CPU while every database is idle: utime + stime of the process (all its
  threads, /proc/PID/stat) over ``--idle-seconds``, as a fraction of one core;
- S3 requests while idle, counted at the server over the same window;
- commit-to-S3 lag at each of ``--rates`` (writes per second, each to a
  database picked at random): the writer commits through the bottomless VFS
  and notes each commit's spool sequence number and time; a watcher reads
  each written database's acknowledged sequence every ``--poll-ms`` and
  notes when the commit became durable in S3 (as bench/replicate.py does).

Run from the repository root (build the library first)::

    python -m ziglang build -Doptimize=ReleaseFast
    PYTHONPATH=python python bench/many.py                            # 1,000 databases
    PYTHONPATH=python python bench/many.py --databases 200 --seconds 10  # quicker
"""

# mypy: disable-error-code="import-untyped"

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from s3bench import CREDENTIALS, KINDS, S3Server, library_description, percentile, table

from bottomless.s3 import S3Store
from bottomless.side_files import SideFolder
from bottomless.spool import Spool
from bottomless.sqlite_vfs import register_python_sqlite
from bottomless.state import load_state

BUCKET = "many-bench"
ROW_BYTES = 100
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Litestream's figure for many databases, as its users report it.
LITESTREAM_SOURCE = "https://github.com/benbjohnson/litestream/issues/1051"
LITESTREAM_FIGURE = "~1 MB/db by users' accounts; #1051: 383 dbs passed 1.5 GB (~4 MB/db, 0.5.3)"


# ---- the process under test ------------------------------------------------------------


def make_databases(folder: Path, count: int) -> list[Path]:
    """``count`` small WAL databases, written before the replicator starts
    (its first snapshot of each holds them)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"tenant-{i:05d}.db"
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        conn.execute("INSERT INTO t(v) VALUES (?)", (b"x" * ROW_BYTES,))
        conn.close()
        paths.append(path)
    return paths


class Replicator:
    """``bottomless-cli replicate --dir FOLDER`` in a child process."""

    def __init__(self, folder: Path, endpoint: str, interval: float, threads: int | None, log: Path) -> None:
        self.folder, self.log = folder, log
        env = {
            **os.environ,
            **CREDENTIALS,
            "LIBSQL_BOTTOMLESS_BATCH_INTERVAL_SECS": str(interval),
            "LIBSQL_BOTTOMLESS_AUTOSTART": "0",
            "BOTTOMLESS_LOG": "warn",
        }
        env.pop("LIBSQL_BOTTOMLESS_DATABASE_ID", None)
        cmd = [sys.executable, "-m", "bottomless_cli", "-e", endpoint, "-b", BUCKET, "replicate", "--dir", str(folder)]
        if threads is not None:
            cmd += ["--threads", str(threads)]
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_started(self, paths: Sequence[Path], timeout: float) -> float:
        """Until every database has a generation in S3 (its state file beside
        it); returns how long that took."""
        t0 = time.monotonic()
        pending = list(paths)
        while pending:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the replicator exited {self.proc.returncode}; see {self.log}")
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"{len(pending)} databases have no generation after {timeout:.0f}s; see {self.log}")
            pending = [p for p in pending if load_state(SideFolder.of(p).path) is None]
            time.sleep(0.5)
        return time.monotonic() - t0

    def rss(self) -> int:
        return _status_field(self.pid, "VmRSS") * 1024

    def threads(self) -> int:
        return _status_field(self.pid, "Threads")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def cpu_secs(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9


def _status_field(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {name}")


def wait_quiet(server: S3Server, quiet: float, timeout: float) -> None:
    """Until the server has served no request for ``quiet`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        events = server.events()
        last = max((e.start for e in events), default=0.0)
        if time.time() - last >= quiet:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the S3 server never went quiet for {quiet:g}s within {timeout:.0f}s")


# ---- lag -----------------------------------------------------------------------------------


@dataclass
class Pending:
    seq: int
    committed: float


@dataclass
class LagRun:
    rate: float
    writes: int
    achieved: float
    lags: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return percentile(self.lags, 50)

    @property
    def p99(self) -> float:
        return percentile(self.lags, 99)

    @property
    def max(self) -> float:
        return max(self.lags, default=float("nan"))


class Writers:
    """Connections through the bottomless VFS (capture only: the process
    under test ships), opened on first use, with each database's spool."""

    def __init__(self) -> None:
        register_python_sqlite()
        self.conns: dict[Path, sqlite3.Connection] = {}
        self.spools: dict[Path, Spool] = {}

    def commit(self, path: Path) -> int:
        conn = self.conns.get(path)
        if conn is None:
            conn = self.conns[path] = sqlite3.connect(f"file:{path}?vfs=bottomless", uri=True, isolation_level=None)
            conn.execute("PRAGMA synchronous=NORMAL")
            self.spools[path] = Spool(str(path))
        conn.execute("INSERT INTO t(v) VALUES (?)", (b"y" * ROW_BYTES,))
        return self.spools[path].stats().last_seq  # this commit's: the only writer of the database

    def acked(self, path: Path) -> int:
        return self.spools[path].stats().acked_seq

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()
        for spool in self.spools.values():
            spool.close()


def measure_lag(writers: Writers, paths: Sequence[Path], rate: float, seconds: float, poll: float) -> LagRun:
    rng = random.Random(17)
    pending: dict[Path, list[Pending]] = {}
    lock = threading.Lock()
    run = LagRun(rate, int(rate * seconds), 0.0)
    done = threading.Event()

    def watch() -> None:
        while True:
            with lock:
                waiting = [p for p, items in pending.items() if items]
            if not waiting and done.is_set():
                return
            now = time.time()
            for path in waiting:
                acked = writers.acked(path)
                with lock:
                    items = pending[path]
                    while items and items[0].seq <= acked:
                        run.lags.append(now - items.pop(0).committed)
            time.sleep(poll)

    watcher = threading.Thread(target=watch, name="acked-watcher", daemon=True)
    watcher.start()
    t0 = time.time()
    last = t0
    for i in range(run.writes):
        delay = t0 + i / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        path = paths[rng.randrange(len(paths))]
        seq = writers.commit(path)
        last = time.time()
        with lock:
            pending.setdefault(path, []).append(Pending(seq, last))
    run.achieved = run.writes / max(1e-9, last - t0) if run.writes > 1 else rate
    done.set()
    watcher.join(120 + seconds)
    if watcher.is_alive() or len(run.lags) != run.writes:
        raise RuntimeError(f"only {len(run.lags)} of {run.writes} commits reached S3 within 120 s")
    return run


# ---- status ------------------------------------------------------------------------------


@dataclass
class StatusRun:
    seconds: float
    requests: int
    rows: int
    shipped_by_it: int  # rows with a generation, shipped by the process under test


def measure_status(server: S3Server, rep: Replicator, folder: Path, expected: int) -> StatusRun:
    """``bottomless-cli status --dir`` over every database, while they are shipped."""
    env = {**os.environ, **CREDENTIALS}
    t0 = time.time()
    out = subprocess.run(
        [sys.executable, "-m", "bottomless_cli", "-e", server.endpoint, "-b", BUCKET, "status", "--dir", str(folder),
         "--json"],
        env=env, capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    t1 = time.time()
    rows = json.loads(out.stdout)
    if len(rows) != expected:
        raise RuntimeError(f"status listed {len(rows)} databases, not {expected}")
    mine = sum(1 for r in rows if r["generation"] and r["replicator"]["pid"] == rep.pid)
    return StatusRun(t1 - t0, sum(server.counts(t0, t1).values()), len(rows), mine)


# ---- the run ---------------------------------------------------------------------------


@dataclass
class Result:
    databases: int
    small: int
    startup_secs: float
    rss_small: int
    rss_large: int
    per_db_bytes: float
    threads: int
    fds: int
    idle_secs: float
    idle_cpu: float  # fraction of one core
    idle_requests: dict[str, int]
    lag: list[LagRun]
    interval: float
    status: StatusRun
    exit_status: int


def run_process(
    server: S3Server, folder: Path, paths: list[Path], args: argparse.Namespace, log: Path
) -> tuple[Replicator, float, int]:
    rep = Replicator(folder, server.endpoint, args.interval, args.threads, log)
    startup = rep.wait_started(paths, timeout=args.start_timeout)
    wait_quiet(server, args.quiet, timeout=args.start_timeout)
    return rep, startup, rep.rss()


def bench(server: S3Server, work: Path, args: argparse.Namespace) -> Result:
    S3Store(server.endpoint, BUCKET).ensure_bucket()
    small_paths = make_databases(work / "small", args.small)
    large_paths = make_databases(work / "large", args.databases)
    print(f"made {args.small} + {args.databases:,} databases", file=sys.stderr, flush=True)

    small, _, rss_small = run_process(server, work / "small", small_paths, args, work / "small.log")
    small.stop()
    print(f"  {args.small} databases: RSS {rss_small / 2**20:.1f} MiB", file=sys.stderr, flush=True)

    rep, startup, rss_large = run_process(server, work / "large", large_paths, args, work / "large.log")
    print(
        f"  {args.databases:,} databases: first generations in {startup:.0f} s, RSS {rss_large / 2**20:.1f} MiB",
        file=sys.stderr,
        flush=True,
    )
    try:
        threads, fds = rep.threads(), rep.fds()
        cpu0, t0 = rep.cpu_secs(), time.time()
        time.sleep(args.idle_seconds)
        cpu1, t1 = rep.cpu_secs(), time.time()
        idle_requests = server.counts(t0, t1)
        print(f"  idle: {(cpu1 - cpu0) / (t1 - t0):.2%} of a core, {idle_requests}", file=sys.stderr, flush=True)
        writers = Writers()
        lags = []
        try:
            for rate in args.rates:
                run = measure_lag(writers, large_paths, rate, args.seconds, args.poll_ms / 1000)
                print(
                    f"  {rate:g} writes/s: lag p50 {run.p50 * 1000:.0f} ms, p99 {run.p99 * 1000:.0f} ms",
                    file=sys.stderr,
                    flush=True,
                )
                lags.append(run)
        finally:
            writers.close()
        status_run = measure_status(server, rep, work / "large", len(large_paths))
        said = f"  status --dir: {status_run.seconds:.1f} s, {status_run.requests} requests"
        print(said, file=sys.stderr, flush=True)
    finally:
        exit_status = rep.stop()
    return Result(
        databases=args.databases,
        small=args.small,
        startup_secs=startup,
        rss_small=rss_small,
        rss_large=rss_large,
        per_db_bytes=(rss_large - rss_small) / (args.databases - args.small),
        threads=threads,
        fds=fds,
        idle_secs=t1 - t0,
        idle_cpu=(cpu1 - cpu0) / (t1 - t0),
        idle_requests=idle_requests,
        lag=lags,
        interval=args.interval,
        status=status_run,
        exit_status=exit_status,
    )


def report(r: Result) -> str:
    lag_target = r.interval + 0.5
    idle_total = sum(r.idle_requests.values())
    rows = [
        [
            f"memory per idle db ({r.databases:,} vs {r.small} dbs)",
            f"{r.per_db_bytes / 1024:,.0f} KiB",
            "<= 200 KB",
            "yes" if r.per_db_bytes <= 200_000 else "NO",
            LITESTREAM_FIGURE,
        ],
        [
            f"process RSS ({r.small} / {r.databases:,} dbs)",
            f"{r.rss_small / 2**20:,.1f} / {r.rss_large / 2**20:,.1f} MiB",
            "",
            "",
            "",
        ],
        [
            f"CPU, all idle ({r.idle_secs:.0f} s)",
            f"{r.idle_cpu:.2%} of a core",
            "< 1%",
            "yes" if r.idle_cpu < 0.01 else "NO",
            "",
        ],
        [
            f"S3 requests, all idle ({r.idle_secs:.0f} s)",
            f"{idle_total} ({' '.join(f'{k}={r.idle_requests[k]}' for k in KINDS)})",
            "0",
            "yes" if idle_total == 0 else "NO",
            "",
        ],
    ]
    for run in r.lag:
        rows.append(
            [
                f"lag at {run.rate:g} writes/s ({run.writes:,}, {run.achieved:,.0f}/s achieved)",
                f"p50 {run.p50:.2f} s, p99 {run.p99:.2f} s, max {run.max:.2f} s",
                f"p99 <= {lag_target:g} s",
                "yes" if run.p99 <= lag_target else "NO",
                "",
            ]
        )
    rows.append([f"first generation of all {r.databases:,}", f"{r.startup_secs:.0f} s", "", "", ""])
    rows.append(
        [
            f"status --dir over {r.status.rows:,} dbs",
            f"{r.status.seconds:.1f} s, {r.status.requests:,} requests, {r.status.shipped_by_it:,} shown shipping",
            "",
            "",
            "",
        ]
    )
    rows.append(["threads / open fds", f"{r.threads} / {r.fds:,}", "", "", ""])
    rows.append(["exit status after SIGTERM", str(r.exit_status), "0", "yes" if r.exit_status == 0 else "NO", ""])
    return table(["measure", "bottomless", "target", "met", "Litestream"], rows, left=5)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Many databases in one replicator: memory, idle CPU and requests, lag.")
    p.add_argument("--databases", type=int, default=1000, help="databases in the large run (default: 1000)")
    p.add_argument("--small", type=int, default=10, help="databases in the base run (default: 10)")
    p.add_argument("--idle-seconds", type=float, default=30.0, help="idle window (default: 30)")
    p.add_argument("--seconds", type=float, default=30.0, help="writing time per rate (default: 30)")
    p.add_argument("--rates", type=float, nargs="+", default=[1.0, 200.0], help="writes/s (default: 1 200)")
    p.add_argument("--interval", type=float, default=1.0, help="batch interval in seconds (default: 1.0)")
    p.add_argument("--threads", type=int, default=None, help="replicate --threads (default: its own)")
    p.add_argument("--poll-ms", type=float, default=5.0, help="acked-sequence polling period (default: 5)")
    p.add_argument("--quiet", type=float, default=3.0, help="server silence that ends startup (default: 3 s)")
    p.add_argument("--start-timeout", type=float, default=900.0, help="seconds to wait for startup (default: 900)")
    p.add_argument("--dir", type=Path, default=None, help="where to make the databases (default: a temp dir)")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = p.parse_args(argv)
    if not 0 < args.small < args.databases:
        p.error("need 0 < --small < --databases")
    if min(args.rates) <= 0 or args.seconds <= 0 or args.idle_seconds <= 0 or args.interval <= 0:
        p.error("--rates, --seconds, --idle-seconds and --interval must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["LIBSQL_BOTTOMLESS_AUTOSTART"] = "0"  # the writers' VFS must not start replicators of its own
    with tempfile.TemporaryDirectory(prefix="bottomless-many-", dir=args.dir) as tmp, S3Server() as server:
        print(f"S3: moto in a child process at {server.endpoint}, requests counted at the server")
        print(f"library: {library_description()}")
        print(
            f"machine: {platform.node()}, {platform.platform()}, {os.cpu_count()} cores, "
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start"
        )
        print(f"command: {' '.join(sys.argv)}", flush=True)
        result = bench(server, Path(tmp), args)
    print()
    print(report(result))
    print(f"\nLitestream figure: {LITESTREAM_SOURCE}")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        print(json.dumps(asdict(result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

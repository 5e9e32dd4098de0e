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
  notes when the commit became durable in S3 (as bench/replicate.py does);
  beside each rate, the CPU seconds of the replicator, of the S3 server and
  of this process (writer and watcher) over the phase, and the batches and
  requests by kind the replicator's metrics (``--metrics-addr``) counted,
  so CPU ms per batch, and a server-bound run reads as one.

``--server s3rver`` ships to s3rver (npm, integration/s3rver.py) instead of
moto. moto's werkzeug server closes the connection after every response
(a new TCP connection and a new server thread per request) and answers
each in ~5 ms of CPU; s3rver keeps connections alive. s3rver ignores
conditional writes, so that run sets LIBSQL_BOTTOMLESS_CONDITIONAL_WRITES=off
(no lease, no write-once), and its requests are counted by the replicator
only. ``--before DIR`` runs each rate also on another checkout's replicator
(its python/ and the library built in it), alternating, on the same databases.

Run from the repository root (build the library first)::

    python -m ziglang build -Doptimize=ReleaseFast
    PYTHONPATH=python python bench/many.py                            # 1,000 databases
    PYTHONPATH=python python bench/many.py --databases 200 --seconds 10  # quicker
    PYTHONPATH=python python bench/many.py --rates 200 --idle-seconds 5 --seconds 20 --before /path/to/main
"""

# mypy: disable-error-code="import-untyped"

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from restore_servers import S3RVER_CREDENTIALS, s3rver
from s3bench import CREDENTIALS, KINDS, S3Server, library_description, percentile, table

from bottomless.s3 import S3Store
from bottomless.side_files import ACK, SideFolder
from bottomless.spool import Spool
from bottomless.sqlite_vfs import register_python_sqlite
from bottomless.state import load_state

BUCKET = "many-bench"
ROW_BYTES = 100
CLK_TCK = os.sysconf("SC_CLK_TCK")
ACK_TICK_NS = 50_000_000  # well past the kernel's file-time granularity (a jiffy, 1-10 ms)
# Litestream's figure for many databases, as its users report it.
LITESTREAM_SOURCE = "https://github.com/benbjohnson/litestream/issues/1051"
LITESTREAM_FIGURE = "~1 MB/db by users' accounts; #1051: 383 dbs passed 1.5 GB (~4 MB/db, 0.5.3)"


# ---- the S3 server ----------------------------------------------------------------------


@dataclass
class Bucket:
    """Where the process under test ships: moto (which logs every request,
    so requests are counted at the server) or s3rver (npm; counted only by
    the replicator's own metrics). Either way the server process's CPU
    seconds are read from /proc, so a server-bound run reads as one."""

    name: str
    endpoint: str
    credentials: dict[str, str]
    pid: int
    logged: S3Server | None  # moto's request log

    def env(self) -> dict[str, str]:
        extra = {} if self.logged is not None else {"LIBSQL_BOTTOMLESS_CONDITIONAL_WRITES": "off"}
        return {**os.environ, **self.credentials, **extra}

    def cpu_secs(self) -> float:
        return _cpu_secs(self.pid)

    def counts(self, t0: float, t1: float) -> dict[str, int] | None:
        return self.logged.counts(t0, t1) if self.logged is not None else None


@contextlib.contextmanager
def bucket_on(server: str) -> Iterator[Bucket]:
    if server == "s3rver":
        with s3rver() as srv:
            yield Bucket("s3rver", srv.endpoint, S3RVER_CREDENTIALS, srv.pid, None)
        return
    with S3Server() as moto:
        assert moto.proc is not None
        yield Bucket("moto", moto.endpoint, CREDENTIALS, moto.proc.pid, moto)


def _cpu_secs(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


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

    def __init__(
        self, folder: Path, bucket: Bucket, interval: float, threads: int | None, log: Path, tree: Path | None = None
    ) -> None:
        self.folder, self.log = folder, log
        self.metrics_port = _free_port()
        env = {
            **bucket.env(),
            "LIBSQL_BOTTOMLESS_BATCH_INTERVAL_SECS": str(interval),
            "LIBSQL_BOTTOMLESS_AUTOSTART": "0",
            "BOTTOMLESS_LOG": "warn",
        }
        env.pop("LIBSQL_BOTTOMLESS_DATABASE_ID", None)
        if tree is not None:  # --before: another checkout's python/ (and the library built in it)
            env["PYTHONPATH"] = str(tree / "python")
        cmd = [sys.executable, "-m", "bottomless_cli", "-e", bucket.endpoint, "-b", BUCKET, "replicate"]
        cmd += ["--dir", str(folder), "--metrics-addr", f"127.0.0.1:{self.metrics_port}"]
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
        return _cpu_secs(self.pid)

    def counters(self) -> dict[str, float]:
        """The process totals of its metrics: ``batches`` and ``requests:KIND``."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url, timeout=30) as r:
                    text = r.read().decode()
                break
            except OSError:  # not serving yet (a process just started)
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("bottomless_batches_total "):
                out["batches"] = float(line.split()[1])
            elif line.startswith("bottomless_requests_total{"):
                kind = line.split('kind="', 1)[1].split('"', 1)[0]
                out[f"requests:{kind}"] = float(line.rsplit(" ", 1)[1])
        return out

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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_quiet(bucket: Bucket, rep: Replicator, quiet: float, timeout: float) -> None:
    """Until the server has served no request for ``quiet`` seconds (moto's
    log), or the replicator has made none (its metrics, on s3rver)."""
    deadline = time.time() + timeout
    seen, since = None, time.time()
    while time.time() < deadline:
        if bucket.logged is not None:
            last = max((e.start for e in bucket.logged.events()), default=0.0)
        else:
            now = {k: v for k, v in rep.counters().items() if k.startswith("requests:")}
            if now != seen:
                seen, since = now, time.time()
            last = since
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
    tree: str = "this"  # or "before"
    secs: float = 0.0  # from the first write until the last reached S3
    cpu: float = 0.0  # CPU seconds of the replicator over ``secs``
    server_cpu: float = 0.0  # and of the S3 server
    bench_cpu: float = 0.0  # and of this process (the writer and the watcher)
    batches: int = 0  # as the replicator's metrics count them
    requests: dict[str, int] = field(default_factory=dict)  # by kind, as they count them

    @property
    def cpu_ms_per_batch(self) -> float:
        return self.cpu * 1000 / self.batches if self.batches else float("nan")

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
        self._acks: dict[Path, tuple[int, int]] = {}  # path -> (ack file's mtime_ns, acked seq)

    def open(self, path: Path) -> sqlite3.Connection:
        conn = self.conns.get(path)
        if conn is None:
            conn = self.conns[path] = sqlite3.connect(f"file:{path}?vfs=bottomless", uri=True, isolation_level=None)
            conn.execute("PRAGMA synchronous=NORMAL")
            self.spools[path] = Spool(str(path))
        return conn

    def commit(self, path: Path) -> int:
        self.open(path).execute("INSERT INTO t(v) VALUES (?)", (b"y" * ROW_BYTES,))
        return self.spools[path].stats().last_seq  # this commit's: the only writer of the database

    def acked(self, path: Path) -> int:
        """The acknowledged sequence, read again only when the ack file's
        mtime changed: a stat costs a few microseconds where the spool's
        stats open three files, and with hundreds of databases waiting the
        watcher would otherwise take a core from the process it measures.
        File times advance in clock ticks, so a second ack within one tick
        keeps the mtime: the cache is trusted only for an mtime older than
        ACK_TICK_NS when it was read."""
        try:
            mtime = os.stat(SideFolder.of(path).file(ACK)).st_mtime_ns
        except FileNotFoundError:
            mtime = 0
        seen = self._acks.get(path)
        if seen is not None and seen[0] == mtime:
            return seen[1]
        read_at = time.time_ns()
        acked = self.spools[path].stats().acked_seq
        if read_at - mtime > ACK_TICK_NS:
            self._acks[path] = (mtime, acked)
        return acked

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()
        for spool in self.spools.values():
            spool.close()


def measure_lag_of(
    rep: Replicator, bucket: Bucket, writers: Writers, paths: Sequence[Path], rate: float, args: argparse.Namespace
) -> LagRun:
    """measure_lag, with what the replicator and the server spent meanwhile."""
    before, cpu0, scpu0, bcpu0, t0 = rep.counters(), rep.cpu_secs(), bucket.cpu_secs(), _own_cpu(), time.time()
    run = measure_lag(writers, paths, rate, args.seconds, args.poll_ms / 1000)
    after, cpu1, scpu1, bcpu1, t1 = rep.counters(), rep.cpu_secs(), bucket.cpu_secs(), _own_cpu(), time.time()
    run.secs, run.cpu, run.server_cpu, run.bench_cpu = t1 - t0, cpu1 - cpu0, scpu1 - scpu0, bcpu1 - bcpu0
    run.batches = int(after.get("batches", 0) - before.get("batches", 0))
    run.requests = {
        k.split(":", 1)[1]: int(v - before.get(k, 0)) for k, v in after.items() if k.startswith("requests:")
    }
    run.requests = {k: v for k, v in run.requests.items() if v}
    print(
        f"  {rate:g} writes/s: lag p50 {run.p50 * 1000:.0f} ms, p99 {run.p99 * 1000:.0f} ms; "
        f"{run.batches} batches, {run.cpu_ms_per_batch:.1f} CPU ms each; replicator CPU {run.cpu:.1f} s, "
        f"server CPU {run.server_cpu:.1f} s, bench CPU {run.bench_cpu:.1f} s in {run.secs:.1f} s; "
        f"requests {run.requests}; "
        f"uptime:{os.popen('uptime').read().split('load', 1)[-1].strip()}",
        file=sys.stderr,
        flush=True,
    )
    return run


def _own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


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


def measure_status(bucket: Bucket, rep: Replicator, folder: Path, expected: int) -> StatusRun:
    """``bottomless-cli status --dir`` over every database, while they are shipped."""
    env = bucket.env()
    t0 = time.time()
    out = subprocess.run(
        [sys.executable, "-m", "bottomless_cli", "-e", bucket.endpoint, "-b", BUCKET, "status", "--dir", str(folder),
         "--json"],
        env=env, capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    t1 = time.time()
    rows = json.loads(out.stdout)
    if len(rows) != expected:
        raise RuntimeError(f"status listed {len(rows)} databases, not {expected}")
    mine = sum(1 for r in rows if r["generation"] and r["replicator"]["pid"] == rep.pid)
    counted = bucket.counts(t0, t1)
    return StatusRun(t1 - t0, sum(counted.values()) if counted is not None else -1, len(rows), mine)


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
    idle_requests: dict[str, int] | None  # at the server (moto only)
    server: str
    lag: list[LagRun]
    interval: float
    status: StatusRun
    exit_status: int


def run_process(
    bucket: Bucket, folder: Path, paths: list[Path], args: argparse.Namespace, log: Path, tree: Path | None = None
) -> tuple[Replicator, float, int]:
    rep = Replicator(folder, bucket, args.interval, args.threads, log, tree)
    startup = rep.wait_started(paths, timeout=args.start_timeout)
    wait_quiet(bucket, rep, args.quiet, timeout=args.start_timeout)
    return rep, startup, rep.rss()


def lag_rounds(
    bucket: Bucket, rep: Replicator, work: Path, paths: list[Path], args: argparse.Namespace
) -> tuple[Replicator, list[LagRun]]:
    """Every rate, ``--repeat`` times; with ``--before``, each rate on this
    checkout's replicator and on the other's in turn (one process at a time
    on the same databases, each continuing the generations it finds)."""
    writers = Writers()
    lags: list[LagRun] = []
    current = "this"
    try:
        # An application's connections are open before it writes; opening a
        # thousand in the lag window would bill the writer's start-up to it.
        for path in paths:
            writers.open(path)
        wait_quiet(bucket, rep, args.quiet, timeout=args.start_timeout)
        for _ in range(args.repeat):
            for rate in args.rates:
                for tree in ("this", "before") if args.before else ("this",):
                    if tree != current:
                        rep.stop()
                        rep, _, _ = run_process(
                            bucket, work / "large", paths, args, work / f"large-{tree}.log",
                            args.before if tree == "before" else None,
                        )  # fmt: skip
                        current = tree
                    print(f"  [{tree}]", end="", file=sys.stderr)
                    run = measure_lag_of(rep, bucket, writers, paths, rate, args)
                    run.tree = tree
                    lags.append(run)
    finally:
        writers.close()
    if current != "this":
        rep.stop()
        rep, _, _ = run_process(bucket, work / "large", paths, args, work / "large-this.log")
    return rep, lags


def bench(server: Bucket, work: Path, args: argparse.Namespace) -> Result:
    os.environ.update(server.credentials)
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
        rep, lags = lag_rounds(server, rep, work, large_paths, args)
        status_run = measure_status(server, rep, work / "large", len(large_paths))
        counted = f", {status_run.requests} requests" if status_run.requests >= 0 else ""
        said = f"  status --dir: {status_run.seconds:.1f} s{counted}"
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
        server=server.name,
        lag=lags,
        interval=args.interval,
        status=status_run,
        exit_status=exit_status,
    )


def report(r: Result) -> str:
    lag_target = r.interval + 0.5
    idle = r.idle_requests
    idle_total = sum(idle.values()) if idle is not None else -1
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
            f"{idle_total} ({' '.join(f'{k}={idle[k]}' for k in KINDS)})" if idle is not None else "n/a (s3rver)",
            "0",
            "yes" if idle_total == 0 else "NO" if idle is not None else "",
            "",
        ],
    ]
    for run in r.lag:
        who = "" if run.tree == "this" else f" [{run.tree}]"
        rows.append(
            [
                f"lag at {run.rate:g} writes/s{who} ({run.writes:,}, {run.achieved:,.0f}/s achieved)",
                f"p50 {run.p50:.2f} s, p99 {run.p99:.2f} s, max {run.max:.2f} s",
                f"p99 <= {lag_target:g} s",
                "yes" if run.p99 <= lag_target else "NO",
                "",
            ]
        )
        requests = " ".join(f"{k}={v}" for k, v in sorted(run.requests.items()))
        rows.append(
            [
                f"  CPU at {run.rate:g} writes/s{who} ({run.secs:.0f} s)",
                f"replicator {run.cpu:.1f} s ({run.cpu_ms_per_batch:.1f} ms/batch, {run.batches:,} batches), "
                f"{r.server} {run.server_cpu:.1f} s, bench {run.bench_cpu:.1f} s; requests {requests}",
                "",
                "",
                "",
            ]
        )
    rows.append([f"first generation of all {r.databases:,}", f"{r.startup_secs:.0f} s", "", "", ""])
    rows.append(
        [
            f"status --dir over {r.status.rows:,} dbs",
            f"{r.status.seconds:.1f} s, {r.status.requests:,} requests, {r.status.shipped_by_it:,} shown shipping"
            if r.status.requests >= 0
            else f"{r.status.seconds:.1f} s, {r.status.shipped_by_it:,} shown shipping",
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
    p.add_argument("--poll-ms", type=float, default=20.0, help="ack polling period (default: 20)")
    p.add_argument("--quiet", type=float, default=3.0, help="server silence that ends startup (default: 3 s)")
    p.add_argument("--start-timeout", type=float, default=900.0, help="seconds to wait for startup (default: 900)")
    p.add_argument("--server", choices=("moto", "s3rver"), default="moto",
                   help="the S3 server: moto (requests counted at the server) or s3rver (npm; conditional writes "
                   "off, so no lease) (default: moto)")  # fmt: skip
    p.add_argument("--before", type=Path, default=None,
                   help="another checkout (its python/ and built library): each rate also on its replicator, "
                   "alternating with this one's, on the same databases")  # fmt: skip
    p.add_argument("--repeat", type=int, default=1, help="rounds of every rate (default: 1)")
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
    with tempfile.TemporaryDirectory(prefix="bottomless-many-", dir=args.dir) as tmp, bucket_on(args.server) as server:
        counted = "requests counted at the server" if server.logged else "requests counted by the replicator"
        print(f"S3: {server.name} in a child process at {server.endpoint}, {counted}")
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

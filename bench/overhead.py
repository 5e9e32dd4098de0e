"""Benchmark (issue 19): what replication costs the application's throughput.

For each workload of compare.py (oltp, bulk, blob), alternating rounds of
the same seeded transactions, each on a fresh database, in four setups:

- plain: SQLite's WAL, no extension;
- vfs: opened through the bottomless VFS, no replicator (capture only);
- vfs+cli: the VFS with ``bottomless-cli replicate`` shipping from another
  process (started and past its first snapshot before the clock starts);
- connect: ``bottomless.connect()``, its replicator behind the connection.

All use Python's sqlite3 with ``synchronous=NORMAL``; S3 is moto in a child
process. Prints tx/s medians and each setup's ratio to plain.

    PYTHONPATH=python python bench/overhead.py                    # ~3 minutes
    PYTHONPATH=python python bench/overhead.py --rounds 5 --scale 0.75 --workload oltp

``--before DIR`` adds every setup but plain once more, as another checkout
(its ``python/`` and the native library built in it) runs it: rows
``vfs@before`` and so on. Then every round, plain included, runs in a fresh
child process (two builds of the extension cannot share one), in
alternating order, so before and after are measured side by side::

    PYTHONPATH=python python bench/overhead.py --setup vfs --before /work/before --rounds 10
"""

# mypy: disable-error-code="import-untyped"

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from compare import WORKLOADS, Workload, burst
from s3bench import S3Server, library_description, table

import bottomless
from bottomless.config import Config
from bottomless.lock import is_locked
from bottomless.side_files import SideFolder
from bottomless.sqlite_vfs import register_python_sqlite

SETUPS = ("plain", "vfs", "vfs+cli", "connect")
BUCKET = "overhead"


@contextmanager
def plain(db: Path, _: Config) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=wal")
        yield conn
    finally:
        conn.close()


@contextmanager
def vfs(db: Path, _: Config) -> Iterator[sqlite3.Connection]:
    register_python_sqlite()
    conn = sqlite3.connect(f"file:{db}?vfs=bottomless", uri=True, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=wal")
        yield conn
    finally:
        conn.close()


def _env(cfg: Config) -> dict[str, str]:
    return {
        **os.environ,
        "LIBSQL_BOTTOMLESS_ENDPOINT": cfg.endpoint,
        "LIBSQL_BOTTOMLESS_BUCKET": cfg.bucket,
        "LIBSQL_BOTTOMLESS_DATABASE_ID": cfg.database_id or "",
    }


@contextmanager
def vfs_cli(db: Path, cfg: Config) -> Iterator[sqlite3.Connection]:
    with vfs(db, cfg) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS warmup(x)")  # not new: the replicator starts at once
        proc = subprocess.Popen(
            [sys.executable, "-m", "bottomless_cli", "-d", str(db), "replicate"],
            env=_env(cfg), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            side = SideFolder.of(str(db))
            deadline = time.monotonic() + 60
            while not (side.state.exists() and is_locked(str(side.path))):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("bottomless-cli replicate did not start")
                time.sleep(0.05)
            yield conn
        finally:
            proc.terminate()
            proc.wait(60)


@contextmanager
def connect(db: Path, cfg: Config) -> Iterator[sqlite3.Connection]:
    conn = bottomless.connect(str(db), config=cfg, isolation_level=None)
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS warmup(x)")
        conn.flush(60)  # past the first snapshot, as vfs+cli
        yield conn
    finally:
        conn.close()


OPENERS = {"plain": plain, "vfs": vfs, "vfs+cli": vfs_cli, "connect": connect}


@dataclass(frozen=True)
class Round:
    """One burst, and where the writing thread's wall time went."""

    tps: float
    wall: float  # seconds of the burst
    cpu: float  # the writing thread on a CPU
    runq: float  # the writing thread runnable but waiting for a CPU (another process or thread had it)
    sys: float  # of ``cpu``, in the kernel (system calls, page cache, file system)
    p99_ms: float  # of one transaction's latency in the burst
    max_ms: float

    @property
    def blocked(self) -> float:
        """Neither: asleep on I/O, a lock or the GIL."""
        return max(0.0, self.wall - self.cpu - self.runq)


def _schedstat() -> tuple[float, float]:
    """(on-CPU, waiting-for-CPU) seconds of the calling thread so far (Linux)."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            on_cpu, waiting = f.read().split()[:2]
    except OSError:
        return float("nan"), float("nan")
    return int(on_cpu) / 1e9, int(waiting) / 1e9


def one_round(work: Path, endpoint: str, setup: str, w: Workload, count: int, n: int, tag: str = "") -> Round:
    folder = work / f"{setup}{tag}-{w.name}-{n}"
    folder.mkdir()
    db = folder / "db.sqlite"
    cfg = Config.from_env(endpoint=endpoint, bucket=BUCKET, database_id=f"oh-{setup}{tag}-{w.name}-{n}")
    with OPENERS[setup](db, cfg) as conn:
        conn.execute("PRAGMA synchronous=NORMAL")
        w.setup(conn)
        cpu0, runq0 = _schedstat()
        sys0 = resource.getrusage(resource.RUSAGE_THREAD).ru_stime
        latencies: list[float] = []
        t0 = time.perf_counter()
        tps = burst(conn, w, random.Random(1), count, latencies)
        wall = time.perf_counter() - t0
        cpu1, runq1 = _schedstat()
        sys1 = resource.getrusage(resource.RUSAGE_THREAD).ru_stime
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        return Round(tps, wall, cpu1 - cpu0, runq1 - runq0, sys1 - sys0, p99 * 1e3, latencies[-1] * 1e3)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="tx/s with replication off and on, as ratios of plain WAL")
    p.add_argument("--workload", action="append", choices=[w.name for w in WORKLOADS])
    p.add_argument("--setup", action="append", choices=SETUPS, help="only these setups (plain always runs)")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds per setup (default: 5)")
    p.add_argument("--scale", type=float, default=0.75, help="multiplies compare.py's throughput-phase txs")
    p.add_argument("--dir", type=Path, default=None, help="directory for the databases (default: a temp dir)")
    p.add_argument("--json", type=Path, default=None, help="also write every round's tx/s here")
    p.add_argument(
        "--before",
        type=Path,
        default=None,
        help="another checkout (python/ and its built library): its setups alternate with this one's, "
        "every round in a child process",
    )
    p.add_argument("--child", nargs=7, metavar=("SETUP", "WORKLOAD", "COUNT", "ROUND", "ENDPOINT", "DIR", "TAG"),
                   help=argparse.SUPPRESS)  # fmt: skip
    return p.parse_args(argv)


BEFORE = "@before"
Runner = Callable[[str, Workload, int, int], Round]


def in_process(work: Path, endpoint: str) -> Runner:
    return lambda setup, w, count, n: one_round(work, endpoint, setup, w, count, n)


def in_children(work: Path, endpoint: str, before: Path) -> Runner:
    """Every round in a fresh interpreter, on this tree's library or --before's."""
    here = Path(__file__).resolve().parent

    def run(setup: str, w: Workload, count: int, n: int) -> Round:
        old = setup.endswith(BEFORE)
        tree = before if old else here.parent
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree / "python"), str(here)])}
        cmd = [sys.executable, str(here / "overhead.py"), "--child", setup.removesuffix(BEFORE), w.name, str(count),
               str(n), endpoint, str(work), "before" if old else "after"]  # fmt: skip
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        got = json.loads(out.splitlines()[-1])
        return Round(**{f.name: got[f.name] for f in fields(Round)})

    return run


def child(args: list[str]) -> int:
    setup, wname, count, n, endpoint, work, tag = args
    w = next(x for x in WORKLOADS if x.name == wname)
    r = one_round(Path(work), endpoint, setup, w, int(count), int(n), f"-{tag}")
    library = library_description() if setup != "plain" else None
    print(json.dumps({**asdict(r), "library": library}))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child(args.child)
    workloads = [w for w in WORKLOADS if not args.workload or w.name in args.workload]
    setups = ["plain", *[s for s in SETUPS[1:] if not args.setup or s in args.setup]]
    if args.before is not None:
        setups += [s + BEFORE for s in setups[1:]]
    with tempfile.TemporaryDirectory(prefix="bottomless-overhead-", dir=args.dir) as tmp, S3Server() as server:
        work = Path(tmp)
        from bottomless.s3 import S3Store

        S3Store(server.endpoint, BUCKET).ensure_bucket()
        print(f"library: {library_description()}; moto in a child process; synchronous=NORMAL")
        if args.before is not None:
            print(f"{BEFORE[1:]}: {args.before.resolve()}/python; every round in a child process")
        run = (
            in_process(work, server.endpoint)
            if args.before is None
            else in_children(work, server.endpoint, args.before.resolve())
        )
        rows: list[list[str]] = []
        raw: dict[str, dict[str, list[float]]] = {}
        for w in workloads:
            count = int(w.burst_txs * args.scale)
            rounds: dict[str, list[Round]] = {s: [] for s in setups}
            for n in range(args.rounds):
                order = setups if n % 2 == 0 else setups[::-1]
                for s in order:
                    rounds[s].append(run(s, w, count, n))
                print(f"  {w.name} round {n + 1}: " + ", ".join(f"{s} {rounds[s][-1].tps:,.0f}" for s in setups),
                      file=sys.stderr, flush=True)  # fmt: skip
            raw[w.name] = {s: [r.tps for r in rs] for s, rs in rounds.items()}
            base = statistics.median(r.tps for r in rounds["plain"])
            for s in setups:
                med = statistics.median(r.tps for r in rounds[s])
                rows.append([w.name, s, f"{count}", f"{med:,.0f}", f"{med / base:.3f}", *_where(rounds[s])])
    if args.json is not None:
        args.json.write_text(json.dumps(raw))
    head = ["workload", "setup", "txs/round", f"tx/s (median of {args.rounds})", "of plain"]
    where = ["writer on CPU s", "of it in the kernel s", "waiting for a CPU s", "blocked s", "tx p99 ms", "tx max ms"]
    print(table([*head, *where], rows))
    print(
        "(medians of the rounds: the writing thread's time in the burst, on a CPU, runnable while another "
        "process or thread had the CPU, and asleep on I/O, a lock or the GIL; one transaction's latency)"
    )
    return 0


def _where(rounds: list[Round]) -> list[str]:
    names = ("cpu", "sys", "runq", "blocked", "p99_ms", "max_ms")
    return [f"{statistics.median(getattr(r, name) for r in rounds):.2f}" for name in names]


if __name__ == "__main__":
    sys.exit(main())

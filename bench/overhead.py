"""Benchmark (issue 19): what replication costs the application's throughput.

For each workload of compare.py (oltp, bulk, blob), alternating rounds of
the same seeded transactions, each on a fresh database, in four setups:

- plain: SQLite's WAL, no extension;
- vfs: opened through the bottomless VFS, no replicator (capture only);
- vfs+cli: the VFS with ``bottomless-cli replicate`` shipping from another
  process (started and past its first snapshot before the clock starts);
- connect: ``bottomless.connect()``, its replicator behind the connection.

All use Python's sqlite3 with ``synchronous=NORMAL``; S3 is moto in a child
process. Every round runs in a fresh Python process of its own (so no round
inherits another's threads, imports or heap), timed inside it. ``--before DIR``
adds a ``connect@before`` setup: the same round with another checkout's
library (DIR/python, its native library built), alternating with the rest.
Prints tx/s medians and each setup's ratio to plain.

    PYTHONPATH=python python bench/overhead.py                    # ~3 minutes
    PYTHONPATH=python python bench/overhead.py --rounds 5 --scale 0.75 --workload oltp
    PYTHONPATH=python python bench/overhead.py --before /work/before --setup vfs+cli --setup connect
"""

# mypy: disable-error-code="import-untyped"

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


BEFORE = "connect@before"


def timed_round(folder: Path, endpoint: str, setup: str, workload: str, count: int) -> float:
    """One round, in this process: tx/s of ``count`` seeded transactions."""
    w = next(w for w in WORKLOADS if w.name == workload)
    db = folder / "db.sqlite"
    cfg = Config.from_env(endpoint=endpoint, bucket=BUCKET, database_id=f"oh-{folder.name}")
    with OPENERS[setup](db, cfg) as conn:
        conn.execute("PRAGMA synchronous=NORMAL")
        w.setup(conn)
        return burst(conn, w, random.Random(1), count)


def one_round(work: Path, server: S3Server, setup: str, w: Workload, count: int, n: int, before: Path | None) -> float:
    """One round in a child Python process, with the library of this
    checkout or (``connect@before``) of ``before``."""
    folder = work / f"{setup.replace('@', '-')}-{w.name}-{n}"
    folder.mkdir()
    lib = (before / "python") if setup == BEFORE and before is not None else Path(bottomless.__file__).parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(lib), str(Path(__file__).parent)])}
    opener = "connect" if setup == BEFORE else setup
    args = [sys.executable, __file__, "--one-round", str(folder), server.endpoint, opener, w.name, str(count)]
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="tx/s with replication off and on, as ratios of plain WAL")
    p.add_argument("--workload", action="append", choices=[w.name for w in WORKLOADS])
    p.add_argument("--setup", action="append", choices=SETUPS, help="only these setups (plain always runs)")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds per setup (default: 5)")
    p.add_argument("--scale", type=float, default=0.75, help="multiplies compare.py's throughput-phase txs")
    p.add_argument("--dir", type=Path, default=None, help="directory for the databases (default: a temp dir)")
    p.add_argument("--json", type=Path, default=None, help="also write every round's tx/s here")
    p.add_argument("--before", type=Path, default=None, help="another checkout: adds a connect@before setup")
    p.add_argument("--one-round", nargs=5, metavar=("DIR", "URL", "SETUP", "WORKLOAD", "TXS"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one_round is not None:
        folder, endpoint, setup, workload, txs = args.one_round
        print(timed_round(Path(folder), endpoint, setup, workload, int(txs)))
        return 0
    workloads = [w for w in WORKLOADS if not args.workload or w.name in args.workload]
    setups = ["plain", *[s for s in SETUPS[1:] if not args.setup or s in args.setup]]
    if args.before is not None:
        setups.append(BEFORE)
    with tempfile.TemporaryDirectory(prefix="bottomless-overhead-", dir=args.dir) as tmp, S3Server() as server:
        work = Path(tmp)
        from bottomless.s3 import S3Store

        S3Store(server.endpoint, BUCKET).ensure_bucket()
        print(f"library: {library_description()}; moto in a child process; synchronous=NORMAL")
        if args.before is not None:
            print(f"{BEFORE}: the library of {args.before} (commit {_commit(args.before)})")
        print(f"uptime at start: {_uptime()}")
        rows: list[list[str]] = []
        raw: dict[str, dict[str, list[float]]] = {}
        for w in workloads:
            count = int(w.burst_txs * args.scale)
            tps: dict[str, list[float]] = {s: [] for s in setups}
            for n in range(args.rounds):
                order = setups if n % 2 == 0 else setups[::-1]
                for s in order:
                    tps[s].append(one_round(work, server, s, w, count, n, args.before))
                print(f"  {w.name} round {n + 1}: " + ", ".join(f"{s} {tps[s][-1]:,.0f}" for s in setups)
                      + f" (load {_uptime()})",
                      file=sys.stderr, flush=True)  # fmt: skip
            raw[w.name] = tps
            base = statistics.median(tps["plain"])
            for s in setups:
                med = statistics.median(tps[s])
                rows.append([w.name, s, f"{count}", f"{med:,.0f}", f"{med / base:.3f}"])
    if args.json is not None:
        args.json.write_text(json.dumps(raw))
    print(table(["workload", "setup", "txs/round", f"tx/s (median of {args.rounds})", "of plain"], rows))
    print(f"uptime at end: {_uptime()}")
    return 0


def _uptime() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _commit(checkout: Path) -> str:
    proc = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() or "unknown"


if __name__ == "__main__":
    sys.exit(main())

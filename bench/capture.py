"""Benchmark: the cost of capture on the commit path.

Measures transactions per second of the same workloads on the same SQLite
(Python's ``sqlite3`` module) with plain WAL (the default VFS) and with the
``bottomless`` VFS, which captures every committed transaction into the spool.

The machine this runs on is usually noisy, so the two variants are measured
side by side and alternating (plain, bottomless, plain, bottomless, ...), each
round on a fresh database in a fresh directory, and the median round counts.
The spool is opened by a reader that never acknowledges (a replicator that
does not keep up: every WAL restart copies); each round's directory,
database and spool are deleted afterwards.

Build the library in release mode first, then run from the repository root::

    python -m ziglang build -Doptimize=ReleaseFast
    PYTHONPATH=python python bench/capture.py            # table
    PYTHONPATH=python python bench/capture.py --json     # machine-readable

``--before DIR`` adds a third variant, ``bottomless@before``: the same rounds
on another checkout's ``python/`` and native library. Then every round runs
in a fresh child process (two builds of the extension cannot share one),
alternating plain, bottomless, bottomless@before::

    PYTHONPATH=python python bench/capture.py --before /work/before --rounds 9
"""

# The installed package lacks its py.typed marker (declared in pyproject.toml);
# with MYPYPATH=python mypy checks against the sources and this is moot.
# mypy: disable-error-code="import-untyped"

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bottomless import extension_path
from bottomless.spool import Spool
from bottomless.sqlite_vfs import VFS_NAME, python_sqlite_library, register_python_sqlite

VARIANTS: tuple[str, ...] = ("plain", VFS_NAME)
BEFORE = f"{VFS_NAME}@before"
SYNC_MODES: tuple[str, ...] = ("NORMAL", "FULL")

# A transaction body: (connection, transaction number) -> None.
TxFn = Callable[[sqlite3.Connection, int], None]


@dataclass(frozen=True)
class Workload:
    """One kind of write transaction."""

    name: str
    description: str
    schema: str
    populate: Callable[[sqlite3.Connection], None]
    make_tx: Callable[[], TxFn]


@dataclass(frozen=True)
class Target:
    """Minimum acceptable bottomless/plain throughput ratio."""

    workload: str  # "*" matches every workload
    synchronous: str
    min_ratio: float


TARGETS: tuple[Target, ...] = (
    Target("*", "FULL", 0.95),
    Target("insert-100", "NORMAL", 0.90),
    Target("insert-1", "NORMAL", 0.80),
)


def target_for(workload: str, synchronous: str) -> float | None:
    for t in TARGETS:
        if t.synchronous == synchronous and t.workload in ("*", workload):
            return t.min_ratio
    return None


# ---- workloads -------------------------------------------------------------

ROW_BYTES = 100
BLOB_BYTES = 4096
BLOB_ROWS = 256
# Coprime with BLOB_ROWS, so a row never gets back the blob it holds: SQLite
# skips writing overflow pages whose content is unchanged.
BLOB_POOL = 17


def _no_populate(conn: sqlite3.Connection) -> None:
    return None


def _insert_one() -> TxFn:
    def tx(conn: sqlite3.Connection, i: int) -> None:
        # One statement in autocommit mode is one transaction.
        conn.execute("INSERT INTO t(v) VALUES (randomblob(?))", (ROW_BYTES,))

    return tx


def _insert_hundred() -> TxFn:
    rows = [(ROW_BYTES,)] * 100

    def tx(conn: sqlite3.Connection, i: int) -> None:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO t(v) VALUES (randomblob(?))", rows)
        conn.execute("COMMIT")

    return tx


def _populate_blobs(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO b(id, data) VALUES (?, randomblob(?))",
        ((i, BLOB_BYTES) for i in range(BLOB_ROWS)),
    )
    conn.execute("COMMIT")


def _update_blob() -> TxFn:
    pool = [os.urandom(BLOB_BYTES) for _ in range(BLOB_POOL)]

    def tx(conn: sqlite3.Connection, i: int) -> None:
        conn.execute("UPDATE b SET data = ? WHERE id = ?", (pool[i % BLOB_POOL], (i * 37) % BLOB_ROWS))

    return tx


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "insert-1",
        f"one INSERT of a {ROW_BYTES}-byte row per transaction (autocommit)",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)",
        _no_populate,
        _insert_one,
    ),
    Workload(
        "insert-100",
        f"BEGIN; 100 INSERTs of {ROW_BYTES}-byte rows; COMMIT",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)",
        _no_populate,
        _insert_hundred,
    ),
    Workload(
        "blob-4k",
        f"UPDATE one row's {BLOB_BYTES}-byte blob per transaction ({BLOB_ROWS} rows, autocommit)",
        "CREATE TABLE b(id INTEGER PRIMARY KEY, data BLOB)",
        _populate_blobs,
        _update_blob,
    ),
)


# ---- measuring -------------------------------------------------------------


@dataclass(frozen=True)
class RoundResult:
    variant: str
    transactions: int
    seconds: float
    cpu_seconds: float
    spool_bytes: int

    @property
    def tps(self) -> float:
        return self.transactions / self.seconds

    @property
    def cpu_us_per_tx(self) -> float:
        return self.cpu_seconds / self.transactions * 1e6


def connect(variant: str, path: Path) -> sqlite3.Connection:
    if variant == VFS_NAME:
        return sqlite3.connect(f"file:{path}?vfs={VFS_NAME}", uri=True, isolation_level=None)
    return sqlite3.connect(path, isolation_level=None)


def run_round(variant: str, workload: Workload, synchronous: str, seconds: float, base_dir: Path) -> RoundResult:
    """One timed round on a fresh database in a fresh directory."""
    work = Path(tempfile.mkdtemp(prefix="bottomless-bench-", dir=base_dir))
    try:
        db = work / "bench.db"
        conn = connect(variant, db)
        try:
            mode = conn.execute("PRAGMA journal_mode=wal").fetchone()[0]
            if mode != "wal":
                raise RuntimeError(f"journal_mode=wal gave {mode!r}")
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute(workload.schema)
            workload.populate(conn)
            if variant == VFS_NAME:
                # A replicator that never acknowledges (the worst case):
                # with no reader at all, restarts would copy nothing.
                Spool(str(db)).close()
            tx = workload.make_tx()
            gc.collect()
            gc.disable()
            try:
                n = 0
                cpu0 = time.process_time()
                t0 = time.perf_counter()
                deadline = t0 + seconds
                while True:
                    tx(conn, n)
                    n += 1
                    if time.perf_counter() >= deadline:
                        break
                elapsed = time.perf_counter() - t0
                cpu = time.process_time() - cpu0
            finally:
                gc.enable()
        finally:
            conn.close()
        spool = Path(f"{db}-bottomless") / "spool"
        spool_bytes = spool.stat().st_size if spool.exists() else 0
        if variant == VFS_NAME and spool_bytes == 0:
            raise RuntimeError(f"the bottomless VFS captured nothing into {spool}")
        if variant != VFS_NAME and spool.exists():
            raise RuntimeError(f"plain WAL unexpectedly produced {spool}")
        return RoundResult(variant, n, elapsed, cpu, spool_bytes)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class CaseResult:
    workload: str
    synchronous: str
    plain_tps: float
    bottomless_tps: float
    ratio: float
    target: float | None
    met: bool | None
    plain_cpu_us: float
    bottomless_cpu_us: float
    rounds: dict[str, list[dict[str, Any]]]
    before_tps: float | None = None
    before_ratio: float | None = None
    before_cpu_us: float | None = None


def median_tps(rounds: Sequence[RoundResult]) -> float:
    return statistics.median(r.tps for r in rounds)


Runner = Callable[[str, Workload, str, float, Path], RoundResult]


def in_child(before: Path) -> Runner:
    """Runs each round in a fresh interpreter, on this tree's library or --before's."""
    here = Path(__file__).resolve().parent

    def run(variant: str, workload: Workload, synchronous: str, seconds: float, base_dir: Path) -> RoundResult:
        tree = before if variant == BEFORE else here.parent
        env = {**os.environ, "PYTHONPATH": str(tree / "python")}
        name = VFS_NAME if variant == BEFORE else variant
        cmd = [sys.executable, str(here / "capture.py"), "--child", name, workload.name, synchronous, str(seconds),
               str(base_dir)]  # fmt: skip
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        r = RoundResult(**json.loads(out.splitlines()[-1]))
        return RoundResult(variant, r.transactions, r.seconds, r.cpu_seconds, r.spool_bytes)

    return run


def run_case(
    workload: Workload, synchronous: str, rounds: int, seconds: float, base_dir: Path, run: Runner = run_round
) -> CaseResult:
    variants = [*VARIANTS, BEFORE] if run is not run_round else list(VARIANTS)
    by_variant: dict[str, list[RoundResult]] = {v: [] for v in variants}
    for _ in range(rounds):
        for variant in variants:  # alternate: plain, bottomless, plain, ...
            by_variant[variant].append(run(variant, workload, synchronous, seconds, base_dir))
    plain = median_tps(by_variant["plain"])
    bl = median_tps(by_variant[VFS_NAME])
    ratio = bl / plain
    old = by_variant.get(BEFORE)
    target = target_for(workload.name, synchronous)
    return CaseResult(
        workload=workload.name,
        synchronous=synchronous,
        plain_tps=plain,
        bottomless_tps=bl,
        ratio=ratio,
        target=target,
        met=None if target is None else ratio >= target,
        plain_cpu_us=statistics.median(r.cpu_us_per_tx for r in by_variant["plain"]),
        bottomless_cpu_us=statistics.median(r.cpu_us_per_tx for r in by_variant[VFS_NAME]),
        rounds={
            v: [{**asdict(r), "tps": r.tps, "cpu_us_per_tx": r.cpu_us_per_tx} for r in rs]
            for v, rs in by_variant.items()
        },
        before_tps=median_tps(old) if old else None,
        before_ratio=median_tps(old) / plain if old else None,
        before_cpu_us=statistics.median(r.cpu_us_per_tx for r in old) if old else None,
    )


def warm_up(base_dir: Path, seconds: float) -> None:
    """Untimed: loads the library, page cache and allocator for both variants."""
    for variant in VARIANTS:
        run_round(variant, WORKLOADS[0], "NORMAL", seconds, base_dir)


# ---- reporting -------------------------------------------------------------


def environment(base_dir: Path) -> dict[str, Any]:
    lib = Path(extension_path())
    st = lib.stat()
    return {
        "library": str(lib),
        "library_bytes": st.st_size,
        "library_mtime": datetime.fromtimestamp(st.st_mtime, UTC).isoformat(timespec="seconds"),
        "sqlite_version": sqlite3.sqlite_version,
        "sqlite_library": python_sqlite_library(),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.release()} {platform.machine()}, {os.cpu_count()} CPUs",
        "dir": str(base_dir),
    }


def format_table(results: Sequence[CaseResult]) -> str:
    header: tuple[str, ...] = (
        "workload",
        "synchronous",
        "plain tx/s",
        "bottomless tx/s",
        "ratio",
        "target",
        "met",
        "CPU us/tx plain",
        "CPU us/tx bottomless",
    )
    before = any(r.before_tps is not None for r in results)
    if before:
        header += ("before tx/s", "before ratio", "CPU us/tx before")
    rows: list[tuple[str, ...]] = [header]
    for r in results:
        extra: tuple[str, ...] = ()
        if before:
            extra = (
                f"{r.before_tps or 0:,.0f}",
                f"{r.before_ratio or 0:.3f}",
                f"{r.before_cpu_us or 0:.1f}",
            )
        rows.append(
            (
                r.workload,
                r.synchronous,
                f"{r.plain_tps:,.0f}",
                f"{r.bottomless_tps:,.0f}",
                f"{r.ratio:.3f}",
                "-" if r.target is None else f">= {r.target:.2f}",
                "-" if r.met is None else ("yes" if r.met else "NO"),
                f"{r.plain_cpu_us:.1f}",
                f"{r.bottomless_cpu_us:.1f}",
                *extra,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    left = {0, 1}

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    lines = [fmt(rows[0]), "  ".join("-" * w for w in widths)]
    lines.extend(fmt(row) for row in rows[1:])
    return "\n".join(lines)


# ---- main ------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    names = [w.name for w in WORKLOADS]
    p = argparse.ArgumentParser(
        description="Transactions per second with plain WAL vs the bottomless VFS (capture cost on commit).",
    )
    p.add_argument("--seconds", type=float, default=1.0, help="length of one round of one variant (default: 1.0)")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds per variant and case (default: 5)")
    p.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="directory for the databases (default: the system temp dir); results depend on its filesystem",
    )
    p.add_argument("--workload", action="append", choices=names, help="run only this workload (repeatable)")
    p.add_argument("--synchronous", action="append", choices=SYNC_MODES, help="run only this mode (repeatable)")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    p.add_argument(
        "--before",
        type=Path,
        default=None,
        help="another checkout (python/ and its built library): a third variant, every round in a child process",
    )
    p.add_argument(
        "--child", nargs=5, metavar=("VARIANT", "WORKLOAD", "SYNC", "SECONDS", "DIR"), help=argparse.SUPPRESS
    )
    args = p.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1:
        p.error("--seconds must be > 0 and --rounds >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        variant, wname, sync, secs, d = args.child
        register_python_sqlite()
        w = next(x for x in WORKLOADS if x.name == wname)
        print(json.dumps(asdict(run_round(variant, w, sync, float(secs), Path(d)))))
        return 0
    base_dir: Path = (args.dir or Path(tempfile.gettempdir())).resolve()
    base_dir.mkdir(parents=True, exist_ok=True)
    register_python_sqlite()
    env = environment(base_dir)
    workloads = [w for w in WORKLOADS if not args.workload or w.name in args.workload]
    modes = [s for s in SYNC_MODES if not args.synchronous or s in args.synchronous]

    def say(line: str) -> None:
        if not args.json:
            print(line, flush=True)

    say(f"library:  {env['library']} ({env['library_bytes']:,} bytes, built {env['library_mtime']})")
    say("          (optimize mode is not recorded in the file; build with -Doptimize=ReleaseFast)")
    say(f"sqlite:   {env['sqlite_version']} ({env['sqlite_library']}), Python {env['python']}")
    say(f"machine:  {env['machine']}")
    say(f"dir:      {env['dir']}")
    say(f"rounds:   {args.rounds} x {args.seconds:g} s per variant, alternating plain/{VFS_NAME}; median shown")
    if args.before is not None:
        say(f"before:   {args.before.resolve()}/python, as {BEFORE}; every round in a child process")
    for w in workloads:
        say(f"  {w.name}: {w.description}")
    say("")

    run: Runner = run_round if args.before is None else in_child(args.before.resolve())
    warm_up(base_dir, min(0.3, args.seconds))
    results: list[CaseResult] = []
    for w in workloads:
        for s in modes:
            r = run_case(w, s, args.rounds, args.seconds, base_dir, run)
            results.append(r)
            if not args.json:
                print(
                    f"  {w.name:<10} {s:<6} plain {r.plain_tps:>9,.0f}  {VFS_NAME} {r.bottomless_tps:>9,.0f}"
                    f"  ratio {r.ratio:.3f}"
                    + ("" if r.before_tps is None else f"  before {r.before_tps:,.0f} ({r.before_ratio:.3f})"),
                    file=sys.stderr,
                    flush=True,
                )

    if args.json:
        out = {
            "environment": env,
            "rounds": args.rounds,
            "seconds": args.seconds,
            "results": [asdict(r) for r in results],
        }
        print(json.dumps(out, indent=2))
    else:
        print()
        print(format_table(results))
        missed = [r for r in results if r.met is False]
        print()
        if missed:
            print("targets missed: " + ", ".join(f"{r.workload}/{r.synchronous} ({r.ratio:.3f})" for r in missed))
        else:
            print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark (issue 19): the CPU seconds a separate replicator spends shipping.

For each workload of compare.py: a database through the bottomless VFS,
``bottomless-cli replicate`` in another process, the workload's throughput
phase, then the replicator's user+system CPU (``/proc/PID/stat``) from
before the first transaction until everything is in S3, beside the
writer's own. Unlike tx/s, CPU seconds hardly move with the machine's load,
so this says what a change to the replicator's work per byte did.

    PYTHONPATH=python python bench/replicator_cpu.py
    PYTHONPATH=python python bench/replicator_cpu.py --workload bulk --scale 2

``--before DIR`` runs the replicator of another checkout (its ``python/``
and the native library built in it) in alternating rounds with this one's,
on the same capture: what a change to the replicator alone did. The S3
server's CPU and the batch PUTs it received are counted too.
"""

# mypy: disable-error-code="import-untyped"

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from compare import WORKLOADS, burst
from s3bench import S3Server, library_description, table

from bottomless.replicator import wait_durable
from bottomless.s3 import S3Store
from bottomless.sqlite_vfs import register_python_sqlite

BUCKET = "replicator-cpu"


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime, stat(5)


def one(work: Path, server: S3Server, name: str, scale: float, build: str, pythonpath: str, n: int) -> list[str]:
    w = next(x for x in WORKLOADS if x.name == name)
    db = work / f"{name}-{build}-{n}.db"
    register_python_sqlite()
    conn = sqlite3.connect(f"file:{db}?vfs=bottomless", uri=True, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=NORMAL")
    w.setup(conn)
    env = {
        **os.environ,
        "PYTHONPATH": pythonpath,
        "LIBSQL_BOTTOMLESS_ENDPOINT": server.endpoint,
        "LIBSQL_BOTTOMLESS_BUCKET": BUCKET,
        "LIBSQL_BOTTOMLESS_DATABASE_ID": db.stem,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bottomless_cli", "-d", str(db), "replicate"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert server.proc is not None
    try:
        wait_durable(str(db), timeout=120)  # started, first snapshot taken
        time.sleep(1.5)
        before, writer0 = cpu_seconds(proc.pid), time.process_time()
        s3_before, t0 = cpu_seconds(server.proc.pid), time.time()
        count = int(w.burst_txs * scale)
        tps = burst(conn, w, random.Random(1), count)
        writer = time.process_time() - writer0
        wait_durable(str(db), timeout=300)
        shipped = cpu_seconds(proc.pid) - before
        s3_cpu = cpu_seconds(server.proc.pid) - s3_before
        puts = server.counts(t0, time.time() + 1, f"/{BUCKET}/")["PUT"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        conn.close()
    load = os.getloadavg()[0]
    figures = [f"{count}", f"{tps:,.0f}", f"{writer:.2f}", f"{shipped:.2f}", f"{s3_cpu:.2f}", f"{puts}", f"{load:.1f}"]
    return [name, build, *figures]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="CPU seconds of a separate replicator shipping compare.py's workloads")
    p.add_argument("--workload", action="append", choices=[w.name for w in WORKLOADS])
    p.add_argument("--scale", type=float, default=1.0, help="multiplies compare.py's throughput-phase txs")
    p.add_argument("--rounds", type=int, default=1, help="rounds per workload and build (default: 1)")
    p.add_argument("--before", type=Path, help="another checkout whose replicator alternates with this one's")
    args = p.parse_args(argv)
    names = args.workload or [w.name for w in WORKLOADS]
    builds = [("this", os.environ.get("PYTHONPATH", ""))]
    if args.before is not None:
        builds.append(("before", str(args.before.resolve() / "python")))
    with tempfile.TemporaryDirectory(prefix="bottomless-cpu-") as tmp, S3Server() as server:
        S3Store(server.endpoint, BUCKET).ensure_bucket()
        print(f"library: {library_description()}; moto in a child process; synchronous=NORMAL")
        rows = []
        for name in names:
            for n in range(args.rounds):
                for build, path in builds if n % 2 == 0 else builds[::-1]:
                    rows.append(one(Path(tmp), server, name, args.scale, build, path, n))
                    print("  " + ", ".join(rows[-1]), flush=True)
    head = ["workload", "replicator", "txs", "tx/s", "writer CPU s"]
    print(table([*head, "replicator CPU s", "S3 server CPU s", "PUTs", "load"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

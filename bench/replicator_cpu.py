"""Benchmark (issue 19): the CPU seconds a separate replicator spends shipping.

For each workload of compare.py: a database through the bottomless VFS,
``bottomless-cli replicate`` in another process, the workload's throughput
phase, then the replicator's user+system CPU (``/proc/PID/stat``) from
before the first transaction until everything is in S3, beside the
writer's own. Unlike tx/s, CPU seconds hardly move with the machine's load,
so this says what a change to the replicator's work per byte did.

    PYTHONPATH=python python bench/replicator_cpu.py
    PYTHONPATH=python python bench/replicator_cpu.py --workload bulk --scale 2
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


def one(work: Path, endpoint: str, name: str, scale: float) -> list[str]:
    w = next(x for x in WORKLOADS if x.name == name)
    db = work / f"{name}.db"
    register_python_sqlite()
    conn = sqlite3.connect(f"file:{db}?vfs=bottomless", uri=True, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=NORMAL")
    w.setup(conn)
    env = {
        **os.environ,
        "LIBSQL_BOTTOMLESS_ENDPOINT": endpoint,
        "LIBSQL_BOTTOMLESS_BUCKET": BUCKET,
        "LIBSQL_BOTTOMLESS_DATABASE_ID": name,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bottomless_cli", "-d", str(db), "replicate"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_durable(str(db), timeout=120)  # started, first snapshot taken
        time.sleep(1.5)
        before, writer0 = cpu_seconds(proc.pid), time.process_time()
        count = int(w.burst_txs * scale)
        tps = burst(conn, w, random.Random(1), count)
        writer = time.process_time() - writer0
        wait_durable(str(db), timeout=300)
        shipped = cpu_seconds(proc.pid) - before
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        conn.close()
    load = os.getloadavg()[0]
    return [name, f"{count}", f"{tps:,.0f}", f"{writer:.2f}", f"{shipped:.2f}", f"{load:.1f}"]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="CPU seconds of a separate replicator shipping compare.py's workloads")
    p.add_argument("--workload", action="append", choices=[w.name for w in WORKLOADS])
    p.add_argument("--scale", type=float, default=1.0, help="multiplies compare.py's throughput-phase txs")
    args = p.parse_args(argv)
    names = args.workload or [w.name for w in WORKLOADS]
    with tempfile.TemporaryDirectory(prefix="bottomless-cpu-") as tmp, S3Server() as server:
        S3Store(server.endpoint, BUCKET).ensure_bucket()
        print(f"library: {library_description()}; moto in a child process; synchronous=NORMAL")
        rows = [one(Path(tmp), server.endpoint, name, args.scale) for name in names]
    print(table(["workload", "txs", "tx/s", "writer CPU s", "replicator CPU s", "load"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

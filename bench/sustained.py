"""Benchmark: a separate replicator under a sustained writer.

One writer (Python's ``sqlite3`` through the bottomless VFS,
``synchronous=NORMAL``) commits ``--txs`` transactions of compare.py's
workload as fast as it can while ``bottomless-cli replicate`` ships them
from another process to moto (a child process). Per round: the writer's
tx/s, the replicator's CPU seconds until everything is in S3 (from
``/proc/PID/stat``), how long after the last commit that took, the batches
it shipped, and whether the side folder passed its cap
(``LIBSQL_BOTTOMLESS_SPOOL_MAX_BYTES``): then history was dropped and the
generation had to start again from a snapshot, which is what falling
behind costs a user.

``--before DIR`` runs the same rounds on another checkout's ``python/`` and
native library, alternating, every round in a fresh child process::

    PYTHONPATH=python python bench/sustained.py --before /work/before --rounds 6
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compare import WORKLOADS, burst
from s3bench import S3Server, alternating, child_json, table, trees

HERE = Path(__file__).resolve().parent
BUCKET = "sustained"
DROPPED = "before a replicator shipped it"  # the capture's warning when the side folder passes its cap


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_round(work: Path, endpoint: str, workload: str, txs: int, tag: str) -> dict[str, float | int]:
    from bottomless.lock import is_locked
    from bottomless.side_files import SideFolder
    from bottomless.spool import Spool
    from bottomless.sqlite_vfs import register_python_sqlite

    folder = work / tag
    folder.mkdir()
    db = folder / "db.sqlite"
    register_python_sqlite()
    conn = sqlite3.connect(f"file:{db}?vfs=bottomless", uri=True, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS warmup(x)")  # not new: the replicator starts at once
    log = folder / "replicator.log"
    env = {
        **os.environ,
        "LIBSQL_BOTTOMLESS_ENDPOINT": endpoint,
        "LIBSQL_BOTTOMLESS_BUCKET": BUCKET,
        "LIBSQL_BOTTOMLESS_DATABASE_ID": tag,
        "BOTTOMLESS_LOG": "info",
    }
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bottomless_cli", "-d", str(db), "replicate"], env=env,
                                stdout=out, stderr=out)  # fmt: skip
    try:
        side = SideFolder.of(str(db))
        deadline = time.monotonic() + 60
        while not (side.state.exists() and is_locked(str(side.path))):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"bottomless-cli replicate did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        w = next(x for x in WORKLOADS if x.name == workload)
        w.setup(conn)
        tps = burst(conn, w, random.Random(1), txs)
        done = time.monotonic()
        with Spool(str(db)) as spool:
            while True:
                st = spool.stats()
                if st.acked_seq >= st.last_seq or time.monotonic() > done + 120:
                    break
                time.sleep(0.05)
        caught_up = time.monotonic() - done
        cpu = cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(60)
        conn.close()
    text = log.read_text()
    return {
        "tps": tps,
        "replicator_cpu": cpu,
        "caught_up": caught_up,
        "batches": text.count("bottomless.shipping") - text.count("merged frames"),
        "generations": text.count("new generation"),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="a separate replicator under a sustained writer")
    p.add_argument("--workload", default="oltp", choices=[w.name for w in WORKLOADS])
    p.add_argument("--txs", type=int, default=100000, help="transactions per round (default: 100,000)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--before", type=Path, help="another checkout to compare with, side by side")
    p.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        work, endpoint, workload, txs, tag = args.child
        print(json.dumps(one_round(Path(work), endpoint, workload, int(txs), tag)))
        return 0
    checkouts = trees(args.before)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in checkouts}
    with tempfile.TemporaryDirectory(prefix="bottomless-sustained-") as tmp, S3Server() as server:
        from bottomless.s3 import S3Store

        S3Store(server.endpoint, BUCKET).ensure_bucket()
        print(f"{args.workload}, {args.txs} transactions a round; moto in a child process; synchronous=NORMAL")
        for n in range(args.rounds):
            for name in alternating(list(checkouts), n):
                tag = f"{'after' if name == 'this tree' else 'before'}-{n}"
                r, stderr = child_json(checkouts[name], HERE / "sustained.py",
                                       [tmp, server.endpoint, args.workload, str(args.txs), tag])  # fmt: skip
                r["dropped"] = int(DROPPED in stderr)
                results[name].append(r)
                print(f"  round {n + 1}, {name}: {r['tps']:,.0f} tx/s, replicator {r['replicator_cpu']:.2f} s CPU, "
                      f"{r['batches']} batches, {r['generations']} generation(s)"
                      + (", history DROPPED" if r["dropped"] else ""), file=sys.stderr, flush=True)  # fmt: skip
    rows = []
    for name, runs in results.items():

        def med(key: str, runs: list[dict[str, Any]] = runs) -> float:
            return statistics.median(float(r[key]) for r in runs)

        rows.append([
            name, f"{med('tps'):,.0f}", f"{med('replicator_cpu'):.2f}", f"{med('caught_up'):.2f}",
            f"{med('batches'):.0f}", f"{sum(int(r['dropped']) for r in runs)} of {len(runs)}",
        ])  # fmt: skip
    print(table(["tree", "writer tx/s", "replicator CPU s", "in S3 after last commit, s", "batches",
                 "rounds that dropped history"], rows))  # fmt: skip
    print(f"(medians of {args.rounds} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

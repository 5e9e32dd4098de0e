"""Benchmark (issue 14): restore time before and after the libSQL format change, side by side.

Two checkouts, ``--before`` (e.g. main) and this one, each write one bucket
through ``bottomless.connect()`` (a snapshot, then ``--txs`` transactions
shipped one per batch, so merged objects appear too), into the same moto
server. Then, alternating for ``--rounds``: the before code restores its
bucket, this code restores its own bucket, and this code restores the
before bucket (big-endian checksum words, detected on the first batch).
Every restore runs in a fresh interpreter of its checkout and must pass
``PRAGMA integrity_check``; medians and ratios are printed.

    python bench/format_restore.py --before /work/main --txs 600 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

WRITE = """
import sys, bottomless
from bottomless.config import Config
path, endpoint, bucket, txs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg = Config.from_env().with_overrides(endpoint=endpoint, bucket=bucket, batch_max_frames=1, batch_interval_secs=0.05)
conn = bottomless.connect(path, config=cfg, isolation_level=None)
conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT)")
conn.flush()
for i in range(txs):
    conn.execute("INSERT INTO t(body) VALUES (?)", ("x" * (100 + i % 900),))
conn.flush(timeout=600)
conn.close()
"""

RESTORE = """
import sys, time
from bottomless.restore import restore
from bottomless.s3 import S3Store
endpoint, bucket, db, target = sys.argv[1:5]
store = S3Store(endpoint, bucket)
start = time.perf_counter()
result = restore(store, db, target)
print(time.perf_counter() - start, result.frames_applied, result.integrity)
"""


def run(checkout: Path, code: str, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(checkout / "python"))
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{checkout}: {proc.stderr}")
    return proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="checkout of the code before the change")
    parser.add_argument("--txs", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE / "python"))
    from bottomless.embedded import DEMO_CREDENTIALS, embedded_s3

    for name, value in DEMO_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    with embedded_s3() as endpoint, tempfile.TemporaryDirectory() as tmp:
        cases = {"before": (args.before, "before"), "after": (HERE, "after"), "after reads before": (HERE, "before")}
        for label, checkout in (("before", args.before), ("after", HERE)):
            run(checkout, WRITE, f"{tmp}/{label}.db", endpoint, label, str(args.txs))
        times: dict[str, list[float]] = {case: [] for case in cases}
        frames = {case: "" for case in cases}
        for round_ in range(args.rounds):
            for case, (checkout, bucket) in cases.items():
                target = f"{tmp}/r-{round_}-{case.replace(' ', '-')}.db"
                secs, frames[case], integrity = run(checkout, RESTORE, endpoint, bucket, f"{bucket}.db", target).split()
                assert integrity == "ok", f"{case}: {integrity}"
                times[case].append(float(secs))
        base = statistics.median(times["before"])
        print(f"restore of {args.txs} one-transaction batches (+ merged objects), median of {args.rounds}:")
        for case, values in times.items():
            med = statistics.median(values)
            print(f"  {case:20s} {med:7.3f} s   ratio to before {med / base:5.2f}   ({frames[case]} frames)")


if __name__ == "__main__":
    main()

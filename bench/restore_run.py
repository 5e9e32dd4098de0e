"""One bottomless restore in a process of its own (so bench/restore.py can
read its peak RSS): from S3, or with ``--local DIR`` from a folder holding
the generation's objects (the listing still comes from S3). Prints the
restore's figures as JSON. ``--profile`` prints cProfile's top lines to
stderr.

``--part-mib N`` sets the snapshot's ranged part size (0: one streaming
GET); the library's default when not given.

    python bench/restore_run.py ENDPOINT BUCKET DB_ID OUT [--local DIR] [--part-mib N] [--profile]
"""

# mypy: disable-error-code="import-untyped"

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from pathlib import Path

from bottomless.allocator import return_large_blocks
from bottomless.restore import Tuning, restore
from bottomless.restore_fetch import LocalObjects
from bottomless.s3 import S3Store


def vm_hwm() -> int:
    """This process's peak resident set (bytes), counted from its exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("endpoint")
    p.add_argument("bucket")
    p.add_argument("db_id")
    p.add_argument("out")
    p.add_argument("--local", default=None)
    p.add_argument("--part-mib", type=float, default=None)
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    return_large_blocks()  # as bottomless-cli does
    store = S3Store(args.endpoint, args.bucket)
    source = LocalObjects(args.local) if args.local else None
    profiler = cProfile.Profile() if args.profile else None
    t0 = time.perf_counter()
    if profiler:
        profiler.enable()
    tuning = None if args.part_mib is None else Tuning(part_size=int(args.part_mib * 2**20))
    result = restore(store, args.db_id, args.out, source=source, tuning=tuning)
    if profiler:
        profiler.disable()
    elapsed = time.perf_counter() - t0
    assert result.figures is not None
    print(json.dumps({"restore_seconds": elapsed, **result.figures.as_dict(), "peak_rss": vm_hwm()}))
    if profiler:
        buf = io.StringIO()
        stats = pstats.Stats(profiler, stream=buf)
        stats.sort_stats("cumulative").print_stats(25)
        stats.sort_stats("tottime").print_stats(25)
        print(buf.getvalue(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

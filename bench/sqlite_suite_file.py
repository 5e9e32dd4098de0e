"""Benchmark: one file of SQLite's own test suite, plain and with one or more
builds of the extension as the default VFS, side by side for the same time.

All variants start together and stop together (the machine's noise hits
them alike); the score is how many test cases each passed in that time,
as a ratio to plain, with the size of the side folders each left behind.
Needs the testfixture that ``integration/sqlite_suite/run`` builds::

    PYTHONPATH=python python bench/sqlite_suite_file.py walcrash3.test \\
        --extension old=/path/to/old/libbottomless.so --seconds 120

(the current build is always one variant, as ``new``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from bottomless import extension_path

WORK = Path(os.environ.get("BOTTOMLESS_SQLITE_SUITE_DIR", Path.home() / ".cache" / "bottomless-sqlite-suite"))


def source_tree() -> Path:
    trees = sorted(WORK.glob("src-*/build-bottomless/testfixture"))
    if not trees:
        raise SystemExit(f"no testfixture under {WORK}: run integration/sqlite_suite/run once first")
    return trees[-1].parent.parent


def side_folder_bytes(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        if "-bottomless" in dirpath:
            total += sum(os.lstat(os.path.join(dirpath, f)).st_blocks * 512 for f in files)
    return total


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("test_file")
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--extension", action="append", default=[], metavar="NAME=PATH", help="another build to compare")
    a = p.parse_args()
    src = source_tree()
    variants: dict[str, str | None] = {"plain": None, "new": extension_path()}
    for item in a.extension:
        name, _, path = item.partition("=")
        variants[name] = path
    with tempfile.TemporaryDirectory(prefix="bottomless-suite-bench-") as tmp:
        procs = {}
        for name, ext in variants.items():
            where = Path(tmp) / name
            where.mkdir()
            env = {k: v for k, v in os.environ.items() if k != "BOTTOMLESS_SUITE_EXTENSION"}
            if ext is not None:
                env.update(BOTTOMLESS_SUITE_EXTENSION=ext, LIBSQL_BOTTOMLESS_AUTOSTART="0")
            out = open(where / "out.txt", "wb")  # noqa: SIM115 (closed with the process below)
            procs[name] = (
                subprocess.Popen(
                    [str(src / "build-bottomless" / "testfixture"), str(src / "test" / a.test_file)],
                    cwd=where, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                ),
                out,
                where,
            )
        started = time.monotonic()
        finished: dict[str, float] = {}
        while time.monotonic() - started < a.seconds and len(finished) < len(procs):
            for name, (proc, _, _) in procs.items():
                if name not in finished and proc.poll() is not None:
                    finished[name] = time.monotonic() - started
            time.sleep(0.2)
        passed: dict[str, int] = {}
        for name, (proc, out, where) in procs.items():
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()
            out.close()
            passed[name] = (where / "out.txt").read_text(errors="replace").count("... Ok")
        print(f"{a.test_file}, side by side for at most {a.seconds:.0f}s:")
        for name, (_, _, where) in procs.items():
            done = f"finished in {finished[name]:.0f}s" if name in finished else "still running"
            print(
                f"  {name:8} {passed[name]:6} cases passed ({passed[name] / max(passed['plain'], 1):.2f} of plain), "
                f"{done}, side folders {side_folder_bytes(where) / 1024:,.0f} KiB"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

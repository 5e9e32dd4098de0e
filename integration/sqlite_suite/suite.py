"""Runs SQLite's own TCL test files twice, once plain and once with the
bottomless VFS as the default (the SQLITE_EXTRA_INIT hook in
bottomless_init.c, switched on by BOTTOMLESS_SUITE_EXTENSION), and compares
the outcomes: which tests fail, and whether each file finished.

Each file runs in a folder of its own (the suite creates test.db and friends
in the current directory) with a time limit. The plain run is the reference:
a test that fails there (the machine, not bottomless) must fail the same way
with bottomless, and any other difference fails the run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bottomless import side_files

HERE = Path(__file__).resolve().parent
SUMMARY = re.compile(r"^(\d+) errors out of (\d+) tests", re.M)
SUMMARY_KNOWN = re.compile(r"^(\d+) new errors and (\d+) known errors\s+out of (\d+) tests", re.M)
FAILURES = re.compile(r"^!?Failures on these tests:(.*)$", re.M)


@dataclass
class Outcome:
    """What one run of one test file ended with."""

    entry: str
    status: str  # "completed", "timeout" or "no summary" (the process died)
    tests: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    side_folder_bytes: int = 0

    def comparable(self) -> tuple[str, tuple[str, ...]]:
        return (self.status, tuple(sorted(self.failed)))


def read_list(path: Path) -> list[str]:
    entries = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            entries.append(line)
    return entries


def command(testfixture: Path, testdir: Path, entry: str) -> list[str]:
    """`wal.test`, or `PERMUTATION:file.test` for a permutation of
    permutations.test (e.g. `wal:savepoint.test` forces WAL mode)."""
    if ":" in entry:
        perm, name = entry.split(":", 1)
        return [str(testfixture), str(testdir / "permutations.test"), perm, name]
    return [str(testfixture), str(testdir / entry)]


def folder_bytes(root: Path, suffix: str) -> int:
    """Bytes on disk of the side folders under root (holes excluded)."""
    total = 0
    for dirpath, _, files in os.walk(root):
        if suffix not in dirpath:
            continue
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def run_one(testfixture: Path, testdir: Path, entry: str, where: Path, env: dict[str, str], limit: float) -> Outcome:
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    log = where / "output.txt"
    start = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command(testfixture, testdir, entry), cwd=where, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            proc.wait(timeout=limit)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            timed_out = True
    seconds = time.monotonic() - start
    text = log.read_text(errors="replace")
    side = folder_bytes(where, side_files.SUFFIX)
    if timed_out:
        return Outcome(entry, "timeout", seconds=seconds, side_folder_bytes=side)
    failed: list[str] = []
    if m := FAILURES.search(text):
        failed = m.group(1).split()
    if m := SUMMARY.search(text):
        tests = int(m.group(2))
    elif m := SUMMARY_KNOWN.search(text):
        tests = int(m.group(3))
    else:
        return Outcome(entry, "no summary", failed=failed, seconds=seconds, side_folder_bytes=side)
    # Keep the folder of a clean pass small: only its output matters.
    if not failed:
        for p in where.iterdir():
            if p != log:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    return Outcome(entry, "completed", tests, failed, seconds, side)


def saved(where: Path) -> Outcome | None:
    try:
        return Outcome(**json.loads((where / "outcome.json").read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def run_all(testfixture: Path, testdir: Path, entries: list[str], out: Path, extension: str | None,
            jobs: int, limit: float, reuse: bool) -> dict[str, Outcome]:
    env = dict(os.environ)
    env.pop("BOTTOMLESS_SUITE_EXTENSION", None)
    mode = "plain"
    if extension is not None:
        env["BOTTOMLESS_SUITE_EXTENSION"] = extension
        env["LIBSQL_BOTTOMLESS_AUTOSTART"] = "0"
        mode = "bottomless"
    results: dict[str, Outcome] = {}

    def one(entry: str) -> Outcome:
        where = out / mode / entry.replace(":", "_")
        if reuse and (o := saved(where)) is not None:
            return o
        o = run_one(testfixture, testdir, entry, where, env, limit)
        (where / "outcome.json").write_text(json.dumps(asdict(o)))
        print(f"  {mode:10} {entry:32} {o.status:10} {o.tests:6} tests {len(o.failed):3} failed "
              f"{o.seconds:7.1f}s", flush=True)
        return o

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for o in pool.map(one, entries):
            results[o.entry] = o
    return results


def read_accepted(path: Path) -> dict[str, str]:
    """Entries whose outcomes may differ, with why (accepted.list)."""
    accepted = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            entry, _, reason = line.partition(" ")
            accepted[entry] = reason.strip()
    return accepted


def compare(plain: dict[str, Outcome], bottomless: dict[str, Outcome], accepted: dict[str, str]) -> list[str]:
    diffs = []
    for entry, p in plain.items():
        b = bottomless[entry]
        if p.comparable() == b.comparable() or entry in accepted:
            continue
        only_b = sorted(set(b.failed) - set(p.failed))
        only_p = sorted(set(p.failed) - set(b.failed))
        diffs.append(f"{entry}: plain {p.status} (failed {only_p or 'as below'}), bottomless {b.status} "
                     f"(fails only with bottomless: {only_b})")
    return diffs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--testfixture", type=Path, required=True)
    ap.add_argument("--testdir", type=Path, required=True)
    ap.add_argument("--extension", required=True)
    ap.add_argument("--list", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=600.0, help="seconds per test file")
    ap.add_argument("--only", nargs="*", help="run just these entries of the list")
    ap.add_argument("--mode", choices=["both", "plain", "bottomless", "compare"], default="both",
                    help="run one mode only (its outcomes are kept for a later comparison), or compare the "
                         "kept outcomes of the entries both modes have run")
    ap.add_argument("--reuse", choices=["none", "plain", "all"], default="none",
                    help="take outcomes of an earlier run instead of running again (the plain run does not "
                         "depend on the extension, only on testfixture)")
    a = ap.parse_args()
    entries = read_list(a.list)
    if a.only:
        entries = [e for e in entries if e in a.only]
    started = time.monotonic()
    print(f"{len(entries)} test files from {a.list.name}, {a.jobs} at a time, {a.time_limit:.0f}s each at most")
    if a.mode == "plain":
        run_all(a.testfixture, a.testdir, entries, a.out, None, a.jobs, a.time_limit, a.reuse != "none")
        return 0
    if a.mode == "bottomless":
        run_all(a.testfixture, a.testdir, entries, a.out, a.extension, a.jobs, a.time_limit, a.reuse == "all")
        return 0
    if a.mode == "compare":
        kept = {e: (saved(a.out / "plain" / e.replace(":", "_")), saved(a.out / "bottomless" / e.replace(":", "_")))
                for e in entries}
        entries = [e for e, (p, b) in kept.items() if p is not None and b is not None]
        print(f"comparing the {len(entries)} entries both modes have run")
        plain = {e: kept[e][0] for e in entries}  # type: ignore[misc]
        bottomless = {e: kept[e][1] for e in entries}  # type: ignore[misc]
        return report(entries, plain, bottomless, a.out, started)
    plain = run_all(a.testfixture, a.testdir, entries, a.out, None, a.jobs, a.time_limit, a.reuse != "none")
    bottomless = run_all(a.testfixture, a.testdir, entries, a.out, a.extension, a.jobs, a.time_limit,
                         a.reuse == "all")
    return report(entries, plain, bottomless, a.out, started)


def report(entries: list[str], plain: dict[str, Outcome], bottomless: dict[str, Outcome], out: Path,
           started: float) -> int:
    accepted = read_accepted(HERE / "accepted.list")
    diffs = compare(plain, bottomless, accepted)
    differing_accepted = [e for e in entries if e in accepted and plain[e].comparable() != bottomless[e].comparable()]
    tests_p = sum(o.tests for o in plain.values())
    tests_b = sum(o.tests for o in bottomless.values())
    both = sorted({f"{e}: {t}" for e, o in plain.items() for t in o.failed if t in bottomless[e].failed})
    secs_p = sum(o.seconds for o in plain.values())
    secs_b = sum(o.seconds for o in bottomless.values())
    (out / "summary.json").write_text(json.dumps({
        "files": len(entries), "plain": [asdict(o) for o in plain.values()],
        "bottomless": [asdict(o) for o in bottomless.values()], "differences": diffs,
    }, indent=1))
    print(f"files: {len(entries)}; tests: plain {tests_p}, bottomless {tests_b}; "
          f"test time: plain {secs_p:.0f}s, bottomless {secs_b:.0f}s (x{secs_b / max(secs_p, 0.001):.2f}); "
          f"wall {time.monotonic() - started:.0f}s")
    slow = sorted(entries, key=lambda e: bottomless[e].seconds / max(plain[e].seconds, 0.5), reverse=True)[:3]
    for e in slow:
        print(f"  slowest relative: {e}: plain {plain[e].seconds:.1f}s, bottomless {bottomless[e].seconds:.1f}s, "
              f"side folders {bottomless[e].side_folder_bytes} bytes")
    if both:
        print(f"failing in both runs (the machine, not bottomless): {len(both)}")
        for line in both:
            print(f"  {line}")
    for e in differing_accepted:
        print(f"accepted difference: {e} (plain {plain[e].status}, bottomless {bottomless[e].status}): {accepted[e]}")
    if diffs:
        print(f"DIFFERENCES: {len(diffs)}")
        for d in diffs:
            print(f"  {d}")
        return 1
    print(f"differences: none{f' (besides {len(differing_accepted)} accepted)' if differing_accepted else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

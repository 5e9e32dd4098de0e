"""SQLite's own TCL test suite with bottomless as the default VFS must give
exactly the outcomes it gives without it (integration/sqlite_suite/run: the
CI subset, or the whole list with BOTTOMLESS_SQLITE_SUITE=full).

The script installs what it needs (tcl-dev, Debian's source package of the
system's SQLite) rather than this test skipping without it. .ci/run calls
.ci/sqlite-suite on its own and sets BOTTOMLESS_SQLITE_SUITE=off for pytest,
so the suite does not run twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent / "sqlite_suite" / "run"


def test_sqlite_suite_outcomes_are_the_same_with_bottomless() -> None:
    if os.environ.get("BOTTOMLESS_SQLITE_SUITE") == "off":
        pytest.skip("BOTTOMLESS_SQLITE_SUITE=off: .ci/sqlite-suite runs it")
    proc = subprocess.run(
        [str(RUN)], env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=3600
    )
    summary = "\n".join(line for line in proc.stdout.splitlines() if not line.startswith("  plain"))
    assert proc.returncode == 0, f"{RUN} exited {proc.returncode}:\n{summary}\n{proc.stderr[-4000:]}"
    assert "differences: none" in proc.stdout

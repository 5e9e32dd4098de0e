"""Exactly once: replaying the spool from the starting database gives the
live database after every unit of a random workload, in every host."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bottomless.spool import Spool
from tests.capture.hosts import ApswHost, Host, PythonHost, ShellHost
from tests.capture.replay import Replayer, replayed_content
from tests.capture.workload import generate

CASES = int(os.environ.get("BOTTOMLESS_REPLAY_CASES", "6"))
UNITS = int(os.environ.get("BOTTOMLESS_REPLAY_UNITS", "25"))


def make_host(kind: str, seed: int) -> Host:
    if kind == "python":
        return PythonHost(seed)
    if kind == "apsw":
        return ApswHost(seed)
    if kind == "sqlite3-cli":
        binary = shutil.which("sqlite3")
        if binary is None:
            pytest.fail("the sqlite3 CLI is not installed (apt-get install sqlite3)")
        return ShellHost(binary, "vfs", kind)
    shell = os.environ.get("LIBSQL_SHELL")
    if not shell:
        pytest.skip("LIBSQL_SHELL is not set: point it at a libSQL 0.2 shell binary to run the libSQL scenarios")
    return ShellHost(shell, "wal", kind)


@pytest.mark.parametrize("seed", range(CASES))
@pytest.mark.parametrize("kind", ["python", "apsw", "sqlite3-cli", "libsql"])
def test_spool_replays_to_the_live_database(kind: str, seed: int, tmp_path: Path) -> None:
    work = generate(seed + {"python": 0, "apsw": 1000, "sqlite3-cli": 2000, "libsql": 3000}[kind], UNITS)
    db = tmp_path / "live.db"
    host = make_host(kind, work.seed)
    try:
        host.setup(db, work.setup, work.cache_size)
        with Spool(str(db)) as spool:
            assert spool.stats().records == 0, "setting WAL mode must not produce spool records"
        base = tmp_path / "base.db"
        shutil.copyfile(db, base)
        replayer = Replayer(db, base, tmp_path / "replayed.db")
        for i, unit in enumerate(work.units):
            host.run(unit.sql)
            replayer.catch_up()
            assert replayed_content(replayer.target) == host.content(), (
                f"seed {work.seed} (page size {work.page_size}, cache {work.cache_size}): "
                f"replay differs after unit {i} ({unit.kind})"
            )
    finally:
        host.close()

"""Log lines of the replicator through the real CLI: one line per event;
with ``--log-format json`` (or BOTTOMLESS_LOG_FORMAT=json) one JSON object
per line, from the Python side and from the native library alike."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import bottomless
from bottomless.spool import Spool
from conftest import run_cli, run_shell
from test_status import commit_without_replicator, replicated, wait_replicating


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_log_lines(fmt: str, tmp_path: Path, cli_env: dict[str, str]) -> None:
    """Every event is one line; with --log-format json each is an object
    with time, level, logger, message, and the database it is about."""
    db = tmp_path / "logged.db"
    replicated(db, cli_env, rows=1)
    commit_without_replicator(db, transactions=2)
    env = {**cli_env, "RUST_LOG": "info"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bottomless_cli", "--log-format", fmt, "-d", str(db), "replicate"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_replicating(db, proc)
        run_cli(cli_env, "-d", str(db), "sync")  # waits for the running replicator
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = err.splitlines()
    assert len(lines) >= 2, err
    if fmt == "text":
        assert all(" [logged.db]: " in line or " bottomless" not in line for line in lines), err
        assert any("holding the lease of logged.db" in line for line in lines), err
        return
    events = [json.loads(line) for line in lines]
    for event in events:
        assert {"time", "level", "logger", "message"} <= set(event)
        assert event["time"].endswith("Z") and event["level"] in ("debug", "info", "warning", "error")
    about = [e for e in events if e.get("database") == "logged.db"]
    assert any(e["logger"] == "bottomless.lease" and "holding the lease" in e["message"] for e in about), events


def test_bad_log_format(cli_env: dict[str, str]) -> None:
    proc = run_cli(cli_env, "--log-format", "xml", "ls", check=False)
    assert proc.returncode == 2 and "'xml' is not one of 'text', 'json'" in proc.stderr


def test_native_lines_are_json_too(tmp_path: Path, cli_env: dict[str, str], sqlite3_shell: str) -> None:
    """Capture inside the sqlite3 shell reports a bad LIBSQL_BOTTOMLESS_SPOOL_MAX_BYTES
    itself (native code, once a replicator has read the spool): with
    BOTTOMLESS_LOG_FORMAT=json that line is a JSON object."""
    opening = f".load {bottomless.extension_path()}\n.open file:native.db?vfs=bottomless\n"
    run_shell(sqlite3_shell, opening + "PRAGMA journal_mode=wal;\nCREATE TABLE t(x);\n", cli_env, cwd=tmp_path)
    Spool(str(tmp_path / "native.db")).close()  # what a replicator's first look leaves: the spool is read
    env = {**cli_env, "BOTTOMLESS_LOG_FORMAT": "json", "LIBSQL_BOTTOMLESS_SPOOL_MAX_BYTES": "lots"}
    proc = subprocess.run(
        [sqlite3_shell], input=opening + "INSERT INTO t VALUES (1);\n", env=env, capture_output=True, text=True,
        timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stderr.splitlines()]
    assert any(
        e["logger"] == "bottomless.native"
        and e["level"] == "error"
        and "LIBSQL_BOTTOMLESS_SPOOL_MAX_BYTES=lots is not a number of bytes" in e["message"]
        and e["time"].endswith("Z")
        for e in events
    ), proc.stderr

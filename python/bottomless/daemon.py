"""A replicator in a process of its own: for hosts that must not run one in
process (apsw). The shells reach the same command through ``on-open``."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields

from bottomless.config import ENV_PREFIX, Config
from bottomless.errors import BottomlessError
from bottomless.fleet_coverage import covering


def replicate_command(db_path: str, parent_pid: int) -> list[str]:
    """The one spelling of a background replicator's command line."""
    return [
        sys.executable, "-m", "bottomless_cli", "-d", os.path.abspath(db_path),
        "replicate", "--exit-when-idle", "--parent-pid", str(parent_pid), "--detach",
    ]  # fmt: skip


def spawn_replicator(db_path: str, config: Config) -> None:
    """Start ``bottomless-cli replicate --detach`` for ``db_path``: it checks
    the settings and the database, then ships in the background until this
    process has exited and the spool is empty. A refusal is raised here.
    Nothing is started when a running multi-database replicator covers it."""
    if covering(db_path) is not None:
        return
    env = dict(os.environ)
    for f in fields(config):
        value = getattr(config, f.name)
        if value is not None:
            env[ENV_PREFIX + f.name.upper()] = str(value)
    proc = subprocess.run(
        replicate_command(db_path, os.getpid()),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1].removeprefix("Error: ") if lines else f"exit status {proc.returncode}"
        raise BottomlessError(f"the replicator for {db_path} did not start: {reason}")

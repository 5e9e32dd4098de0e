"""A replicator in a child process: for hosts that must not run one in
process (apsw), and the command the extension runs for the shells."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields

from bottomless.config import ENV_PREFIX, Config
from bottomless.spool import spool_dir


def replicate_command(db_path: str, parent_pid: int) -> list[str]:
    return [
        sys.executable, "-m", "bottomless_cli", "-d", os.path.abspath(db_path),
        "replicate", "--exit-when-idle", "--parent-pid", str(parent_pid),
    ]  # fmt: skip


def spawn_replicator(db_path: str, config: Config) -> subprocess.Popen[bytes]:
    """Start ``bottomless-cli replicate`` for ``db_path``; it outlives this
    process until the spool is empty. Its log goes beside the spool."""
    env = dict(os.environ)
    for f in fields(config):
        value = getattr(config, f.name)
        if value is not None:
            env[ENV_PREFIX + f.name.upper()] = str(value)
    os.makedirs(spool_dir(db_path), exist_ok=True)
    log = open(os.path.join(spool_dir(db_path), "replicator.log"), "ab")  # noqa: SIM115 (the child keeps it)
    try:
        return subprocess.Popen(
            replicate_command(db_path, os.getpid()),
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True,
        )  # fmt: skip
    finally:
        log.close()

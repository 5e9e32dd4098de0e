"""``replicate --dir DIR`` and ``replicate --config FILE``: many databases
in this process (bottomless/fleet.py), in the foreground until SIGTERM or
SIGINT; SIGHUP re-reads the configuration file (or rescans the folder)."""

from __future__ import annotations

import faulthandler
import logging
import os
import resource
import signal
from pathlib import Path
from types import FrameType

import click

from bottomless import fleet_coverage
from bottomless.config import ENV_PREFIX, Config
from bottomless.errors import ConfigError
from bottomless.fleet import Fleet
from bottomless.fleet_config import load
from bottomless.fleet_sources import Sources
from bottomless.metrics import Metrics
from bottomless_cli.context import CliState

log = logging.getLogger(__name__)


def config_sources(state: CliState, file: str) -> Sources:
    """The file's databases; -e/-b stand where the variables would (below
    the file's own settings)."""
    env = dict(os.environ)
    if state.endpoint:
        env[ENV_PREFIX + "ENDPOINT"] = state.endpoint
    if state.bucket:
        env[ENV_PREFIX + "BUCKET"] = state.bucket
    return Sources.of_config(load(file, env))


def dir_sources(state: CliState, folder: str, pattern: str, recursive: bool) -> Sources:
    path = Path(folder)
    if not path.is_dir():
        why = "is not a folder" if path.exists() else "does not exist"
        raise click.BadParameter(f"{folder} {why}; give the folder that holds the databases", param_hint="'--dir'")
    # Each database's name is its path inside the folder, never DATABASE_ID.
    env = {k: v for k, v in os.environ.items() if k != ENV_PREFIX + "DATABASE_ID"}
    config = Config.from_env(env, endpoint=state.endpoint, bucket=state.bucket)
    return Sources.of_dir(folder, pattern, recursive, config)


def _raise_fd_limit() -> None:
    """Each database shipped holds two descriptors (its lock and its
    spool); a soft limit of 1024, common by default, would stop at ~500."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.info("open files limit stays %d (%s)", soft, exc)


def run_fleet(
    state: CliState,
    folder: str | None,
    pattern: str,
    recursive: bool,
    config_file: str | None,
    metrics_addr: str | None,
    threads: int,
) -> None:
    def read() -> Sources:
        if config_file is not None:
            return config_sources(state, config_file)
        assert folder is not None
        return dir_sources(state, folder, pattern, recursive)

    try:
        sources = read()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    metrics = Metrics()
    server = metrics.serve(metrics_addr) if metrics_addr else None
    fleet = Fleet(sources, metrics, threads=threads)
    pid = os.getpid()

    def reread() -> Sources:
        new = read()
        fleet_coverage.publish(new.coverage(pid))
        return new

    def stop(signum: int, frame: FrameType | None) -> None:
        fleet.request_stop()

    def reload(signum: int, frame: FrameType | None) -> None:
        fleet.request_reload(reread)

    _raise_fd_limit()
    # `kill -USR1 PID` writes every thread's stack to the log: what a stuck
    # database's round is waiting for, without stopping the others.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    fleet_coverage.publish(sources.coverage(pid))
    try:
        fleet.run_until_signalled()
    finally:
        fleet_coverage.withdraw(pid)
        if server is not None:
            server.close()

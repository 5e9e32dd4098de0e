"""``replicate``, ``sync`` and ``snapshot``: the commands that ship a local
database (``-d`` names its file here)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType

import click

from bottomless import log_context
from bottomless.config import Config
from bottomless.lock import is_locked
from bottomless.replicator import Replicator, wait_durable
from bottomless.restore_on_open import restore_if_missing
from bottomless.s3 import S3Store
from bottomless.side_files import LOG, SideFolder
from bottomless.snapshot_request import request_snapshot, snapshot_requested
from bottomless_cli import background
from bottomless_cli.context import CliState, pass_state

# A replicator in a process of its own runs below the application's CPU
# priority: on a busy machine it yields to the writer (its batches go out a
# little later) instead of taking the writer's core. Not in a thread
# (``connect()``): nice is per thread on Linux, and a low-priority thread
# holding the GIL would stall the writer waiting for it.
NICE = 10


def replicate(path: str, config: Config, exit_when_idle: bool, parent_pid: int | None) -> None:
    rep = Replicator(path, config)

    def stop(signum: int, frame: FrameType | None) -> None:
        rep.request_stop()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        os.nice(NICE)
    with log_context.about(rep.db_name):
        rep.run(exit_when_idle=exit_when_idle, parent_pid=parent_pid)
    rep.release()
    if rep.error is not None:
        if logging.getLogger("bottomless").isEnabledFor(logging.ERROR):
            raise click.exceptions.Exit(1)  # the replicator's log line already said why
        raise click.ClickException(str(rep.error))


@click.command("replicate")
@click.option("--exit-when-idle", is_flag=True, help="Exit once the spool is empty (and --parent-pid has exited).")
@click.option("--parent-pid", type=int, help="Keep running while this process lives.")
@click.option(
    "--detach",
    is_flag=True,
    help=f"Check the settings and the database, then go on in the background, logging to <db>-bottomless/{LOG}.",
)
@click.option("--dir", "folder", help="Ship every SQLite database in this folder (instead of -d).")
@click.option("--pattern", default="*.db", show_default=True, help="With --dir: the file names to ship.")
@click.option("--recursive", is_flag=True, help="With --dir: in sub-folders too.")
@click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), help="Ship the databases this YAML file lists."
)
@click.option("--metrics-addr", help="With --dir/--config: serve Prometheus metrics on HOST:PORT.")
@click.option(
    "--threads", type=click.IntRange(1, 256), default=8, show_default=True, help="With --dir/--config: worker threads."
)
@pass_state
def replicate_cmd(
    state: CliState,
    exit_when_idle: bool,
    parent_pid: int | None,
    detach: bool,
    folder: str | None,
    pattern: str,
    recursive: bool,
    config_file: str | None,
    metrics_addr: str | None,
    threads: int,
) -> None:
    """Ship the spool of DATABASE (-d, a file) to S3 until stopped (SIGTERM/SIGINT);
    or, with --dir or --config, every database found there (SIGHUP re-reads)."""
    many = folder is not None or config_file is not None
    if folder is not None and config_file is not None:
        raise click.UsageError("give --dir or --config, not both")
    if many:
        if state.database:
            raise click.UsageError("-d names one database; --dir and --config replace it")
        if exit_when_idle or parent_pid is not None or detach:
            raise click.UsageError("--exit-when-idle, --parent-pid and --detach go with -d only")
        from bottomless_cli.commands.fleet_run import run_fleet

        run_fleet(state, folder, pattern, recursive, config_file, metrics_addr, threads)
        return
    if metrics_addr is not None or recursive or pattern != "*.db":
        raise click.UsageError("--metrics-addr, --pattern and --recursive go with --dir or --config")
    path, config = state.local_database(may_be_new=detach)
    if detach:
        background.detach(path)
    else:
        background.side_folder(path)
    replicate(path, config, exit_when_idle, parent_pid)


@click.command("sync")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait.")
@pass_state
def sync_cmd(state: CliState, timeout: float) -> None:
    """Return once every transaction committed before it started is in S3."""
    path, config = state.local_database()
    if not is_locked(SideFolder.of(path).path):
        rep = Replicator(path, config)
        try:
            if rep.acquire(timeout=0):
                rep.ship()
        finally:
            rep.release()
    try:
        wait_durable(path, timeout=timeout)
    except TimeoutError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{path}: every committed transaction is in S3")


@click.command("snapshot")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds to wait.")
@pass_state
def snapshot_cmd(state: CliState, timeout: float) -> None:
    """Start a new generation of DATABASE (-d) now, from its current state."""
    path, config = state.local_database()
    rep = Replicator(path, config)
    if rep.acquire(timeout=0):
        try:
            gen = rep.start_new_generation()
        finally:
            rep.release()
        click.echo(f"new generation {gen.generation}")
        return
    side = SideFolder.of(path)
    request_snapshot(side)
    deadline = time.monotonic() + timeout
    while snapshot_requested(side):
        if time.monotonic() > deadline:
            raise click.ClickException(f"the running replicator did not take the snapshot within {timeout:.0f}s")
        time.sleep(0.1)
    click.echo("the running replicator started a new generation")


@click.command("restore-missing")
@pass_state
def restore_missing_cmd(state: CliState) -> None:
    """Restore DATABASE (-d, a file) from S3 if it is missing or empty."""
    path, config = state.local_database(may_be_new=True)
    restore_missing(path, config)


def restore_missing(path: str, config: Config) -> None:
    result = restore_if_missing(path, config, S3Store(config.endpoint, config.bucket))
    if result is not None:
        click.echo(f"bottomless: restored {path} from generation {result.generation}", err=True)

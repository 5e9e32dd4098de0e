"""``replicate``, ``sync`` and ``snapshot``: the commands that ship a local
database (``-d`` names its file here)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType

import click

from bottomless.config import Config
from bottomless.daemon import LOG_FILE
from bottomless.errors import BottomlessError
from bottomless.lock import is_locked
from bottomless.replicator import SNAPSHOT_REQUEST, Replicator, wait_durable
from bottomless.restore_on_open import restore_if_missing
from bottomless.s3 import S3Store
from bottomless.spool import spool_dir
from bottomless_cli.context import CliState, pass_state


def _side_folder(path: str) -> str:
    """Create the side folder of ``path`` (a checked SQLite file), with a
    clear error when its directory does not allow it."""
    folder = spool_dir(path)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(
            f"cannot replicate {path}: cannot create {folder} ({exc.strerror}); bottomless keeps its spool "
            f"beside the database, so {os.path.dirname(path)} must be writable by this user"
        ) from None
    return folder


def _detach(log_path: str, status: int = 0) -> None:
    """Go on in the background, in a session of its own, writing to
    ``log_path``; the process that started this command gets ``status`` at
    once."""
    try:
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise click.ClickException(f"cannot open the replicator's log {log_path}: {exc.strerror}") from None
    if os.fork():
        os._exit(status)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(devnull)
    os.close(log_fd)


def _replicate(path: str, config: Config, exit_when_idle: bool, parent_pid: int | None) -> None:
    rep = Replicator(path, config)

    def stop(signum: int, frame: FrameType | None) -> None:
        rep.request_stop()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    rep.run(exit_when_idle=exit_when_idle, parent_pid=parent_pid)
    rep.lock.release()
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
    help=f"Check the settings and the database, then go on in the background, logging to <db>-bottomless/{LOG_FILE}.",
)
@pass_state
def replicate_cmd(state: CliState, exit_when_idle: bool, parent_pid: int | None, detach: bool) -> None:
    """Ship the spool of DATABASE (-d, a file) to S3 until stopped (SIGTERM/SIGINT)."""
    path, config = state.local_database(may_be_new=detach)
    if detach:
        _detach(os.path.join(_side_folder(path), LOG_FILE))
    else:
        _side_folder(path)
    _replicate(path, config, exit_when_idle, parent_pid)


@click.command("on-open", hidden=True)
@click.option("--parent-pid", type=int, required=True, help="The host process that opened the database.")
@pass_state
def on_open_cmd(state: CliState, parent_pid: int) -> None:
    """What the extension runs when a shell opens DATABASE (-d, a file):
    restore it if it is missing or empty, then start its replicator in the
    background (LIBSQL_BOTTOMLESS_AUTOSTART=0 turns this off)."""
    path, config = state.local_database(may_be_new=True)
    status = 0
    try:
        _restore_missing(path, config)
    except BottomlessError as exc:
        # Shipping still starts (S3 may be back soon); it refuses, loudly, to
        # overwrite a bucket whose history this database does not continue.
        click.ClickException(f"could not restore {path} from S3: {exc}").show()
        status = 1
    _detach(os.path.join(_side_folder(path), LOG_FILE), status)
    _replicate(path, config, exit_when_idle=True, parent_pid=parent_pid)


@click.command("sync")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait.")
@pass_state
def sync_cmd(state: CliState, timeout: float) -> None:
    """Return once every transaction committed before it started is in S3."""
    path, config = state.local_database()
    if not is_locked(spool_dir(path)):
        rep = Replicator(path, config)
        try:
            if rep.lock.acquire(timeout=0):
                rep.ship()
        finally:
            rep.lock.release()
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
    if rep.lock.acquire(timeout=0):
        try:
            rep.prepare_for_snapshot()
            gen = rep.new_generation(parent=rep.parent_generation())
        finally:
            rep.lock.release()
        click.echo(f"new generation {gen.generation}")
        return
    request = Path(spool_dir(path), SNAPSHOT_REQUEST)
    request.touch()
    deadline = time.monotonic() + timeout
    while request.exists():
        if time.monotonic() > deadline:
            raise click.ClickException(f"the running replicator did not take the snapshot within {timeout:.0f}s")
        time.sleep(0.1)
    click.echo("the running replicator started a new generation")


@click.command("restore-missing")
@pass_state
def restore_missing_cmd(state: CliState) -> None:
    """Restore DATABASE (-d, a file) from S3 if it is missing or empty."""
    path, config = state.local_database(may_be_new=True)
    _restore_missing(path, config)


def _restore_missing(path: str, config: Config) -> None:
    result = restore_if_missing(path, config, S3Store(config.endpoint, config.bucket))
    if result is not None:
        click.echo(f"bottomless: restored {path} from generation {result.generation}", err=True)

"""Going on in the background: the side folder a replicator needs, and
detaching from the process that started the command (a shell waits only for
the checks before it)."""

from __future__ import annotations

import os

import click

from bottomless.side_files import SideFolder, adopt, ensure_folder


def side_folder(path: str) -> str:
    """Create the side folder of ``path`` (a checked SQLite file), with a
    clear error when its directory does not allow it."""
    folder = SideFolder.of(path).path
    try:
        ensure_folder(folder)
    except OSError as exc:
        raise click.ClickException(
            f"cannot replicate {path}: cannot create {folder} ({exc.strerror}); bottomless keeps its spool "
            f"beside the database, so {os.path.dirname(path)} must be writable by this user"
        ) from None
    return folder


def detach(path: str, status: int = 0) -> None:
    """Go on in the background, in a session of its own, writing to the
    replicator's log beside the database ``path``; the process that started
    this command gets ``status`` at once."""
    log_path = str(SideFolder(side_folder(path)).log)
    try:
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise click.ClickException(f"cannot open the replicator's log {log_path}: {exc.strerror}") from None
    adopt(log_path, os.path.dirname(log_path))
    if os.fork():
        os._exit(status)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(devnull)
    os.close(log_fd)

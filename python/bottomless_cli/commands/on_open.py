"""``on-open``: what the extension runs when a shell opens a database."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from bottomless.errors import BottomlessError
from bottomless.fleet_coverage import covering
from bottomless_cli.background import detach
from bottomless_cli.context import CliState, pass_state

log = logging.getLogger(__name__)


@click.command("on-open", hidden=True)
@click.option("--parent-pid", type=int, required=True, help="The host process that opened the database.")
@pass_state
def on_open_cmd(state: CliState, parent_pid: int) -> None:
    """Restore DATABASE (-d, a file) if it is missing or empty, then start
    its replicator in the background (LIBSQL_BOTTOMLESS_AUTOSTART=0 turns
    this off), unless a running ``replicate --dir/--config`` covers it.
    The shell waits for this command, so the checks come first and the S3
    client (slow to import) only when there is a restore to do or after
    detaching."""
    path, config = state.local_database(may_be_new=True)
    status = 0
    if not os.path.exists(path) or Path(path).stat().st_size == 0:
        from bottomless_cli.commands.replicate import restore_missing

        try:
            restore_missing(path, config)
        except BottomlessError as exc:
            # Shipping still starts (S3 may be back soon); it refuses, loudly,
            # to overwrite a bucket whose history this database does not continue.
            click.ClickException(f"could not restore {path} from S3: {exc}").show()
            status = 1
    if (fleet := covering(path)) is not None:
        # A multi-database replicator ships it (its folder or configuration
        # file covers this path, and it watches for new databases there).
        log.info("%s is replicated by the running replicator pid %d", path, fleet.pid)
        raise click.exceptions.Exit(status)
    detach(path, status)
    from bottomless_cli.commands.replicate import replicate

    replicate(path, config, exit_when_idle=True, parent_pid=parent_pid)

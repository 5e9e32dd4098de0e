"""``restore``: restore the database from S3."""

from __future__ import annotations

import logging
import os
import shutil
from datetime import datetime

import click

from bottomless.restore import restore
from bottomless.restore_marker import mark_restored
from bottomless_cli.commands.fetch_options import fetch_options, tuning
from bottomless_cli.commands.progress import RestoreProgress, print_json, summary
from bottomless_cli.context import CliState, generation_option, pass_state
from bottomless_cli.dates import UTC_DATETIME

log = logging.getLogger(__name__)


@click.command("restore")
@click.option("-g", "--generation", help="Restore this generation (default: the newest).")
@click.option("-u", "--utc-time", type=UTC_DATETIME, help="Restore the state as of this UTC time.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write a copy here (default: the database itself: the file -d names, else the database name).",
)
@click.option("--force", is_flag=True, help="Replace an existing database (kept as <file>.bottomless.backup).")
@click.option("--json", "as_json", is_flag=True, help="Print the restore's figures as JSON.")
@fetch_options
@pass_state
def restore_cmd(
    state: CliState,
    generation: str | None,
    utc_time: datetime | None,
    output: str | None,
    force: bool,
    as_json: bool,
    part_mib: int,
    parallel: int,
) -> None:
    """Restore the database."""
    named = generation_option(generation)
    store = state.store()
    db_name = state.db_name()
    log.info("Database: %s", db_name)
    target = output or state.local_path() or db_name
    if os.path.exists(target) and os.path.getsize(target) > 0:
        if not force:
            raise click.ClickException(
                f"{target} exists and holds data; restore elsewhere with -o, or replace it with --force "
                f"(a copy is kept as {target}.bottomless.backup)"
            )
        shutil.copyfile(target, target + ".bottomless.backup")
    with RestoreProgress(f"restoring {db_name}", enabled=False if as_json else None) as progress:
        result = restore(
            store,
            db_name,
            target,
            generation=named,
            until=utc_time,
            verify=state.config().verify_crc,
            progress=progress,
            tuning=tuning(part_mib, parallel),
        )
    if output is None:
        # The database itself: replication continues from the restored state.
        # A copy made with -o is only a file to look at.
        mark_restored(os.path.abspath(target), str(result.generation))
    if as_json:
        print_json(result)
        return
    click.echo(
        f"Restored {db_name} from generation {result.generation} into {result.path} "
        f"({result.db_size} pages, {result.frames_applied} WAL frames applied)"
    )
    click.echo(summary("restored", db_name, result))

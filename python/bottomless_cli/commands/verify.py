"""``verify``: restore into a scratch file and check it."""

from __future__ import annotations

from datetime import datetime

import click

from bottomless.verify import verify
from bottomless_cli.commands.fetch_options import fetch_options, tuning
from bottomless_cli.commands.progress import RestoreProgress, print_json, summary
from bottomless_cli.context import CliState, generation_option, pass_state
from bottomless_cli.dates import UTC_DATETIME


@click.command("verify")
@click.option("-g", "--generation", help="Verify this generation (default: the newest).")
@click.option("-u", "--utc-time", type=UTC_DATETIME, help="Verify the state as of this UTC time.")
@click.option("--json", "as_json", is_flag=True, help="Print the verification's figures as JSON.")
@fetch_options
@pass_state
def verify_cmd(
    state: CliState, generation: str | None, utc_time: datetime | None, as_json: bool, part_mib: int, parallel: int
) -> None:
    """Restore into a temporary file and check every checksum and the database's integrity."""
    named = generation_option(generation)
    store = state.store()
    db_name = state.db_name()
    with RestoreProgress(f"verifying {db_name}", enabled=False if as_json else None) as progress:
        result = verify(
            store,
            db_name,
            generation=named,
            until=utc_time,
            progress=progress,
            tuning=tuning(part_mib, parallel),
        )
    if as_json:
        print_json(result)
        return
    chain = " <- ".join(str(g) for g in reversed(result.generations))
    click.echo(f"generation:         {chain}")
    click.echo(f"integrity check:    {result.integrity}")
    click.echo(f"checksums verified: {result.checksums_verified}")
    click.echo(f"batches applied:    {result.batches_applied}")
    click.echo(f"database size:      {result.db_size} pages of {result.page_size} bytes")
    click.echo(summary("verified", db_name, result))

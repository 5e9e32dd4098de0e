"""``rm``: remove generations."""

from __future__ import annotations

from datetime import datetime

import click

from bottomless import catalog
from bottomless.retention import remove_generation, remove_older_than
from bottomless_cli.context import CliState, generation_option, pass_state
from bottomless_cli.dates import UTC_DATETIME


@click.command("rm")
@click.option("-g", "--generation", help="Remove this generation (even the newest).")
@click.option("--older-than", type=UTC_DATETIME, help="Remove generations created before DATE.")
@click.option("-v", "--verbose", is_flag=True, help="Report what was removed.")
@pass_state
def rm(state: CliState, generation: str | None, older_than: datetime | None, verbose: bool) -> None:
    """Remove given generation from remote storage.

    --older-than never removes the newest generation, nor one that a kept
    generation still depends on.
    """
    if (generation is None) == (older_than is None):
        raise click.UsageError("give exactly one of -g/--generation and --older-than")
    named = generation_option(generation)
    store = state.store()
    db_name = state.db_name()
    if named is not None:
        if named not in catalog.list_generations(store, db_name):
            raise click.ClickException(f"generation {named} of {db_name!r} does not exist")
        remove_generation(store, db_name, named)
        if verbose:
            click.echo(f"Removed generation {named}")
        return
    assert older_than is not None
    removal = remove_older_than(store, db_name, older_than)
    if verbose:
        for gen in removal.removed:
            click.echo(f"Removed generation {gen}")
        for gen in removal.kept_as_parents:
            click.echo(f"Kept generation {gen}: a newer generation depends on it")
        count = len(removal.removed)
        click.echo(f"Removed {count} generation{'' if count == 1 else 's'}")

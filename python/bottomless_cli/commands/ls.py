"""``ls``: list generations."""

from __future__ import annotations

import json
from datetime import datetime

import click

from bottomless import catalog
from bottomless.describe import describe
from bottomless.generation import created_at
from bottomless_cli.context import CliState, generation_option, pass_state
from bottomless_cli.dates import UTC_DATETIME


@click.command("ls")
@click.option("-v", "--verbose", is_flag=True, help="Show details of each generation.")
@click.option("-l", "--limit", type=click.IntRange(min=1), help="Show at most this many.")
@click.option("-g", "--generation", help="Show only this generation.")
@click.option("--older-than", type=UTC_DATETIME, help="Only generations created before DATE.")
@click.option("--newer-than", type=UTC_DATETIME, help="Only generations created after DATE.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def ls(
    state: CliState,
    verbose: bool,
    limit: int | None,
    generation: str | None,
    older_than: datetime | None,
    newer_than: datetime | None,
    as_json: bool,
) -> None:
    """List available generations, newest first."""
    named = generation_option(generation)
    store = state.store()
    db_name = state.db_name()
    cipher = state.config().cipher()
    existing = catalog.list_generations(store, db_name)
    if named is not None:
        generations = [named]
        if named not in existing:
            raise click.ClickException(f"generation {named} of {db_name!r} does not exist")
    else:
        generations = existing
    if older_than is not None:
        generations = [g for g in generations if created_at(g) < older_than]
    if newer_than is not None:
        generations = [g for g in generations if created_at(g) > newer_than]
    if limit is not None:
        generations = generations[:limit]

    if as_json:
        if verbose:
            items = [describe(store, db_name, g, cipher, existing).to_json() for g in generations]
        else:
            items = [
                {
                    "generation": str(g),
                    "created_at": created_at(g).isoformat(timespec="milliseconds"),
                }
                for g in generations
            ]
        click.echo(json.dumps(items, indent=2))
        return
    for index, gen in enumerate(generations):
        if verbose:
            if index:
                click.echo("")
            click.echo(describe(store, db_name, gen, cipher, existing).to_text())
        else:
            click.echo(str(gen))

"""``status``: where the backup of each database stands (``bottomless.status``)."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from bottomless.catalog import list_databases
from bottomless.config import Config
from bottomless.errors import BottomlessError
from bottomless.status import (
    DatabaseStatus,
    StatusTarget,
    file_target,
    gather,
    plan_targets,
)
from bottomless_cli.commands.fleet_run import config_sources, dir_sources
from bottomless_cli.context import CliState, pass_state


@click.command("status")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Every database a replicator configuration file names.",
)
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Every SQLite database in DIR (as replicate --dir).",
)
@click.option("--pattern", default="*.db", show_default=True, help="With --dir: file names to include.")
@click.option("--recursive", is_flag=True, help="With --dir: look in sub-folders too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: one object per database.")
@pass_state
def status_cmd(
    state: CliState, config_file: Path | None, folder: Path | None, pattern: str, recursive: bool, as_json: bool
) -> None:
    """Per database: newest generation, last commit in S3 and its age, unshipped
    bytes, replicator, lease and last error.

    Names the databases of -d (a file or a name in the bucket), --config or
    --dir; with none of them, every database in the bucket."""
    chosen = [flag for flag, value in (("-d", state.database), ("--config", config_file), ("--dir", folder)) if value]
    if len(chosen) > 1:
        raise click.UsageError(f"{' and '.join(chosen)} cannot be combined: name the databases one way")
    if folder is None and (recursive or pattern != "*.db"):
        raise click.UsageError("--pattern and --recursive go with --dir")
    rows = gather(_targets(state, config_file, folder, pattern, recursive))
    now = time.time()
    if as_json:
        click.echo(json.dumps([row.to_json(now) for row in rows], indent=2))
        return
    click.echo(render(rows, now))


def _targets(
    state: CliState, config_file: Path | None, folder: Path | None, pattern: str, recursive: bool
) -> list[StatusTarget]:
    if config_file is not None or folder is not None:
        # The databases `replicate --config/--dir` with the same arguments ships.
        if config_file is not None:
            sources = config_sources(state, str(config_file))
        else:
            assert folder is not None
            sources = dir_sources(state, str(folder), pattern, recursive)
        try:
            targets = plan_targets(sources.plan())
        except OSError as exc:
            raise click.ClickException(f"cannot list the databases: {exc.strerror or exc} ({exc.filename})") from None
        if not targets:
            where = config_file if config_file is not None else f"{folder} (pattern {pattern!r})"
            raise click.ClickException(f"no databases to report on: {where} names none that exists")
        return targets
    if state.database is not None:
        if state.is_path() or os.path.isfile(state.database):
            return [file_target(state.database, _file_config(state))]
        return [StatusTarget(state.db_name(), None, state.config())]
    config = state.config()
    try:
        names = list_databases(state.store())
    except BottomlessError as exc:
        raise click.ClickException(f"cannot list the databases in the bucket: {exc}") from None
    if not names:
        raise click.ClickException(f"no database backups in bucket {config.bucket!r} at {config.endpoint}")
    return [StatusTarget(name, None, config) for name in names]


def _file_config(state: CliState) -> Config:
    # -d is a file: its <db-name> comes from the variable or its name.
    return Config.from_env(endpoint=state.endpoint, bucket=state.bucket)


# ---- the table ------------------------------------------------------------------------

HEADER = ("DATABASE", "GENERATION", "LAST COMMIT IN S3", "UNSHIPPED", "REPLICATOR", "LEASE", "PROBLEM")


def render(rows: list[DatabaseStatus], now: float) -> str:
    table = [HEADER] + [_cells(row, now) for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER) - 1)]
    lines = []
    for r in table:
        lines.append("  ".join([c.ljust(w) for c, w in zip(r, widths, strict=False)] + [r[-1]]).rstrip())
    return "\n".join(lines)


def _cells(row: DatabaseStatus, now: float) -> tuple[str, ...]:
    if row.last_frame is None:
        last = "-"
    else:
        age = "" if row.last_commit_at is None else f", {_age(now - row.last_commit_at)} ago"
        last = (f"frame {row.last_frame}" if row.last_frame else "snapshot") + age
    if row.unshipped_bytes is None:
        unshipped = "?"
    else:
        unshipped = f"{_size(row.unshipped_bytes)} ({row.unshipped_transactions} tx)"
        if row.unshipped_transactions:
            unshipped += f", oldest {_age(row.lag(now))}"
    replicator = "-" if not row.running else (f"pid {row.replicator_pid}" if row.replicator_pid else "running")
    if row.lease is None:
        lease = "-"
    elif row.lease.state == "released":
        lease = "released"
    else:
        until = datetime.fromtimestamp(row.lease.expires_at, UTC).strftime("%H:%M:%SZ")
        who = "this file" if row.lease.ours else row.lease.holder
        lease = f"{row.lease.state} until {until} by {who}"
    problems = list(row.notes)
    if row.error is not None:
        gone = "" if row.error.replicator_alive else ", that replicator has exited"
        how = "stopped" if row.error.stopped else "retrying"
        problems.insert(
            0, f"{how} since {_age(now - row.error.since)} ago (pid {row.error.pid}{gone}): {row.error.message}"
        )
    return (row.name, row.generation or "-", last, unshipped, replicator, lease, "; ".join(problems) or "-")


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"

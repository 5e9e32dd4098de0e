"""The ``bottomless-cli`` entry point: global options and command registry.

Commands live in ``bottomless_cli.commands``, one module each; add one by
importing it here and calling ``cli.add_command``.
"""

from __future__ import annotations

import errno
from typing import Any

import click

from bottomless.errors import BottomlessError
from bottomless_cli import logsetup
from bottomless_cli.commands.ls import ls
from bottomless_cli.commands.replicate import (
    on_open_cmd,
    replicate_cmd,
    restore_missing_cmd,
    snapshot_cmd,
    sync_cmd,
)
from bottomless_cli.commands.restore import restore_cmd
from bottomless_cli.commands.rm import rm
from bottomless_cli.commands.verify import verify_cmd
from bottomless_cli.context import CliState


class BottomlessGroup(click.Group):
    """Turns library errors into one clear line (and exit status 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BottomlessError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:  # a missing library, a read-only directory, a full disk
            raise click.ClickException(describe_os_error(exc)) from exc


@click.group(cls=BottomlessGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-e", "--endpoint", help="S3 endpoint [LIBSQL_BOTTOMLESS_ENDPOINT].")
@click.option("-b", "--bucket", help="Bucket [LIBSQL_BOTTOMLESS_BUCKET].")
@click.option("-d", "--database", help="Database name [LIBSQL_BOTTOMLESS_DATABASE_ID].")
@click.version_option(package_name="bottomless", prog_name="bottomless-cli")
@click.pass_context
def cli(ctx: click.Context, endpoint: str | None, bucket: str | None, database: str | None) -> None:
    """Bottomless CLI: browse, restore, verify and remove backups in S3."""
    try:
        logsetup.configure()
    except logsetup.LogLevelError as exc:
        raise click.ClickException(str(exc)) from None
    ctx.obj = CliState(endpoint=endpoint, bucket=bucket, database=database)


def describe_os_error(exc: OSError) -> str:
    """``[Errno 13] Permission denied: 'x'`` as a sentence with a way out."""
    what = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename else ""
    hint = {
        errno.EACCES: "check the permissions of that path for this user",
        errno.EPERM: "check the permissions of that path for this user",
        errno.EROFS: "the file system is read-only; choose another place",
        errno.ENOSPC: "free some space, or choose another place",
        errno.ENOENT: "check the path",
    }.get(exc.errno or 0)
    return f"{what}{where}" + (f"; {hint}" if hint else "")


for command in (
    ls,
    restore_cmd,
    rm,
    verify_cmd,
    replicate_cmd,
    sync_cmd,
    snapshot_cmd,
    restore_missing_cmd,
    on_open_cmd,
):
    cli.add_command(command)

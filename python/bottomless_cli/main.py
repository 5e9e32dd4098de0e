"""The ``bottomless-cli`` entry point: global options and command registry.

Commands live in ``bottomless_cli.commands``, one module each; add one to
COMMANDS. They are imported when run (click's lazy loading of
subcommands): the extension runs ``on-open`` each time a shell opens a
database, and must not wait for boto3 to import before the checks.
"""

from __future__ import annotations

import errno
import os
from importlib import import_module
from typing import Any

import click

from bottomless import allocator
from bottomless.errors import BottomlessError
from bottomless_cli import logsetup
from bottomless_cli.context import CliState

# command name -> "module:attribute"
COMMANDS = {
    "ls": "bottomless_cli.commands.ls:ls",
    "restore": "bottomless_cli.commands.restore:restore_cmd",
    "rm": "bottomless_cli.commands.rm:rm",
    "verify": "bottomless_cli.commands.verify:verify_cmd",
    "replicate": "bottomless_cli.commands.replicate:replicate_cmd",
    "sync": "bottomless_cli.commands.replicate:sync_cmd",
    "snapshot": "bottomless_cli.commands.replicate:snapshot_cmd",
    "restore-missing": "bottomless_cli.commands.replicate:restore_missing_cmd",
    "on-open": "bottomless_cli.commands.on_open:on_open_cmd",
    "status": "bottomless_cli.commands.status:status_cmd",
}


class BottomlessGroup(click.Group):
    """Loads COMMANDS on use, and turns library errors into one clear line
    (and exit status 1)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        command = getattr(import_module(module), attribute)
        assert isinstance(command, click.Command) and command.name == cmd_name, target
        return command

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
@click.option(
    "-d", "--database", help="Database file (a path), or its name in the bucket [LIBSQL_BOTTOMLESS_DATABASE_ID]."
)
@click.option(
    "--log-format",
    type=click.Choice(logsetup.FORMATS),
    default="text",
    show_default=True,
    envvar="BOTTOMLESS_LOG_FORMAT",
    help="Log lines as text, or one JSON object per line [BOTTOMLESS_LOG_FORMAT].",
)
@click.version_option(package_name="bottomless", prog_name="bottomless-cli")
@click.pass_context
def cli(ctx: click.Context, endpoint: str | None, bucket: str | None, database: str | None, log_format: str) -> None:
    """Bottomless CLI: browse, restore, verify and remove backups in S3."""
    # The native library and the processes this one starts log the same way.
    os.environ["BOTTOMLESS_LOG_FORMAT"] = log_format
    try:
        logsetup.configure(fmt=log_format)
    except logsetup.LogLevelError as exc:
        raise click.ClickException(str(exc)) from None
    allocator.return_large_blocks()  # restore's resident set stays bounded (allocator.py says why)
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

"""State shared by the commands of one ``bottomless-cli`` invocation."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

from bottomless import layout
from bottomless.config import Config
from bottomless.errors import LayoutError
from bottomless.generation import parse_generation
from bottomless.snapshot_check import SQLITE_MAGIC

if TYPE_CHECKING:
    from bottomless.s3 import S3Store


@dataclass
class CliState:
    """Global options, and the store built from them on first use.

    ``-d`` is a database file or a ``<db-name>`` in the bucket; a value with a
    path separator is always a file, whose name in the bucket is
    LIBSQL_BOTTOMLESS_DATABASE_ID or else its file name, as the replicator
    names it.
    """

    endpoint: str | None = None
    bucket: str | None = None
    database: str | None = None
    _config: Config | None = field(default=None, repr=False)
    _store: S3Store | None = field(default=None, repr=False)

    def is_path(self) -> bool:
        return self.database is not None and ("/" in self.database or os.sep in self.database)

    def config(self) -> Config:
        if self._config is None:
            name = None if self.is_path() else self.database
            if name is not None:
                try:
                    layout.validate_db_name(name)
                except LayoutError as exc:
                    raise click.BadParameter(str(exc), param_hint="'-d' / '--database'") from None
            self._config = Config.from_env(endpoint=self.endpoint, bucket=self.bucket, database_id=name)
        return self._config

    def store(self) -> S3Store:
        # Imported here: boto3 is slow to import, and on-open checks the
        # settings and the file before anything talks to S3.
        from bottomless.s3 import S3Store

        if self._store is None:
            config = self.config()
            self._store = S3Store(config.endpoint, config.bucket)
            self._store.check_bucket()
        return self._store

    def local_path(self) -> str | None:
        """The database file ``-d`` names, when it names one by path."""
        return self.database if self.is_path() else None

    def db_name(self) -> str:
        """The ``<db-name>`` in the bucket: from ``-d`` (a name, or a file's
        name), LIBSQL_BOTTOMLESS_DATABASE_ID, else the bucket's only database."""
        config = self.config()
        if config.database_id:
            return config.database_id
        if self.database is not None:
            try:
                return layout.db_name_for_path(self.database)
            except LayoutError as exc:
                raise click.BadParameter(str(exc), param_hint="'-d' / '--database'") from None
        from bottomless.catalog import list_databases

        names = list_databases(self.store())
        if len(names) == 1:
            return names[0]
        if not names:
            raise click.ClickException(f"no database backups in bucket {config.bucket!r} at {config.endpoint}")
        raise click.ClickException(
            f"bucket {config.bucket!r} holds several databases ({', '.join(names)}); "
            "choose one with -d/--database or LIBSQL_BOTTOMLESS_DATABASE_ID"
        )

    def local_database(self, may_be_new: bool = False) -> tuple[str, Config]:
        """``-d`` as a SQLite database file to ship (its absolute path), and
        the configuration to ship it with. Refuses, before anything is
        created beside it, a file that is not SQLite; a missing or empty file
        only when ``may_be_new`` (a host is about to create it)."""
        if not self.database:
            raise click.UsageError("name the database file with -d/--database")
        path = os.path.abspath(self.database)
        if os.path.isdir(path):
            raise click.ClickException(f"{path} is a directory, not a database file")
        if not os.path.exists(path):
            if not may_be_new:
                raise click.ClickException(f"{path} does not exist; give the path of a SQLite database with -d")
        else:
            check_sqlite_file(path)
        # -d is a file here; its <db-name> comes from the variable or its name.
        config = Config.from_env(endpoint=self.endpoint, bucket=self.bucket)
        return path, config


def check_sqlite_file(path: str) -> None:
    """A clear error unless ``path`` is empty or starts with SQLite's header."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None
    if head and head != SQLITE_MAGIC:
        raise click.ClickException(
            f"{path} is not a SQLite database (it does not start with {SQLITE_MAGIC[:-1].decode()!r}); "
            "bottomless replicates SQLite and libSQL databases only"
        )


pass_state = click.make_pass_decorator(CliState)


def generation_option(value: str | None) -> uuid.UUID | None:
    """Parse a ``-g`` value (None passes through)."""
    if value is None:
        return None
    try:
        return parse_generation(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'-g' / '--generation'") from None

"""State shared by the commands of one ``bottomless-cli`` invocation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import click

from bottomless import catalog
from bottomless.config import Config
from bottomless.generation import parse_generation
from bottomless.s3 import S3Store


@dataclass
class CliState:
    """Global options, and the store built from them on first use."""

    endpoint: str | None = None
    bucket: str | None = None
    database: str | None = None
    _config: Config | None = field(default=None, repr=False)
    _store: S3Store | None = field(default=None, repr=False)

    def config(self) -> Config:
        if self._config is None:
            self._config = Config.from_env(endpoint=self.endpoint, bucket=self.bucket, database_id=self.database)
        return self._config

    def store(self) -> S3Store:
        if self._store is None:
            config = self.config()
            self._store = S3Store(config.endpoint, config.bucket)
            self._store.check_bucket()
        return self._store

    def db_name(self) -> str:
        """``-d``/LIBSQL_BOTTOMLESS_DATABASE_ID, else the bucket's only database."""
        config = self.config()
        if config.database_id:
            return config.database_id
        names = catalog.list_databases(self.store())
        if len(names) == 1:
            return names[0]
        if not names:
            raise click.ClickException(f"no database backups in bucket {config.bucket!r} at {config.endpoint}")
        raise click.ClickException(
            f"bucket {config.bucket!r} holds several databases ({', '.join(names)}); "
            "choose one with -d/--database or LIBSQL_BOTTOMLESS_DATABASE_ID"
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

"""The main job in one command: write, replicate, delete, restore.

    python -m bottomless.demo

Uses LIBSQL_BOTTOMLESS_ENDPOINT when it is set, else starts an embedded S3
server (moto) for the duration of the demo.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click

from bottomless import catalog
from bottomless.config import Config
from bottomless.connection import connect
from bottomless.embedded import EmbeddedServerMissing, embedded_s3
from bottomless.s3 import S3Store
from bottomless.side_files import folder_of


@contextlib.contextmanager
def _endpoint() -> Iterator[str]:
    configured = os.environ.get("LIBSQL_BOTTOMLESS_ENDPOINT")
    if configured:
        yield configured
        return
    click.echo("no LIBSQL_BOTTOMLESS_ENDPOINT set: starting an embedded S3 server (moto)")
    try:
        server = embedded_s3()
        endpoint = server.__enter__()
    except EmbeddedServerMissing as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        yield endpoint
    finally:
        server.__exit__(None, None, None)


def _remove_local(db: Path) -> None:
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    shutil.rmtree(folder_of(db), ignore_errors=True)
    db.unlink()


@click.command(help="Write a database through bottomless, replicate it, delete it and restore it.")
def main() -> None:
    with _endpoint() as endpoint, tempfile.TemporaryDirectory(prefix="bottomless-demo-") as tmp:
        config = Config.from_env(
            endpoint=endpoint, bucket=os.environ.get("LIBSQL_BOTTOMLESS_BUCKET", "bottomless-demo")
        )
        db = Path(tmp) / "demo.db"
        click.echo(f"1. writing {db} through the bottomless VFS, replicating to {endpoint}, bucket {config.bucket}")
        conn = connect(str(db), config=config, isolation_level=None)
        conn.execute("CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, body TEXT)")
        conn.flush()
        for i in range(1, 6):
            conn.execute("INSERT INTO notes(body) VALUES (?)", (f"note number {i}",))
        conn.flush()
        click.echo("   5 rows committed; flush() returned, so every commit is in S3")
        conn.close()
        store = S3Store(config.endpoint, config.bucket)
        name = config.database_id or db.name
        for gen in catalog.list_generations(store, name)[:1]:
            g = catalog.load_generation(store, name, gen)
            click.echo(f"   newest generation {gen}: snapshot + {len(g.batches)} batch(es), last frame {g.last_frame}")
        click.echo(f"2. deleting {db}, its WAL and its spool")
        _remove_local(db)
        click.echo(f"3. opening {db} again: it is missing, so it is restored from S3 first")
        conn = connect(str(db), config=config)
        rows = conn.execute("SELECT id, body FROM notes ORDER BY id").fetchall()
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        conn.close()
        for row_id, body in rows:
            click.echo(f"   {row_id}: {body}")
        click.echo(f"   {len(rows)} rows restored, integrity check: {check}")
        if len(rows) != 5 or check != "ok":
            raise SystemExit("demo failed: the restored database is not what was written")


if __name__ == "__main__":
    main()

"""``bottomless.connect()``: a sqlite3 connection whose commits reach S3.

Restores a missing database first, opens it through the bottomless VFS and
runs a replicator thread behind it. Several connections (or processes) on
one database each start one; the replicator lock lets exactly one ship.
"""

from __future__ import annotations

import atexit
import os
import sqlite3
from typing import Any

from bottomless.config import Config
from bottomless.errors import BottomlessError
from bottomless.replicator import Replicator
from bottomless.restore_on_open import restore_if_missing
from bottomless.s3 import S3Store
from bottomless.snapshot import ensure_wal
from bottomless.sqlite_vfs import register_python_sqlite


def _is_new(path: str) -> bool:
    return not os.path.exists(path) or os.path.getsize(path) == 0


class Connection(sqlite3.Connection):
    """A sqlite3.Connection with its replicator attached."""

    replicator: Replicator

    def flush(self, timeout: float = 30.0) -> None:
        """Return once every commit made so far is in S3."""
        self.replicator.flush(timeout)

    wait_durable = flush

    def close(self) -> None:
        super().close()
        self.replicator.stop()
        atexit.unregister(self.replicator.stop)


def replicated(db_path: str, config: Config, page_size: int | None = None) -> Replicator:
    """Restore ``db_path`` if it is missing, put it in WAL mode (a new
    database with ``page_size``), and start shipping it; the common part of
    every in-process front door."""
    store = S3Store(config.endpoint, config.bucket)
    restore_if_missing(db_path, config, store)
    register_python_sqlite()
    ensure_wal(db_path, page_size if _is_new(db_path) else None)
    rep = Replicator(db_path, config, store)
    rep.start()
    atexit.register(rep.stop)
    return rep


def connect(
    path: str,
    *,
    endpoint: str | None = None,
    bucket: str | None = None,
    database_id: str | None = None,
    config: Config | None = None,
    page_size: int | None = None,
    **kwargs: Any,
) -> Connection:
    """Open ``path`` through the bottomless VFS with replication behind it.

    Settings come from ``config``, else the LIBSQL_BOTTOMLESS_* variables,
    with the keyword arguments taking precedence. A new database is created
    in WAL mode, with ``page_size`` when given (it cannot change after).
    Other keyword arguments go to ``sqlite3.connect``.
    """
    cfg = (config or Config.from_env()).with_overrides(endpoint=endpoint, bucket=bucket, database_id=database_id)
    rep = replicated(path, cfg, page_size)
    conn = sqlite3.connect(f"file:{path}?vfs=bottomless", uri=True, factory=Connection, **kwargs)
    assert isinstance(conn, Connection)
    conn.replicator = rep
    return conn


def connect_apsw(path: str, *, config: Config | None = None, page_size: int | None = None, **overrides: Any) -> Any:
    """The apsw equivalent. apsw runs its own copy of SQLite, and two copies
    in one process must never open the same file (closing one's descriptor
    drops the other's POSIX locks), so the replicator runs as a child
    process that ships until this one exits and the spool is empty."""
    import apsw

    from bottomless.daemon import spawn_replicator
    from bottomless.sqlite_vfs import register_apsw

    cfg = (config or Config.from_env()).with_overrides(**overrides)
    restore_if_missing(path, cfg, S3Store(cfg.endpoint, cfg.bucket))
    register_apsw()
    flags = apsw.SQLITE_OPEN_URI | apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    new = _is_new(path)
    conn = apsw.Connection(f"file:{path}?vfs=bottomless", flags=flags)
    if new and page_size is not None:
        conn.execute(f"PRAGMA page_size={int(page_size)}")
    if conn.execute("PRAGMA journal_mode=wal").fetchall() != [("wal",)]:
        raise BottomlessError(f"{path} cannot be put in WAL mode, which replication needs")
    spawn_replicator(path, cfg)
    return conn

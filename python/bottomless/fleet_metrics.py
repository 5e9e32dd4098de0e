"""S3 requests and uploads of a shared store, counted for the database
whose round runs on the calling thread (one store serves many databases,
so the store itself cannot tell whose request it sends)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from bottomless.layout import parse_batch_name, parse_snapshot_name
from bottomless.metrics import DatabaseMetrics


def upload_kind(key: str) -> str:
    """``batch``, ``merged``, ``snapshot``, ``lease`` or ``meta`` (the small
    objects of a generation) for an uploaded key."""
    last = key.rsplit("/", 1)[-1]
    batch = parse_batch_name(last)
    if batch is not None:
        return "merged" if batch.merged else "batch"
    if parse_snapshot_name(last) is not None:
        return "snapshot"
    if "/" not in key and key.endswith(".lease"):
        return "lease"
    return "meta"


class RoundAttribution:
    """A StoreListener (s3.py) that credits the current thread's database."""

    def __init__(self) -> None:
        self._current = threading.local()

    @contextmanager
    def round_of(self, db: DatabaseMetrics | None) -> Iterator[None]:
        self._current.db = db
        try:
            yield
        finally:
            self._current.db = None

    def _db(self) -> DatabaseMetrics | None:
        return getattr(self._current, "db", None)

    def request(self, kind: str) -> None:
        if (db := self._db()) is not None:
            db.request(kind)

    def uploaded(self, key: str, nbytes: int) -> None:
        if (db := self._db()) is None:
            return
        kind = upload_kind(key)
        if kind == "batch":
            db.batch(nbytes)
        else:
            db.shipped(kind, nbytes)

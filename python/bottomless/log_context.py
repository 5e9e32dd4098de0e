"""Which database a log record is about.

A process that ships many databases logs about all of them through the same
module loggers, so the database cannot be part of the logger's name. A
record names its database either explicitly (``extra={"database": name}``)
or because it was logged inside ``about(name)``: the code that drives one
database's replicator (the single-database daemon, each step of the
multi-database scheduler) wraps that work in it, and every record logged
underneath, in any module, carries the name without each call passing it.
A context variable, not a global: each thread, and each task, has its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_CURRENT: ContextVar[str | None] = ContextVar("bottomless_database", default=None)


@contextmanager
def about(database: str) -> Iterator[None]:
    """Records logged in this block (in this thread) are about ``database``."""
    token = _CURRENT.set(database)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current() -> str | None:
    return _CURRENT.get()


class DatabaseFilter(logging.Filter):
    """Gives each record a ``database`` attribute (None when it is about no
    one database); an explicit ``extra={"database": ...}`` wins. Put it on a
    handler: it runs in the thread that logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "database", None) is None:
            record.database = _CURRENT.get()
        return True

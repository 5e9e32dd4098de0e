"""Logging of ``bottomless-cli``: the level from ``BOTTOMLESS_LOG`` or
``RUST_LOG`` (error/warn/info/debug/trace), and the format (``--log-format``).

Every event is one line, whichever the format, so a service's journal and a
log shipper can split them: ``text`` is for people (a traceback's lines are
joined with ``\\n``), ``json`` is one object per line with ``time``,
``level``, ``logger``, ``message``, ``database`` when the record is about one
(``bottomless.log_context``) and ``exception`` when it carries one.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping

from bottomless.log_context import DatabaseFilter

LEVELS = {
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": logging.DEBUG,
    "off": logging.CRITICAL + 10,
}
FORMATS = ("text", "json")
OUR_LOGGERS = ("bottomless", "bottomless_cli")
_HANDLER_NAME = "bottomless-cli"


class LogLevelError(ValueError):
    pass


def parse_level(spec: str, variable: str) -> tuple[int, bool]:
    """Level for our loggers from an env_logger-style spec such as ``info`` or
    ``warn,bottomless=debug``; the flag says whether "trace" was asked for
    (which also opens the S3 library's logs)."""
    bare: str | None = None
    ours: str | None = None
    for directive in (d.strip() for d in spec.split(",")):
        if not directive:
            continue
        target, _, level = directive.rpartition("=")
        level = level.strip().lower()
        if level not in LEVELS:
            raise LogLevelError(f"{variable}: {directive!r} is not a log level (error, warn, info, debug, trace)")
        if not target.strip():
            bare = level
        elif target.strip().startswith("bottomless"):
            ours = level
    chosen = ours or bare or "warn"
    return LEVELS[chosen], chosen == "trace"


def _utc(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """``TIME LEVEL LOGGER [DATABASE]: MESSAGE`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        database = getattr(record, "database", None)
        about = f" [{database}]" if database else ""
        line = f"{_utc(record)} {record.levelname:>5} {record.name}{about}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line.replace("\n", "\\n")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "time": _utc(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        database = getattr(record, "database", None)
        if database is not None:
            event["database"] = database
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event, ensure_ascii=False)


def configure(env: Mapping[str, str] | None = None, fmt: str = "text") -> None:
    """Send log records to stderr at the configured level, one line each."""
    if fmt not in FORMATS:
        raise LogLevelError(f"--log-format: {fmt!r} is not one of {', '.join(FORMATS)}")
    env = os.environ if env is None else env
    variable = "BOTTOMLESS_LOG" if env.get("BOTTOMLESS_LOG") else "RUST_LOG"
    level, trace = parse_level(env.get(variable, ""), variable)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(DatabaseFilter())
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if trace else logging.WARNING)
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(level)

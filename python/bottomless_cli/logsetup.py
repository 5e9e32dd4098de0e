"""Log level from ``BOTTOMLESS_LOG`` or ``RUST_LOG`` (error/warn/info/debug/trace)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping

LEVELS = {
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": logging.DEBUG,
    "off": logging.CRITICAL + 10,
}
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


def configure(env: Mapping[str, str] | None = None) -> None:
    """Send log records to stderr at the configured level."""
    env = os.environ if env is None else env
    variable = "BOTTOMLESS_LOG" if env.get("BOTTOMLESS_LOG") else "RUST_LOG"
    level, trace = parse_level(env.get(variable, ""), variable)
    handler = logging.StreamHandler()
    formatter = logging.Formatter("%(asctime)s.%(msecs)03dZ %(levelname)5s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if trace else logging.WARNING)
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(level)

"""CLI helpers: log level variables and dates."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bottomless_cli.dates import parse_utc
from bottomless_cli.logsetup import LogLevelError, parse_level


def test_log_levels() -> None:
    assert parse_level("", "RUST_LOG") == (logging.WARNING, False)
    assert parse_level("info", "RUST_LOG") == (logging.INFO, False)
    assert parse_level("warn,bottomless=debug", "RUST_LOG") == (logging.DEBUG, False)
    assert parse_level("aws_sdk=trace,error", "RUST_LOG") == (logging.ERROR, False)
    assert parse_level("TRACE", "BOTTOMLESS_LOG") == (logging.DEBUG, True)
    with pytest.raises(LogLevelError, match="BOTTOMLESS_LOG"):
        parse_level("loud", "BOTTOMLESS_LOG")


def test_dates_are_utc() -> None:
    assert parse_utc("2022-12-15") == datetime(2022, 12, 15, tzinfo=UTC)
    assert parse_utc("2022-12-15 10:00:01.5") == datetime(2022, 12, 15, 10, 0, 1, 500000, UTC)
    assert parse_utc("2022-12-15T10:00:00Z") == datetime(2022, 12, 15, 10, tzinfo=UTC)
    plus2 = datetime(2022, 12, 15, 12, tzinfo=timezone(timedelta(hours=2)))
    assert parse_utc(plus2.isoformat()) == datetime(2022, 12, 15, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a date"):
        parse_utc("yesterday")

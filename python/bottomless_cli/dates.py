"""Dates and times given on the command line (UTC unless they say otherwise)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click


def parse_utc(text: str) -> datetime:
    """``2022-12-15``, ``2022-12-15 10:00``, ``2022-12-15T10:00:00.5Z``, ``...+02:00``."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date/time (expected e.g. 2022-12-15 or 2022-12-15T10:00:00Z)") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class UtcDateTime(click.ParamType):
    """A click parameter type producing aware UTC datetimes."""

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            return parse_utc(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


UTC_DATETIME = UtcDateTime()

"""Generation ids: UUIDv7 with a reversed timestamp.

The timestamp inside the UUID is ``253370761200 - now`` seconds and
``999999999 - now's nanoseconds``, so a plain (lexicographic) S3 listing
returns the newest generation first. Compatible with libSQL's bottomless.
"""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta

REVERSE_EPOCH_SECS = 253370761200
_MAX_NANOS = 999_999_999


def _v7(unix_ms: int) -> uuid.UUID:
    rand = secrets.randbits(74)
    rand_a = rand >> 62  # 12 bits
    rand_b = rand & ((1 << 62) - 1)
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)


def new_generation(now_ns: int | None = None) -> uuid.UUID:
    """A new generation id for the moment ``now_ns`` (ns since the epoch)."""
    if now_ns is None:
        now_ns = time.time_ns()
    seconds, nanos = divmod(now_ns, 1_000_000_000)
    rev_secs = REVERSE_EPOCH_SECS - seconds
    rev_nanos = _MAX_NANOS - nanos
    return _v7(rev_secs * 1000 + rev_nanos // 1_000_000)


def parse_generation(text: str) -> uuid.UUID:
    """Parse a generation id; ValueError unless it is a version-7 UUID."""
    try:
        value = uuid.UUID(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a generation id (a UUID)") from None
    if value.version != 7:
        raise ValueError(f"{text!r} is not a generation id (not a version 7 UUID)")
    return value


def created_at(generation: uuid.UUID) -> datetime:
    """When the generation was created (UTC, millisecond precision)."""
    rev_ms = generation.int >> 80
    rev_secs, rev_millis = divmod(rev_ms, 1000)
    seconds = REVERSE_EPOCH_SECS - rev_secs
    millis = 999 - rev_millis
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds, milliseconds=millis)


def format_created_at(generation: uuid.UUID) -> str:
    """Creation time as ``ls -v`` prints it: ``2022-12-23 08:24:52.500``."""
    return created_at(generation).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]

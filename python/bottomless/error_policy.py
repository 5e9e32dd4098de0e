"""What the replicator does about a failure: one table for the loop.

Retrying helps only where the S3 error says so (``S3Error.transient``, set
where botocore's answer is translated in ``s3.py``); a busy database at
start is worth another try shortly; a diverged history, refused
credentials, a lost lease and every other BottomlessError stop shipping
with the reason; anything else is a bug, said loudly."""

from __future__ import annotations

import enum
import random

from bottomless.errors import BadCredentials, BottomlessError, DivergedError, S3Error
from bottomless.lease import FencedError
from bottomless.snapshot import DatabaseBusy

MAX_BACKOFF_SECS = 30.0


class Verdict(enum.Enum):
    STOP = "stop"  # retrying cannot fix it: stop shipping and say why
    RETRY = "retry"  # back off and try again
    BUSY = "busy"  # the application holds the database: try again shortly
    CRASH = "crash"  # a bug, not a condition


def classify(exc: BaseException, starting: bool) -> Verdict:
    """The verdict on ``exc`` raised while starting (``prepare``) or shipping."""
    if isinstance(exc, (DivergedError, BadCredentials, FencedError)):
        return Verdict.STOP
    if isinstance(exc, S3Error):
        return Verdict.RETRY if exc.transient else Verdict.STOP
    if isinstance(exc, DatabaseBusy):
        # Starting: switching to WAL needs a moment alone with the database.
        # Shipping: a snapshot could not be tied to the spool yet.
        return Verdict.BUSY
    if isinstance(exc, BottomlessError):
        return Verdict.STOP
    return Verdict.CRASH


def next_backoff(previous: float) -> float:
    """Exponential, jittered, between 0.1 and MAX_BACKOFF_SECS seconds."""
    return min(MAX_BACKOFF_SECS, max(0.2, previous * 2)) * random.uniform(0.5, 1.0)


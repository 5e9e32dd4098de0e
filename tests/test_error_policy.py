"""The replicator's error policy as a table (``error_policy.classify``):
which failures it retries, waits out or stops on."""

from __future__ import annotations

import itertools

import pytest

from bottomless.error_policy import MAX_BACKOFF_SECS, Verdict, classify, next_backoff
from bottomless.errors import (
    BadCredentials,
    BottomlessError,
    DivergedError,
    EndpointUnreachable,
    NoSuchBucket,
    S3Error,
    UnsupportedServer,
)
from bottomless.lease import FencedError
from bottomless.snapshot import DatabaseBusy

TABLE = [
    (EndpointUnreachable("no route"), True, Verdict.RETRY),
    (EndpointUnreachable("no route"), False, Verdict.RETRY),
    (S3Error("503 SlowDown", code="SlowDown", transient=True), False, Verdict.RETRY),
    (S3Error("400 InvalidRequest", code="InvalidRequest"), False, Verdict.STOP),
    (BadCredentials("InvalidAccessKeyId", transient=True), True, Verdict.STOP),  # never retried, whatever the flag
    (NoSuchBucket("no bucket"), True, Verdict.STOP),
    (UnsupportedServer("ignores If-None-Match"), True, Verdict.STOP),
    (DivergedError("moved on"), True, Verdict.STOP),
    (FencedError("lost the lease"), False, Verdict.STOP),
    (DatabaseBusy("locked"), True, Verdict.BUSY),
    (DatabaseBusy("not tied to the spool yet"), False, Verdict.BUSY),  # a snapshot retries shortly
    (BottomlessError("spool skips"), False, Verdict.STOP),
    (KeyError("bug"), False, Verdict.CRASH),
    (ValueError("bug"), True, Verdict.CRASH),
]


@pytest.mark.parametrize(("exc", "starting", "verdict"), TABLE, ids=[f"{type(e).__name__}-{s}" for e, s, _ in TABLE])
def test_verdict(exc: Exception, starting: bool, verdict: Verdict) -> None:
    assert classify(exc, starting) is verdict


def test_backoff_grows_to_a_bound() -> None:
    waits = [0.0]
    for _ in range(60):  # enough to reach the cap's range but for odds far below one in a billion
        waits.append(next_backoff(waits[-1]))
    assert 0.1 <= waits[1] <= 0.2
    assert max(waits) <= MAX_BACKOFF_SECS
    # Each wait is the doubled one before, capped, jittered down by at most
    # half (a bound on every step: 28 s jittered to 14 s can repeat).
    for before, wait in itertools.pairwise(waits[1:]):
        ceiling = min(MAX_BACKOFF_SECS, 2 * before)
        assert ceiling / 2 <= wait <= ceiling
    assert max(waits) >= MAX_BACKOFF_SECS / 2  # it reaches the cap's range

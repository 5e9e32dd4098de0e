"""Rules that need no server: which S3 errors are transient, and what the
replicator says when a server lacks a guarantee the configuration needs."""

from __future__ import annotations

import logging

import pytest

from bottomless.config import Config
from bottomless.errors import UnsupportedServer
from bottomless.s3 import is_transient
from bottomless.server_features import HONOURED, IGNORED, ServerFeatures, require


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("SlowDown", 503),
        ("InternalError", 500),
        ("ServiceUnavailable", 503),
        ("", 502),
        ("", 504),
        ("RequestTimeout", 400),
        ("TooManyRequests", 429),
        ("", 408),
        ("Throttling", 400),
    ],
)
def test_transient(code: str, status: int) -> None:
    assert is_transient(code, status)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("NotImplemented", 501),
        ("", 501),
        ("InvalidRequest", 400),
        ("MissingContentMD5", 400),
        ("InvalidBucketName", 400),
        ("AccessDenied", 403),
        ("MethodNotAllowed", 405),
        ("EntityTooLarge", 400),
        ("RequestTimeTooSkewed", 403),
    ],
)
def test_permanent(code: str, status: int) -> None:
    assert not is_transient(code, status)


def features(create: str = HONOURED, replace: str = HONOURED) -> ServerFeatures:
    return ServerFeatures("http://s3.example", "b", create, replace, HONOURED, HONOURED)


def test_ignored_if_none_match_refuses_with_the_setting_that_accepts_it() -> None:
    with pytest.raises(UnsupportedServer) as info:
        require(features(create=IGNORED, replace=IGNORED), conditional_writes=True, lease=True)
    line = str(info.value)
    assert "\n" not in line
    assert "http://s3.example" in line and "ignores If-None-Match" in line
    assert "LIBSQL_BOTTOMLESS_CONDITIONAL_WRITES=off" in line
    assert not info.value.transient


def test_if_match_not_implemented_needs_only_the_lease_off() -> None:
    broken = features(replace="refused (NotImplemented)")
    with pytest.raises(UnsupportedServer, match=r"refuses \(NotImplemented\) PUTs with If-Match.*LEASE_SECS=0"):
        require(broken, conditional_writes=True, lease=True)
    require(broken, conditional_writes=True, lease=False)  # write-once objects need only If-None-Match


def test_conditional_writes_off_accepts_any_server_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        require(features(create=IGNORED, replace=IGNORED), conditional_writes=False, lease=False)
    assert any("CONDITIONAL_WRITES=off" in r.message and "only one replicator" in r.message for r in caplog.records)


def test_conditional_writes_setting() -> None:
    assert Config.from_env({}).conditional_writes
    assert not Config.from_env({"LIBSQL_BOTTOMLESS_CONDITIONAL_WRITES": "off"}).conditional_writes

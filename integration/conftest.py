"""End-to-end fixtures: a real S3 HTTP server (embedded moto unless
BOTTOMLESS_TEST_ENDPOINT names one), a fresh bucket per test, the native core."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from bottomless._native import Native, load
from bottomless.embedded import DEMO_CREDENTIALS, embedded_s3
from bottomless.s3 import S3Store

NATIVE_FUNCTIONS = (
    "bottomless_wal_checksum",
    "bottomless_apply_frames",
    "bottomless_finish_restore",
)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    for name, value in DEMO_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    configured = os.environ.get("BOTTOMLESS_TEST_ENDPOINT")
    if configured:
        yield configured
        return
    with embedded_s3() as endpoint:
        yield endpoint


@pytest.fixture
def bucket_name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(s3_endpoint: str, bucket_name: str) -> S3Store:
    s = S3Store(s3_endpoint, bucket_name)
    s.ensure_bucket()
    return s


@pytest.fixture(scope="session")
def native() -> Native:
    lib = load()
    missing = []
    for name in NATIVE_FUNCTIONS:
        try:
            getattr(lib.lib, name)
        except AttributeError:
            missing.append(name)
    if missing:
        pytest.fail(f"the native library {lib.path} lacks {', '.join(missing)}")
    return lib

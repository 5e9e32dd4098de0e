"""S3Store against a real S3 HTTP server: pagination, stats, clear errors."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from bottomless.errors import BadCredentials, EndpointUnreachable, NoSuchBucket, NoSuchObject
from bottomless.s3 import EXPECT_CONTINUE_BYTES, RetryPolicy, S3Store

# Depends on how the S3 server behaves: `.ci/s3rver -m s3_server` runs these against s3rver.
pytestmark = pytest.mark.s3_server


def test_listing_and_deleting_more_than_a_thousand_objects(store: S3Store) -> None:
    keys = [f"db-x/{i:05}" for i in range(1100)] + ["other/0"]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: store.put(k, b"v"), keys))
    before = store.stats.snapshot()
    listed = [o.key for o in store.list_objects("db-x/")]
    after = store.stats.snapshot()
    assert listed == keys[:1100]
    assert after["LIST"] - before["LIST"] == 2
    assert store.delete_many(listed) == 1100
    assert store.stats.snapshot()["DELETE"] - after["DELETE"] == 2
    assert [o.key for o in store.list_objects("")] == ["other/0"]


def test_prefixes_and_objects(store: S3Store) -> None:
    for key in ("a-1/x", "a-1/y", "a-2/x", "b/x"):
        store.put(key, key.encode())
    assert list(store.list_prefixes("a-")) == ["a-1/", "a-2/"]
    assert store.get("a-2/x") == b"a-2/x"
    info = store.head("a-1/y")
    assert info is not None and info.size == 5
    assert store.head("nope") is None
    assert store.get_or_none("nope") is None
    with pytest.raises(NoSuchObject, match="'nope'"):
        store.get("nope")


def test_request_counter(store: S3Store) -> None:
    base = store.stats.snapshot()
    store.put("k", b"1")
    store.get("k")
    store.head("k")
    list(store.list_objects(""))
    store.delete_many(["k"])
    now = store.stats.snapshot()
    assert {k: now[k] - base[k] for k in now} == {
        "PUT": 1,
        "GET": 1,
        "HEAD": 1,
        "LIST": 1,
        "DELETE": 1,
    }


@pytest.mark.parametrize("size", [5, EXPECT_CONTINUE_BYTES + 1], ids=["straight", "put_object"])
def test_put_stores_bytes_and_metadata_and_returns_the_etag(store: S3Store, size: int) -> None:
    """Small bodies take the direct path (s3_direct.py), large ones
    put_object: a reader cannot tell them apart."""
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    key = f"db-z/a key with spaces+plus~tilde/{size}"
    base = store.stats.snapshot()["PUT"]
    etag = store.put(key, body, {"bottomless-key-id": "k1"}, if_none_match=True)
    assert store.stats.snapshot()["PUT"] - base == 1
    response = store.client.head_object(Bucket=store.bucket, Key=key)
    assert response["Metadata"] == {"bottomless-key-id": "k1"}
    assert etag and response["ETag"] == etag
    assert store.get(key) == body


def test_missing_bucket_says_what_to_do(s3_endpoint: str) -> None:
    missing = S3Store(s3_endpoint, "no-such-bucket-here")
    with pytest.raises(NoSuchBucket, match="'no-such-bucket-here' does not exist.*create it"):
        missing.check_bucket()
    with pytest.raises(NoSuchBucket):
        list(missing.list_objects(""))


def test_unreachable_endpoint_is_named() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    store = S3Store(endpoint, "bucket", retry=RetryPolicy(attempts=2, base_delay=0.01))
    with pytest.raises(EndpointUnreachable, match=f"cannot reach S3 endpoint {endpoint}"):
        store.check_bucket()
    assert store.stats.snapshot()["HEAD"] == 2  # retried


def test_missing_credentials_are_reported(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = S3Store(s3_endpoint, "bucket")
    with pytest.raises(BadCredentials, match="AWS_ACCESS_KEY_ID"):
        store.check_bucket()
    with pytest.raises(BadCredentials, match="AWS_ACCESS_KEY_ID"):
        store.put("k", b"small")  # the direct path too

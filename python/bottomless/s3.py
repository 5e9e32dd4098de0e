"""S3 access: a boto3 client for one bucket with retries, stats and clear errors."""

from __future__ import annotations

import io
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import boto3
import botocore.config
import botocore.exceptions

from bottomless.errors import (
    BadCredentials,
    EndpointUnreachable,
    NoSuchBucket,
    NoSuchObject,
    S3Error,
)

S3Client = Any  # mypy_boto3_s3.S3Client when the stubs are installed

log = logging.getLogger(__name__)
T = TypeVar("T")

REQUEST_KINDS = ("PUT", "GET", "LIST", "DELETE", "HEAD")
# A conditional write lost: the object exists (If-None-Match) or changed (If-Match).
_PRECONDITION_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
# Files up to this size are uploaded with one conditional PUT (streamed from
# the file); larger ones with boto3's multipart transfer, unconditionally.
SINGLE_PUT_LIMIT = 64 * 1024 * 1024
_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "403",
    "Forbidden",
}
_RETRY_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "500",
    "502",
    "503",
    "504",
}
_CONNECTION_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ReadTimeoutError,
    # A body cut off mid-transfer: the request is safe to repeat.
    botocore.exceptions.ResponseStreamingError,
)


def request_kind(operation: str) -> str:
    """PUT/GET/LIST/DELETE/HEAD for a botocore S3 operation name."""
    if operation.startswith("List"):
        return "LIST"
    if operation.startswith("Head"):
        return "HEAD"
    if operation.startswith("Delete"):
        return "DELETE"
    if operation.startswith("Get"):
        return "GET"
    return "PUT"  # Put*, Create*, UploadPart, Complete*, Copy*


class PreconditionFailed(S3Error):
    """A conditional PUT was refused: another writer wrote the object first."""

    def __init__(self, key: str, message: str | None = None) -> None:
        super().__init__(message or f"object {key!r} was written by someone else (conditional write refused)")
        self.key = key


@dataclass
class RequestStats:
    """Thread-safe count of HTTP requests sent, by kind (retries included)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REQUEST_KINDS, 0))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter."""

    attempts: int = 5
    base_delay: float = 0.1
    max_delay: float = 5.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime
    etag: str = ""


def make_client(endpoint: str, max_pool_connections: int = 32) -> S3Client:
    """A boto3 S3 client for ``endpoint``: path-style addressing, boto3's
    credential chain, and no retries of its own (S3Store retries)."""
    session = boto3.session.Session()
    config = botocore.config.Config(
        s3={"addressing_style": "path"},
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=max_pool_connections,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client: S3Client = session.client(
        "s3",
        endpoint_url=endpoint,
        region_name=session.region_name or "us-east-1",
        config=config,
    )
    return client


class S3Store:
    """One bucket on one endpoint."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        client: S3Client | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        self.client = client or make_client(endpoint)
        self.retry = retry or RetryPolicy()
        self.stats = RequestStats()
        self.client.meta.events.register("before-send.s3", self._count)

    def _count(self, event_name: str = "", **_: Any) -> None:
        self.stats.add(request_kind(event_name.rsplit(".", 1)[-1]))

    # -- error handling -------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T], key: str | None = None) -> T:
        attempt = 0
        while True:
            try:
                return fn()
            except _CONNECTION_ERRORS as exc:
                error: Exception = exc
                retryable = True
            except (
                botocore.exceptions.NoCredentialsError,
                botocore.exceptions.PartialCredentialsError,
            ) as exc:
                raise BadCredentials(
                    f"no usable S3 credentials for {self.endpoint} ({exc}); set AWS_ACCESS_KEY_ID "
                    "and AWS_SECRET_ACCESS_KEY or configure ~/.aws/credentials"
                ) from exc
            except botocore.exceptions.ClientError as exc:
                error = exc
                code = _code(exc)
                if code in _RETRY_CODES:
                    retryable = True
                else:
                    raise self._translate(exc, what, key) from exc
            attempt += 1
            if not retryable or attempt >= self.retry.attempts:
                if isinstance(error, _CONNECTION_ERRORS):
                    raise EndpointUnreachable(
                        f"cannot reach S3 endpoint {self.endpoint} ({error}); is the server "
                        "running? Set it with -e/--endpoint or LIBSQL_BOTTOMLESS_ENDPOINT"
                    ) from error
                raise S3Error(f"{what} failed after {attempt} attempts: {error}") from error
            pause = self.retry.delay(attempt)
            log.info("%s failed (%s), retry %d in %.2fs", what, error, attempt, pause)
            time.sleep(pause)

    def _translate(self, exc: botocore.exceptions.ClientError, what: str, key: str | None) -> S3Error:
        code = _code(exc)
        if code == "NoSuchBucket" or (key is None and code in ("404", "NotFound")):
            return NoSuchBucket(
                f"bucket {self.bucket!r} does not exist at {self.endpoint}; create it "
                f"(aws s3 mb s3://{self.bucket} --endpoint-url {self.endpoint}) or choose "
                "another with -b/--bucket or LIBSQL_BOTTOMLESS_BUCKET"
            )
        if code in ("NoSuchKey", "404", "NotFound") and key is not None:
            return NoSuchObject(key)
        if code in _PRECONDITION_CODES and key is not None:
            return PreconditionFailed(key)
        if code in _CREDENTIAL_CODES:
            return BadCredentials(
                f"S3 at {self.endpoint} refused the credentials for bucket {self.bucket!r} "
                f"({code}); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials"
            )
        return S3Error(f"{what}: {exc}")

    # -- bucket ---------------------------------------------------------------
    def check_bucket(self) -> None:
        """Raise NoSuchBucket/BadCredentials/EndpointUnreachable unless usable."""
        self._call(f"HEAD bucket {self.bucket}", lambda: self.client.head_bucket(Bucket=self.bucket))
        log.info("Bucket %s exists and is accessible", self.bucket)

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist (the replicator does this)."""
        try:
            self.check_bucket()
        except NoSuchBucket:
            log.info("creating bucket %s", self.bucket)
            self._call(
                f"create bucket {self.bucket}",
                lambda: self.client.create_bucket(Bucket=self.bucket),
            )

    # -- objects --------------------------------------------------------------
    def put(
        self,
        key: str,
        data: bytes,
        metadata: dict[str, str] | None = None,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str:
        """PUT ``data``; returns the new ETag.

        ``if_none_match``: write once (``If-None-Match: *``). When the object
        already exists with exactly ``data`` (our own earlier attempt whose
        answer was lost, then retried) that counts as success; otherwise
        PreconditionFailed. ``if_match``: replace only the version with this
        ETag, else PreconditionFailed (the caller decides what it means)."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": data, "Metadata": metadata or {}}
        if if_none_match:
            args["IfNoneMatch"] = "*"
        if if_match is not None:
            args["IfMatch"] = if_match
        try:
            response = self._call(f"PUT {key}", lambda: self.client.put_object(**args), key)
        except PreconditionFailed:
            if not if_none_match:
                raise
            return self._same_object(key, lambda: data)
        return str(response.get("ETag", ""))

    def _same_object(self, key: str, expected: Callable[[], bytes]) -> str:
        """After If-None-Match failed: the stored object's ETag when it holds
        exactly what we meant to write, else PreconditionFailed."""
        stored = self.get_with_etag(key)
        if stored is not None and stored[0] == expected():
            log.info("%s already holds what we sent (a retried write); continuing", key)
            return stored[1]
        raise PreconditionFailed(
            key,
            f"object {key!r} already exists with other content: another writer is shipping this database",
        )

    def put_file(
        self,
        key: str,
        path: str,
        transfer: Any = None,
        metadata: dict[str, str] | None = None,
        if_none_match: bool = False,
    ) -> None:
        """Upload a file. Up to SINGLE_PUT_LIMIT bytes: one PUT streamed from
        the file (conditional when asked); larger: boto3's managed transfer
        (multipart, parallel), which cannot carry ``If-None-Match``."""
        size = os.path.getsize(path)
        if size <= SINGLE_PUT_LIMIT:

            def send() -> Any:
                with open(path, "rb") as body:
                    args: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": body}
                    args["Metadata"] = metadata or {}
                    if if_none_match:
                        args["IfNoneMatch"] = "*"
                    return self.client.put_object(**args)

            try:
                self._call(f"PUT {key}", send, key)
            except PreconditionFailed:
                if not if_none_match:
                    raise
                self._same_object(key, lambda: _read(path))
            return
        extra = {"Metadata": metadata} if metadata else None
        self._call(
            f"PUT {key}",
            lambda: self.client.upload_file(path, self.bucket, key, ExtraArgs=extra, Config=transfer),
            key,
        )

    def get(self, key: str) -> bytes:
        """The object's body; NoSuchObject when it is missing."""

        def fetch() -> bytes:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            body: bytes = response["Body"].read()
            return body

        return self._call(f"GET {key}", fetch, key)

    def get_large(self, key: str, transfer: Any = None) -> bytes:
        """The object's body through boto3's managed transfer: ranged GETs in
        parallel once the object passes the transfer's multipart threshold."""

        def fetch() -> bytes:
            out = io.BytesIO()
            self.client.download_fileobj(self.bucket, key, out, Config=transfer)
            return out.getvalue()

        return self._call(f"GET {key}", fetch, key)

    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        """(body, ETag) of the object, or None when it is missing."""

        def fetch() -> tuple[bytes, str]:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            body: bytes = response["Body"].read()
            return body, str(response.get("ETag", ""))

        try:
            return self._call(f"GET {key}", fetch, key)
        except NoSuchObject:
            return None

    def get_or_none(self, key: str) -> bytes | None:
        try:
            return self.get(key)
        except NoSuchObject:
            return None

    def head(self, key: str) -> ObjectInfo | None:
        try:
            response = self._call(f"HEAD {key}", lambda: self.client.head_object(Bucket=self.bucket, Key=key), key)
        except NoSuchObject:
            return None
        return ObjectInfo(key, response["ContentLength"], response["LastModified"], response.get("ETag", ""))

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` in key order (all pages)."""
        for page in self._pages(prefix, None):
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"], item["Size"], item["LastModified"], item.get("ETag", ""))

    def list_prefixes(self, prefix: str, delimiter: str = "/") -> Iterator[str]:
        """The "directories" right under ``prefix`` in key order (all pages)."""
        for page in self._pages(prefix, delimiter):
            for item in page.get("CommonPrefixes", []):
                yield item["Prefix"]

    def _pages(self, prefix: str, delimiter: str | None) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if delimiter:
                args["Delimiter"] = delimiter
            if token:
                args["ContinuationToken"] = token
            page: dict[str, Any] = self._call(
                f"LIST {self.bucket}/{prefix}",
                lambda args=args: dict(self.client.list_objects_v2(**args)),  # type: ignore[misc]
            )
            yield page
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")
            if not token:
                return

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete ``keys`` (1000 per request); returns how many were deleted."""
        pending = list(keys)
        deleted = 0
        for start in range(0, len(pending), 1000):
            chunk = pending[start : start + 1000]
            response = self._call(
                f"DELETE {len(chunk)} objects",
                lambda chunk=chunk: self.client.delete_objects(  # type: ignore[misc]
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
                ),
            )
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise S3Error(
                    f"could not delete {len(errors)} objects, e.g. {first.get('Key')}: "
                    f"{first.get('Code')} {first.get('Message')}"
                )
            deleted += len(chunk)
        return deleted


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))

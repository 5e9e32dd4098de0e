"""S3 access: a boto3 client for one bucket with retries, stats and clear errors."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Protocol, TypeVar

import boto3
import botocore.config
import botocore.exceptions
import botocore.utils

from bottomless.errors import (
    BadCredentials,
    EndpointUnreachable,
    NoSuchBucket,
    NoSuchObject,
    S3Error,
)
from bottomless.s3_direct import DirectPut, content_md5

S3Client = Any  # mypy_boto3_s3.S3Client when the stubs are installed

log = logging.getLogger(__name__)
T = TypeVar("T")

REQUEST_KINDS = ("PUT", "GET", "LIST", "DELETE", "HEAD")
# A conditional write lost: the object exists (If-None-Match) or changed
# (If-Match); 409 ConditionalRequestConflict is a concurrent conditional
# write (the caller looks at the object again, which is what AWS advises).
_PRECONDITION_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict"}
_PRECONDITION_STATUS = {412}
# Files up to this size are uploaded with one conditional PUT (streamed from
# the file); larger ones with boto3's multipart transfer, unconditionally.
SINGLE_PUT_LIMIT = 64 * 1024 * 1024
STREAM_RESUMES = 5  # cut connections one streamed GET resumes from (a ranged GET retries on its own)
_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "AllAccessDisabled",
    "403",
    "Forbidden",
}
# Codes that waiting can fix, whatever their HTTP status.
_TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "RequestLimitExceeded",
    "TooManyRequests",
    "TooManyRequestsException",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "OperationAborted",
}
_TRANSIENT_STATUS = {408, 429}
# What to do about the permanent errors S3-compatible servers are known to send.
_ADVICE = {
    "NotImplemented": "this server does not implement the request; SECURITY.md ('S3-compatible servers') "
    "says which setting does without it",
    "InvalidRequest": "this server rejects the request as sent; SECURITY.md ('S3-compatible servers') "
    "says which setting does without it",
    "MissingContentMD5": "this server wants Content-MD5 on this request; please report it with the "
    "server's name and version",
    "InvalidBucketName": "choose a valid bucket name (3-63 lowercase letters, digits, dots and hyphens) "
    "with -b/--bucket or LIBSQL_BOTTOMLESS_BUCKET",
    "RequestTimeTooSkewed": "this machine's clock differs too much from the server's; synchronise it (NTP)",
    "EntityTooLarge": "the object is larger than this server accepts",
}
_CONNECTION_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ReadTimeoutError,
    # A body cut off mid-transfer: the request is safe to repeat.
    botocore.exceptions.ResponseStreamingError,
    # The bases of the above: any dropped or refused connection.
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
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
        super().__init__(
            message or f"object {key!r} was written by someone else (conditional write refused)",
            code="PreconditionFailed",
        )
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


class StoreListener(Protocol):
    def request(self, kind: str) -> None: ...

    def uploaded(self, key: str, nbytes: int) -> None: ...


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
    # This session only (it is the client's own): botocore's default parses
    # each LastModified with dateutil, 0.4 ms a key, most of a LIST's client time.
    parsers = session._session.get_component("response_parser_factory")
    parsers.set_parser_defaults(timestamp_parser=parse_timestamp)
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
    # After botocore's own handler, which asks every PUT to wait for "100 Continue".
    client.meta.events.register("before-call.s3", _expect_continue_only_when_large)
    return client


# A body smaller than this is sent at once, without "Expect: 100-continue".
EXPECT_CONTINUE_BYTES = 1 << 20


def _expect_continue_only_when_large(params: dict[str, Any], **_: Any) -> None:
    """Waiting for "100 Continue" costs a round trip (and the server a
    wakeup) before the body goes; botocore does it for every PUT. It only
    pays for a large body the server may refuse (a fenced write's 412), so
    a batch, a lease or a manifest goes in one go."""
    headers = params.get("headers", {})
    if headers.get("Expect") != "100-continue":
        return
    length = botocore.utils.determine_content_length(params.get("body"))
    if length is not None and length < EXPECT_CONTINUE_BYTES:
        del headers["Expect"]


def parse_timestamp(value: str) -> datetime:
    """A timestamp of a response: S3's ISO 8601 form (listings) directly,
    any other (HeadObject's HTTP date) through botocore's own parser."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        fallback: datetime = botocore.utils.parse_timestamp(value)
        return fallback
    return parsed


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
        # Told of every request and upload (fleet_metrics.py attributes them
        # to the database whose round is running on the calling thread).
        self.listeners: list[StoreListener] = []
        # Facts about the bucket learnt once for every database this store
        # serves (a fleet shares one store among thousands): that it exists,
        # and what the server honours (server_features.check).
        self.bucket_ready = False
        self.features: object | None = None
        self.probe_lock = threading.Lock()  # one probe at a time: the first one's answer serves the rest
        # False once the server refused a multi-object delete (or its probe said so).
        self.multi_delete = True
        self.client.meta.events.register("before-send.s3", self._count)
        self._direct = DirectPut.of(self.client, bucket)
        self.client.meta.events.register("before-sign.s3.DeleteObjects", _add_content_md5)

    def _count(self, event_name: str = "", **_: Any) -> None:
        kind = request_kind(event_name.rsplit(".", 1)[-1])
        self.stats.add(kind)
        for listener in self.listeners:
            listener.request(kind)

    def _uploaded(self, key: str, nbytes: int) -> None:
        for listener in self.listeners:
            listener.uploaded(key, nbytes)

    # -- error handling -------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T], key: str | None = None) -> T:
        """``fn()``, retried with backoff while its error is transient; every
        failure leaves here as an S3Error whose ``transient`` says whether
        trying again later can help."""
        attempt = 0
        while True:
            try:
                return fn()
            except botocore.exceptions.SSLError as exc:
                # A ConnectionError to botocore, but waiting does not fix a certificate.
                raise S3Error(
                    f"TLS with {self.endpoint} failed for {what} ({exc}); if the server uses a private CA, "
                    "point AWS_CA_BUNDLE at its certificate",
                    code="SSLError",
                ) from exc
            except _CONNECTION_ERRORS as exc:
                error: S3Error = EndpointUnreachable(
                    f"cannot reach S3 endpoint {self.endpoint} for {what} ({exc}); is the server "
                    "running? Set it with -e/--endpoint or LIBSQL_BOTTOMLESS_ENDPOINT"
                )
                cause: Exception = exc
            except (
                botocore.exceptions.NoCredentialsError,
                botocore.exceptions.PartialCredentialsError,
            ) as exc:
                raise BadCredentials(
                    f"no usable S3 credentials for {self.endpoint} ({exc}); set AWS_ACCESS_KEY_ID "
                    "and AWS_SECRET_ACCESS_KEY or configure ~/.aws/credentials"
                ) from exc
            except botocore.exceptions.ParamValidationError as exc:
                # botocore checks parameters before sending; of ours, only the
                # bucket name comes from the user.
                raise S3Error(
                    f"{what}: {exc}; check the bucket name {self.bucket!r}: "
                    + _ADVICE["InvalidBucketName"],
                    code="InvalidBucketName",
                ) from exc
            except botocore.exceptions.ClientError as exc:
                error = self._translate(exc, what, key)
                cause = exc
            if not error.transient:
                raise error from cause
            attempt += 1
            if attempt >= self.retry.attempts:
                if isinstance(error, EndpointUnreachable):
                    raise error from cause
                raise S3Error(
                    f"{error} (still failing after {attempt} attempts)",
                    operation=error.operation,
                    code=error.code,
                    transient=True,
                ) from cause
            pause = self.retry.delay(attempt)
            log.info("%s failed (%s), retry %d in %.2fs", what, error, attempt, pause)
            time.sleep(pause)

    def _translate(self, exc: botocore.exceptions.ClientError, what: str, key: str | None) -> S3Error:
        """The one place an S3 error answer becomes an S3Error (and is judged
        transient or not), by its code and HTTP status, never its message."""
        code = _code(exc)
        status = _status(exc)
        operation = exc.operation_name or ""
        message = str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
        if code == "NoSuchBucket" or (key is None and (code in ("404", "NotFound") or status == 404)):
            return NoSuchBucket(
                f"bucket {self.bucket!r} does not exist at {self.endpoint}; create it "
                f"(aws s3 mb s3://{self.bucket} --endpoint-url {self.endpoint}) or choose "
                "another with -b/--bucket or LIBSQL_BOTTOMLESS_BUCKET",
                operation=operation,
                code=code or "NoSuchBucket",
            )
        if key is not None and (code in ("NoSuchKey", "404", "NotFound") or (status == 404 and not code)):
            return NoSuchObject(key)
        if key is not None and (code in _PRECONDITION_CODES or status in _PRECONDITION_STATUS):
            return PreconditionFailed(key)
        if code in _CREDENTIAL_CODES:
            return BadCredentials(
                f"S3 {operation} ({what}) at {self.endpoint} was refused for bucket {self.bucket!r} "
                f"({code}: {message}); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials, "
                "and that the bucket's policy allows this request",
                operation=operation,
                code=code,
            )
        transient = is_transient(code, status)
        shown = f"{code or 'error'} (HTTP {status})" if status else code or "error"
        text = f"S3 {operation} ({what}) at {self.endpoint} failed: {shown}: {message}"
        if not transient:
            advice = _ADVICE.get(code) or (
                _ADVICE["NotImplemented"] if status == 501 else "retrying cannot fix this; replication stops"
            )
            text = f"{text}; {advice}"
        return S3Error(text, operation=operation, code=code or str(status), transient=transient)

    # -- bucket ---------------------------------------------------------------
    def check_bucket(self) -> None:
        """Raise NoSuchBucket/BadCredentials/EndpointUnreachable unless usable."""
        self._call(f"HEAD bucket {self.bucket}", lambda: self.client.head_bucket(Bucket=self.bucket))
        log.info("Bucket %s exists and is accessible", self.bucket)

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist (the replicator does this)."""
        if self.bucket_ready:
            return
        try:
            self.check_bucket()
        except NoSuchBucket:
            log.info("creating bucket %s", self.bucket)
            self._call(
                f"create bucket {self.bucket}",
                lambda: self.client.create_bucket(Bucket=self.bucket),
            )
        self.bucket_ready = True

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
        send = partial(self._put, key, data, metadata or {}, if_none_match, if_match)
        try:
            etag = self._call(f"PUT {key}", send, key)
        except PreconditionFailed:
            if not if_none_match:
                raise
            return self._same_object(key, lambda: data)
        self._uploaded(key, len(data))
        return etag

    def _put(self, key: str, data: bytes, metadata: dict[str, str], if_none_match: bool, if_match: str | None) -> str:
        """One attempt of put(): a small body straight through the client's
        signer and pool (s3_direct.py), anything else through put_object."""
        direct = self._direct
        if direct is not None and len(data) < EXPECT_CONTINUE_BYTES:
            headers = {f"x-amz-meta-{name}": value for name, value in metadata.items()}
            if if_none_match:
                headers["If-None-Match"] = "*"
            if if_match is not None:
                headers["If-Match"] = if_match
            self._count("before-send.s3.PutObject")
            return direct.put(key, data, headers)
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": data, "Metadata": metadata}
        if if_none_match:
            args["IfNoneMatch"] = "*"
        if if_match is not None:
            args["IfMatch"] = if_match
        return str(self.client.put_object(**args).get("ETag", ""))

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
            self._uploaded(key, size)
            return
        extra = {"Metadata": metadata} if metadata else None
        self._call(
            f"PUT {key}",
            lambda: self.client.upload_file(path, self.bucket, key, ExtraArgs=extra, Config=transfer),
            key,
        )
        self._uploaded(key, size)

    def get(self, key: str) -> bytes:
        """The object's body; NoSuchObject when it is missing."""

        def fetch() -> bytes:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            body: bytes = response["Body"].read()
            return body

        return self._call(f"GET {key}", fetch, key)

    def stream(self, key: str, chunk: int) -> Iterator[bytes]:
        """The object's body in pieces of at most ``chunk`` bytes, from one
        GET read as it arrives (a server that reads the whole object for
        every ranged GET, as moto does, answers it once). A connection cut
        mid-body is resumed where it stopped, by a ranged GET of the same
        object version (If-Match its ETag), up to STREAM_RESUMES times."""
        received, etag, resumes = 0, "", 0
        while True:
            response = self._call(f"GET {key}", partial(self._get_from, key, received, etag), key)
            if received and "ContentRange" not in response:
                response["Body"].close()
                raise S3Error(
                    f"S3 GetObject (GET {key}) at {self.endpoint} was cut after {received} bytes, and the server "
                    "ignores the Range request that would resume it",
                    operation="GetObject",
                    code="RangeIgnored",
                )
            etag = etag or str(response.get("ETag", ""))
            body = response["Body"]
            try:
                while True:
                    try:
                        piece: bytes = body.read(chunk)
                    except (botocore.exceptions.BotoCoreError, OSError) as exc:
                        if resumes >= STREAM_RESUMES:
                            raise S3Error(
                                f"S3 GetObject (GET {key}) at {self.endpoint} failed while reading, "
                                f"{resumes} times resumed: {exc}",
                                operation="GetObject",
                                transient=True,
                            ) from exc
                        resumes += 1
                        log.warning("GET %s was cut after %d bytes (%s); resuming from there", key, received, exc)
                        break
                    if not piece:
                        return
                    received += len(piece)
                    yield piece
            finally:
                body.close()

    def _get_from(self, key: str, first: int, etag: str) -> dict[str, Any]:
        """GetObject of ``key`` from byte ``first`` on (the whole object at 0)."""
        extra: dict[str, str] = {}
        if first:
            extra["Range"] = f"bytes={first}-"
        if etag:
            extra["IfMatch"] = etag
        response: dict[str, Any] = dict(self.client.get_object(Bucket=self.bucket, Key=key, **extra))
        return response

    def get_range(self, key: str, first: int, last: int) -> bytes:
        """Bytes ``first..last`` (inclusive) of the object, as the server sends them."""

        def fetch() -> bytes:
            response = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={first}-{last}")
            body: bytes = response["Body"].read()
            return body

        return self._call(f"GET {key} bytes {first}-{last}", fetch, key)

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
        """Delete ``keys``; returns how many were deleted.

        Multi-object delete, 1000 keys a request, where the server takes it;
        one DeleteObject per key where it refuses it (not implemented, or
        rejecting the request as sent): deleting loses no guarantee that
        way, it only costs more requests, so the fallback is logged once and
        remembered for this store."""
        pending = list(keys)
        deleted = 0
        for start in range(0, len(pending), 1000):
            chunk = pending[start : start + 1000]
            if self.multi_delete:
                try:
                    deleted += self.delete_batch(chunk)
                    continue
                except (BadCredentials, NoSuchBucket):
                    raise
                except S3Error as exc:
                    if exc.transient:
                        raise
                    log.info("%s refuses multi-object delete (%s); deleting one object at a time", self.endpoint, exc)
                    self.multi_delete = False
            for key in chunk:
                self.delete_one(key)
                deleted += 1
        return deleted

    def delete_one(self, key: str) -> None:
        self._call(f"DELETE {key}", lambda: self.client.delete_object(Bucket=self.bucket, Key=key))

    def delete_batch(self, chunk: list[str]) -> int:
        """One DeleteObjects request (up to 1000 keys)."""
        response = self._call(
            f"DELETE {len(chunk)} objects",
            lambda: self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
            ),
        )
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise S3Error(
                f"could not delete {len(errors)} objects, e.g. {first.get('Key')}: "
                f"{first.get('Code')} {first.get('Message')}",
                operation="DeleteObjects",
                code=str(first.get("Code", "")),
                transient=is_transient(str(first.get("Code", "")), 0),
            )
        return len(chunk)


def _add_content_md5(request: Any, **_: Any) -> None:
    """DeleteObjects must carry a body checksum. botocore (1.36+) sends
    x-amz-checksum-crc32, which AWS takes; many S3-compatible servers want
    the Content-MD5 that S3 asked for before, so both go."""
    body = request.body
    if isinstance(body, str):
        body = body.encode()
    if isinstance(body, bytes) and "Content-MD5" not in request.headers:
        request.headers["Content-MD5"] = content_md5(body)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def is_transient(code: str, status: int) -> bool:
    """Whether an S3 error answer can go away by itself: throttling, timeouts
    and 5xx (but 501 NotImplemented, which is the server's last word)."""
    if code == "NotImplemented" or status == 501:
        return False
    if code in _TRANSIENT_CODES or status in _TRANSIENT_STATUS:
        return True
    return status >= 500


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)

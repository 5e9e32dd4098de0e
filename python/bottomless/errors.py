"""Exception types of the bottomless library.

Every error a user can cause or meet carries a message that names what went
wrong (the variable, the object key, the endpoint) and, where there is one,
what to do about it.
"""

from __future__ import annotations


class BottomlessError(Exception):
    """Base class of every error raised by the bottomless library."""


class ConfigError(BottomlessError):
    """A configuration value is missing or malformed."""


class LayoutError(BottomlessError):
    """A name or object key does not follow the bottomless S3 layout."""


class CompressionError(BottomlessError):
    """An object does not decompress with the codec its name announces."""


class S3Error(BottomlessError):
    """The S3 service refused or failed a request.

    ``transient`` says whether waiting and sending the request again can
    help (5xx, throttling, timeouts, dropped connections); it is set once,
    where botocore's answer is translated (``s3.py``), and nowhere else.
    ``operation`` is the S3 operation (``PutObject``) and ``code`` the
    error code the server sent, when there was one."""

    def __init__(self, message: str, *, operation: str = "", code: str = "", transient: bool = False) -> None:
        super().__init__(message)
        self.operation = operation
        self.code = code
        self.transient = transient


class EndpointUnreachable(S3Error):
    """No connection could be made to the S3 endpoint (transient)."""

    def __init__(self, message: str, *, operation: str = "") -> None:
        super().__init__(message, operation=operation, transient=True)


class BadCredentials(S3Error):
    """The S3 service rejected (or could not find) the credentials."""


class NoSuchBucket(S3Error):
    """The configured bucket does not exist."""


class NoSuchObject(S3Error):
    """An object that must exist is missing."""

    def __init__(self, key: str, message: str | None = None) -> None:
        super().__init__(message or f"object {key!r} does not exist", code="NoSuchKey")
        self.key = key


class UnsupportedServer(S3Error):
    """The S3 server does not honour a guarantee the configuration needs."""


class DivergedError(BottomlessError):
    """The bucket moved on without this database: shipping would mix histories."""


class RestoreError(BottomlessError):
    """A restore could not produce a complete, verified database."""


class NativeError(BottomlessError):
    """A call into the native core failed. ``code`` is the status the core
    returned (``enum bottomless_status`` in bottomless.h); ``corrupt`` says
    it was BOTTOMLESS_CORRUPT (a checksum, salt or format mismatch)."""

    def __init__(self, code: int, message: str, *, corrupt: bool = False) -> None:
        super().__init__(f"{message} (native status {code})")
        self.code = code
        self.message = message
        self.corrupt = corrupt

"""Configuration from ``LIBSQL_BOTTOMLESS_*`` variables, overridable by callers."""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from dataclasses import field as dc_field
from typing import Any
from urllib.parse import urlsplit

from bottomless.compression import CODECS
from bottomless.crypto import Cipher
from bottomless.errors import ConfigError, LayoutError
from bottomless.layout import validate_db_name

ENV_PREFIX = "LIBSQL_BOTTOMLESS_"
# What boto3 itself accepts as a bucket (legacy buckets may hold capitals and
# underscores); anything else would fail later as a botocore traceback.
_BUCKET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Where and how a database is backed up.

    ``database_id`` is the ``<db-name>`` prefix of the database's objects;
    None means "the database file's name" (or, for the CLI, the only
    database found in the bucket).
    """

    endpoint: str = "http://localhost:9000"
    bucket: str = "bottomless"
    database_id: str | None = None
    batch_interval_secs: float = 1.0
    batch_max_frames: int = 10000
    compression: str = "zstd"
    verify_crc: bool = True
    autostart: bool = True
    # A new generation (with a fresh snapshot) once this many frames were
    # shipped since the last one, so a restore never replays without bound.
    snapshot_frames: int = 100_000
    # Warn when the spool holds more than this many unshipped bytes.
    spool_warn_bytes: int = 256 * 1024 * 1024
    # Cap on the side folder (None: the larger of 256 MiB and twice the
    # database). Capture reads the variable itself, in the application's
    # process; it is here so the CLI and replicator refuse a bad value.
    spool_max_bytes: int | None = None
    # How large the WAL may grow while the replicator ships it (None: 64
    # MiB; 0: never held). Capture reads the variable, as spool_max_bytes.
    wal_hold_bytes: int | None = None
    # How long shutdown may spend shipping what is left.
    shutdown_timeout_secs: float = 10.0
    # Client-side encryption (AES-256-GCM) of snapshots and batches: base64
    # of 32 bytes, or a file holding it. Never shown by repr() or in errors.
    encryption_key: str | None = dc_field(default=None, repr=False)
    encryption_key_file: str | None = None
    # Plain http to an endpoint that is not on this machine is warned about
    # unless this is set (loopback endpoints never are). https endpoints
    # are always verified (boto3's default; AWS_CA_BUNDLE for private CAs).
    allow_http: bool = False
    # Single-writer lease of the database in the bucket, in seconds (0: no
    # lease). The holder renews it when less than half is left: at most one
    # PUT per lease_secs/2 while shipping, and the same while idle.
    lease_secs: float = 300.0
    # Conditional writes (If-None-Match for write-once objects, If-Match for
    # the lease). Off: neither header is sent and there is no lease, for S3
    # servers that do not honour them (the replicator refuses to start on
    # such a server unless this is off; see server_features.py).
    conditional_writes: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Read the variables from ``env`` (default: os.environ), then apply
        ``overrides`` (keyword arguments named like the fields; None values
        are ignored so unset CLI options fall through to the variables)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for field in fields(cls):
            var = ENV_PREFIX + field.name.upper()
            raw = env.get(var)
            if raw is not None and raw.strip() != "":
                values[field.name] = _parse(field.name, raw.strip(), var)
        config = cls(**values)
        return config.with_overrides(**overrides)

    def with_overrides(self, **overrides: Any) -> Config:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown configuration fields: {', '.join(sorted(unknown))}")
        changes = {k: v for k, v in overrides.items() if v is not None}
        config = replace(self, **changes)
        config.validate()
        return config

    def validate(self) -> None:
        if not self.endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"{ENV_PREFIX}ENDPOINT: {self.endpoint!r} is not an http(s) URL")
        if self.endpoint.startswith("http://") and not self.allow_http and not is_loopback(self.endpoint):
            warn_plain_http(self.endpoint)
        if not _BUCKET_NAME.fullmatch(self.bucket):
            raise ConfigError(
                f"{ENV_PREFIX}BUCKET (or -b/--bucket): {self.bucket!r} is not a valid S3 bucket name; "
                "use 3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit"
            )
        if self.database_id is not None:
            try:
                validate_db_name(self.database_id)
            except LayoutError as exc:
                raise ConfigError(f"{ENV_PREFIX}DATABASE_ID: {exc}") from None
        if not self.batch_interval_secs > 0:
            raise ConfigError(f"{ENV_PREFIX}BATCH_INTERVAL_SECS: must be positive")
        if self.batch_max_frames < 1:
            raise ConfigError(f"{ENV_PREFIX}BATCH_MAX_FRAMES: must be at least 1")
        if self.snapshot_frames < 1:
            raise ConfigError(f"{ENV_PREFIX}SNAPSHOT_FRAMES: must be at least 1")
        if self.spool_warn_bytes < 0:
            raise ConfigError(f"{ENV_PREFIX}SPOOL_WARN_BYTES: must not be negative")
        if self.spool_max_bytes is not None and self.spool_max_bytes < 0:
            raise ConfigError(f"{ENV_PREFIX}SPOOL_MAX_BYTES: must not be negative")
        if self.wal_hold_bytes is not None and self.wal_hold_bytes < 0:
            raise ConfigError(f"{ENV_PREFIX}WAL_HOLD_BYTES: must not be negative (0 never holds the WAL)")
        if self.shutdown_timeout_secs < 0:
            raise ConfigError(f"{ENV_PREFIX}SHUTDOWN_TIMEOUT_SECS: must not be negative")
        if self.lease_secs < 0:
            raise ConfigError(f"{ENV_PREFIX}LEASE_SECS: must not be negative (0 turns the lease off)")
        self.cipher()  # a malformed key or unreadable key file fails now
        if self.compression not in CODECS:
            raise ConfigError(f"{ENV_PREFIX}COMPRESSION: {self.compression!r} is not one of {', '.join(CODECS)}")

    def cipher(self) -> Cipher | None:
        """The encryption key as a Cipher, or None when encryption is off."""
        return Cipher.from_settings(self.encryption_key, self.encryption_key_file)


@functools.cache
def warn_plain_http(endpoint: str) -> None:
    """Once per endpoint (the cache is the "once": a process replicating many
    databases through one endpoint warns one time): plain http to another
    machine exposes every object (and lets the network alter it). Requests
    stay signed (SigV4 never sends the secret key), so this warns rather than
    refuses."""
    log.warning(
        "%sENDPOINT %s is plain http to another machine: objects travel unprotected "
        "(use https, and %sENCRYPTION_KEY for client-side encryption); set %sALLOW_HTTP=1 to silence this",
        ENV_PREFIX,
        endpoint,
        ENV_PREFIX,
        ENV_PREFIX,
    )


def is_loopback(endpoint: str) -> bool:
    """Whether ``endpoint``'s host is this machine (localhost, 127/8, ::1)."""
    host = urlsplit(endpoint).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse(name: str, raw: str, var: str) -> Any:
    if name == "encryption_key":
        return raw  # checked by validate(), whose errors never show it
    try:
        if name == "batch_interval_secs":
            return float(raw)
        if name in ("batch_max_frames", "snapshot_frames", "spool_warn_bytes", "spool_max_bytes", "wal_hold_bytes"):
            return int(raw)
        if name in ("shutdown_timeout_secs", "lease_secs"):
            return float(raw)
        if name in ("verify_crc", "autostart", "allow_http", "conditional_writes"):
            return parse_bool(raw)
    except ValueError:
        raise ConfigError(f"{var}: {raw!r} is not a valid value") from None
    return raw


def parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{raw!r} is not a boolean (use true/false)")

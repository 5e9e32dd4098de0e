"""Object keys of the bottomless S3 layout (compatible with libSQL's bottomless).

::

    <db-name>-<generation>/db.<zstd|gz|raw>                          snapshot
    <db-name>-<generation>/<first:012>-<last:012>-<unix_secs>.<ext>  WAL frame batch
    <db-name>-<generation>/.meta                                      page size + seed
    <db-name>-<generation>/.changecounter                             db header bytes 24..27
    <db-name>-<generation>/.dep                                       parent generation (16 bytes)
    <db-name>.lease                                                   single-writer lease (JSON, this project's)
    <db-name>.probe-<token>                                           scratch object of a server probe (deleted)
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import PurePath

from bottomless.compression import CODECS
from bottomless.errors import LayoutError

META = ".meta"
CHANGE_COUNTER = ".changecounter"
DEP = ".dep"
SNAPSHOT_STEM = "db"

_BATCH = re.compile(r"^(\d{12,})-(\d{12,})-(\d+)\.([a-z]+)$")
_UUID_LEN = 36


def validate_db_name(name: str) -> str:
    """Return ``name`` if it can be a ``<db-name>`` prefix, else raise LayoutError."""
    if not name:
        raise LayoutError("database name is empty")
    if "/" in name or "\\" in name:
        raise LayoutError(f"database name {name!r} must not contain a path separator")
    if ".." in name:
        raise LayoutError(f"database name {name!r} must not contain '..'")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise LayoutError(f"database name {name!r} must not contain control characters")
    if name in (".", "~") or name.startswith("~"):
        raise LayoutError(f"database name {name!r} cannot be used as a file name")
    return name


def lease_key(db_name: str) -> str:
    """The single-writer lease of ``db_name`` (outside every generation
    folder, so a bottomless reader never sees it)."""
    return f"{validate_db_name(db_name)}.lease"


def probe_key(db_name: str, token: str) -> str:
    """Scratch object of a server-feature probe (outside every generation
    folder like the lease; deleted when the probe ends)."""
    return f"{validate_db_name(db_name)}.probe-{token}"


def db_name_for_path(path: str) -> str:
    """The default ``<db-name>`` of a database file: its file name."""
    return validate_db_name(PurePath(path).name)


def generation_prefix(db_name: str, generation: uuid.UUID) -> str:
    return f"{validate_db_name(db_name)}-{generation}/"


def db_prefix(db_name: str) -> str:
    """Prefix under which every generation of ``db_name`` lives."""
    return f"{validate_db_name(db_name)}-"


def snapshot_key(db_name: str, generation: uuid.UUID, compression: str) -> str:
    return generation_prefix(db_name, generation) + f"{SNAPSHOT_STEM}.{_codec(compression)}"


def meta_key(db_name: str, generation: uuid.UUID) -> str:
    return generation_prefix(db_name, generation) + META


def change_counter_key(db_name: str, generation: uuid.UUID) -> str:
    return generation_prefix(db_name, generation) + CHANGE_COUNTER


def dep_key(db_name: str, generation: uuid.UUID) -> str:
    return generation_prefix(db_name, generation) + DEP


def batch_key(db_name: str, generation: uuid.UUID, first: int, last: int, unix_secs: int, compression: str) -> str:
    if not 1 <= first <= last:
        raise LayoutError(f"bad frame range {first}-{last}")
    name = f"{first:012}-{last:012}-{unix_secs}.{_codec(compression)}"
    return generation_prefix(db_name, generation) + name


def _codec(compression: str) -> str:
    if compression not in CODECS:
        raise LayoutError(f"unknown compression {compression!r} (expected one of {', '.join(CODECS)})")
    return compression


@dataclass(frozen=True, order=True)
class BatchName:
    """A parsed batch object name."""

    first: int
    last: int
    unix_secs: int
    compression: str


def parse_batch_name(name: str) -> BatchName | None:
    """Parse the last component of a batch key; None when it is not one."""
    match = _BATCH.match(name)
    if not match or match.group(4) not in CODECS:
        return None
    first, last, secs = int(match.group(1)), int(match.group(2)), int(match.group(3))
    if first < 1 or last < first:
        return None
    return BatchName(first, last, secs, match.group(4))


def parse_snapshot_name(name: str) -> str | None:
    """Compression of a snapshot object name (``db.zstd`` -> ``zstd``), else None."""
    stem, _, ext = name.partition(".")
    if stem == SNAPSHOT_STEM and ext in CODECS:
        return ext
    return None


def parse_generation_prefix(db_name: str, prefix: str) -> uuid.UUID | None:
    """The generation of a ``<db-name>-<generation>/`` listing prefix, or None."""
    head = db_prefix(db_name)
    if not prefix.startswith(head) or not prefix.endswith("/"):
        return None
    return _parse_uuid(prefix[len(head) : -1])


def split_generation_prefix(prefix: str) -> tuple[str, uuid.UUID] | None:
    """``<db-name>-<generation>/`` -> (db name, generation), or None."""
    if not prefix.endswith("/") or len(prefix) < _UUID_LEN + 3:
        return None
    body = prefix[:-1]
    generation = _parse_uuid(body[-_UUID_LEN:])
    name = body[: -_UUID_LEN - 1]
    if generation is None or body[-_UUID_LEN - 1] != "-" or not name:
        return None
    return name, generation


def _parse_uuid(text: str) -> uuid.UUID | None:
    if len(text) != _UUID_LEN:
        return None
    try:
        value = uuid.UUID(text)
    except ValueError:
        return None
    return value if str(value) == text.lower() else None


def encode_dep(parent: uuid.UUID) -> bytes:
    return parent.bytes


def decode_dep(data: bytes) -> uuid.UUID:
    if len(data) != 16:
        raise ValueError(f".dep must be 16 bytes, got {len(data)}")
    return uuid.UUID(bytes=data)

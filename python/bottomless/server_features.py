"""What an S3 server honours, probed once per endpoint and bucket.

S3-compatible servers differ from AWS where it matters to a replicator: some
ignore ``If-None-Match``/``If-Match`` (they overwrite, and accept a stale
ETag), some answer them ``501 NotImplemented`` or ``400``, some lack
multi-object delete or ranged GET. Write-once objects and the single-writer
lease rest on conditional writes, so before it ships for the first time to an
endpoint and bucket, the replicator asks the server with a few requests on a
scratch object (about eight, then deleted) and remembers the answers in the
database's spool folder (``s3-server.json``): later starts send none, and
steady state none either.

Where the configuration needs what the server does not honour, the
replicator refuses to start with one line naming the server's behaviour and
the setting that accepts the risk (``LIBSQL_BOTTOMLESS_CONDITIONAL_WRITES=off``,
or ``LIBSQL_BOTTOMLESS_LEASE_SECS=0`` when only ``If-Match`` is missing). It
never falls back silently. Reading (``ls``, ``restore``, ``verify``) needs none
of this and never probes.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import asdict, dataclass, fields

from bottomless import layout
from bottomless.errors import BadCredentials, NoSuchBucket, S3Error, UnsupportedServer
from bottomless.s3 import PreconditionFailed, S3Store
from bottomless.side_files import SideFolder

log = logging.getLogger(__name__)

HONOURED = "honoured"
IGNORED = "ignored"
NOT_PROBED = "not probed"
_STALE_ETAG = '"00000000000000000000000000000000"'
CONDITIONAL_WRITES_VAR = "LIBSQL_BOTTOMLESS_CONDITIONAL_WRITES"
LEASE_VAR = "LIBSQL_BOTTOMLESS_LEASE_SECS"


@dataclass(frozen=True)
class ServerFeatures:
    """Each field: ``honoured``, ``ignored`` (the request succeeded as if the
    header were absent), ``refused (<code>)``, or ``not probed``."""

    endpoint: str
    bucket: str
    conditional_create: str = NOT_PROBED  # PUT If-None-Match: * on an existing object -> 412
    conditional_replace: str = NOT_PROBED  # PUT If-Match: <stale ETag> -> 412, <current> -> 200
    multi_delete: str = NOT_PROBED  # DeleteObjects
    ranged_get: str = NOT_PROBED  # GET Range: bytes=1-2 -> 206 with 2 bytes

    def honours(self, feature: str) -> bool:
        return str(getattr(self, feature)) == HONOURED


def _refused(exc: S3Error) -> str:
    return f"refused ({exc.code or 'error'})"


def probe(store: S3Store, db_name: str, conditional: bool = True, lease: bool = True) -> ServerFeatures:
    """Ask the server, on a scratch object next to ``db_name``'s lease.
    Without ``conditional``, no conditional header is sent, without
    ``lease`` no If-Match (those stay ``not probed``). Transient errors,
    refused credentials and a missing bucket propagate: they say nothing
    about the server's features."""
    key = layout.probe_key(db_name, uuid.uuid4().hex)
    create = replace = NOT_PROBED
    try:
        if conditional:
            create, etag = _probe_create(store, key)
            if lease:
                replace = _probe_replace(store, key, etag)
        else:
            store.put(key, b"probe-0")
        ranged = _probe_range(store, key)
    finally:
        multi = _probe_delete(store, key)
    features = ServerFeatures(store.endpoint, store.bucket, create, replace, multi, ranged)
    log.info("S3 server at %s (bucket %s): %s", store.endpoint, store.bucket, describe(features))
    return features


def _fatal(exc: S3Error) -> bool:
    return exc.transient or isinstance(exc, (BadCredentials, NoSuchBucket))


def _probe_create(store: S3Store, key: str) -> tuple[str, str]:
    """(verdict, ETag of the object now there)."""
    try:
        # put(): a 412 after a lost answer is our own write, read back.
        etag = store.put(key, b"probe-1", if_none_match=True)
    except S3Error as exc:
        if _fatal(exc):
            raise
        # Refused even on a new key: write the object plainly to go on.
        return _refused(exc), store.put(key, b"probe-1")
    try:
        # Refused, put() reads the object back: it holds probe-1, not ours.
        etag = store.put(key, b"probe-2", if_none_match=True)
    except PreconditionFailed:
        return HONOURED, etag
    except S3Error as exc:
        if _fatal(exc):
            raise
        return _refused(exc), etag
    return IGNORED, etag


def _probe_replace(store: S3Store, key: str, etag: str) -> str:
    try:
        store.put(key, b"probe-3", if_match=_STALE_ETAG)
    except PreconditionFailed:
        pass
    except S3Error as exc:
        if _fatal(exc):
            raise
        return _refused(exc)
    else:
        return IGNORED
    try:
        store.put(key, b"probe-4", if_match=etag)
    except PreconditionFailed:
        if store.get_or_none(key) == b"probe-4":
            return HONOURED  # our write went through; its answer was lost and the retry saw a new ETag
        return "refused (412 on the current ETag)"
    except S3Error as exc:
        if _fatal(exc):
            raise
        return _refused(exc)
    return HONOURED


def _probe_range(store: S3Store, key: str) -> str:
    stored = store.get(key)
    try:
        part = store.get_range(key, 1, 2)
    except S3Error as exc:
        if _fatal(exc):
            raise
        return _refused(exc)
    if part == stored[1:3]:
        return HONOURED
    return IGNORED if part == stored else "refused (wrong bytes)"


def _probe_delete(store: S3Store, key: str) -> str:
    try:
        store.delete_batch([key])
    except S3Error as exc:
        if _fatal(exc):
            raise
        store.delete_one(key)
        return _refused(exc)
    return HONOURED


def describe(features: ServerFeatures) -> str:
    return ", ".join(f"{f.name.replace('_', ' ')} {getattr(features, f.name)}" for f in fields(features)[2:])


# ---- remembered beside the spool ------------------------------------------------


def load(spool_dir: str, endpoint: str, bucket: str) -> ServerFeatures | None:
    path = SideFolder(spool_dir).server_features
    try:
        with open(path) as f:
            raw = json.load(f)
        features = ServerFeatures(**raw)
    except (FileNotFoundError, ValueError, TypeError):
        return None
    if (features.endpoint, features.bucket) != (endpoint, bucket):
        return None
    return features


def save(spool_dir: str, features: ServerFeatures) -> None:
    path = SideFolder(spool_dir).server_features
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(asdict(features), f)
    os.replace(tmp, path)


def check(store: S3Store, spool_dir: str, db_name: str, conditional_writes: bool, lease: bool) -> ServerFeatures:
    """The server's features (remembered, else probed now), after making
    sure they give what the configuration asks for: UnsupportedServer
    otherwise. Also tells ``store`` whether to use multi-object delete.
    The store remembers them too, for the other databases it serves."""
    features = load(spool_dir, store.endpoint, store.bucket)
    if not _answers(features, conditional_writes, lease):
        # A fleet starts many databases at once on one store: the first
        # probes, and the others, waiting here, take its answer.
        with store.probe_lock:
            if isinstance(store.features, ServerFeatures):
                features = store.features
            probed = not _answers(features, conditional_writes, lease)
            if probed:
                features = probe(store, db_name, conditional=conditional_writes, lease=lease)
                store.features = features
        assert features is not None
        require(features, conditional_writes, lease)
        if probed:
            save(spool_dir, features)  # only once it passed: a refusal is probed again next start
    else:
        assert features is not None
        require(features, conditional_writes, lease)
    store.multi_delete = features.honours("multi_delete")
    store.features = features
    return features


def _answers(features: ServerFeatures | None, conditional_writes: bool, lease: bool) -> bool:
    """Whether ``features`` say all the configuration needs to know."""
    return not (
        features is None
        or (conditional_writes and features.conditional_create == NOT_PROBED)
        or (conditional_writes and lease and features.conditional_replace == NOT_PROBED)
    )


def require(features: ServerFeatures, conditional_writes: bool, lease: bool) -> None:
    where = f"S3 at {features.endpoint} (bucket {features.bucket!r})"
    if not conditional_writes:
        log.warning(
            "%s=off: objects are not written once and no lease fences a second writer of this database; "
            "make sure only one replicator ships each database",
            CONDITIONAL_WRITES_VAR,
        )
        return
    create = features.conditional_create
    if create != HONOURED:
        behaviour = (
            "ignores If-None-Match (a second conditional PUT overwrote the object)"
            if create == IGNORED
            else f"{create.replace('refused', 'refuses')} conditional PUTs with If-None-Match"
        )
        raise UnsupportedServer(
            f"{where} {behaviour}: objects cannot be written once there, so a second writer of this database "
            f"would go unnoticed; set {CONDITIONAL_WRITES_VAR}=off to replicate without that protection "
            "(then make sure only one replicator ships each database)",
            code="ConditionalWrites",
        )
    replace = features.conditional_replace
    if lease and replace != HONOURED:
        behaviour = (
            "ignores If-Match (a PUT with a stale ETag succeeded)"
            if replace == IGNORED
            else f"{replace.replace('refused', 'refuses')} PUTs with If-Match"
        )
        raise UnsupportedServer(
            f"{where} {behaviour}: the single-writer lease needs it; set {LEASE_VAR}=0 to replicate without "
            f"a lease (objects stay write-once, but a second writer is only noticed when it writes an object "
            f"the first one wrote), or "
            f"{CONDITIONAL_WRITES_VAR}=off to drop both protections",
            code="ConditionalWrites",
        )

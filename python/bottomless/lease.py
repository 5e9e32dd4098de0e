"""Single-writer lease: one replicator per ``<db-name>`` in a bucket.

The lease is the object ``<db-name>.lease`` (outside every generation folder):
JSON naming its owner and until when it holds. It is only ever written
conditionally: created with ``If-None-Match: *``, renewed, taken over (once
expired or released) and released with ``If-Match: <ETag it last saw>``. So
of two replicators racing for it exactly one wins, and a replicator whose
lease was taken over finds out at its next write (412) and stops shipping
instead of interleaving its batches with the new holder's.

The owner is this database file on this machine (host name and absolute path
hashed): a replicator restarted after a crash, or started by another process
for the same file, continues the lease at once; a copy elsewhere (another
machine, a restored file beside the original) is another owner and must wait
until the lease is released (clean shutdown) or expires.

Cost: the holder renews before an upload when less than half of
``lease_secs`` is left: at most one PUT per ``lease_secs / 2`` under steady
writes, none while idle (an idle holder lets the lease lapse and finds out at
its next upload whether another writer took it), plus one GET and one PUT
when a replicator starts. Expiry is
judged by the wall clocks of the machines involved, which must agree to well
within ``lease_secs / 2``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bottomless import layout
from bottomless.errors import BottomlessError
from bottomless.s3 import PreconditionFailed, S3Store

log = logging.getLogger(__name__)


class FencedError(BottomlessError):
    """Another replicator holds (or took over) the database's lease."""


def owner_id(db_path: str) -> str:
    """Who writes: this database file on this machine."""
    ident = f"{socket.gethostname()}\0{os.path.abspath(db_path)}"
    return hashlib.sha256(ident.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class LeaseInfo:
    owner: str
    expires_at: float  # unix seconds; 0 when released
    host: str = ""
    path: str = ""
    pid: int = 0
    generation: str = ""
    token: str = ""

    @classmethod
    def parse(cls, data: bytes) -> LeaseInfo | None:
        try:
            raw: dict[str, Any] = json.loads(data)
            return cls(
                owner=str(raw["owner"]),
                expires_at=float(raw["expires_at"]),
                host=str(raw.get("host", "")),
                path=str(raw.get("path", "")),
                pid=int(raw.get("pid", 0)),
                generation=str(raw.get("generation", "")),
                token=str(raw.get("token", "")),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def encode(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()

    def holder(self) -> str:
        """Who wrote it: the database file, machine and process."""
        where = f"{self.path} on {self.host}" if self.host else f"owner {self.owner}"
        return f"{where} (pid {self.pid})"

    def describe(self) -> str:
        until = datetime.fromtimestamp(self.expires_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{self.holder()}, lease valid until {until}"


class Lease:
    """The lease of ``db_name`` held for the database file ``db_path``."""

    def __init__(
        self,
        store: S3Store,
        db_name: str,
        db_path: str,
        ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.db_name = db_name
        self.key = layout.lease_key(db_name)
        self.owner = owner_id(db_path)
        self.db_path = os.path.abspath(db_path)
        self.ttl = ttl
        self.clock = clock
        self.generation = ""
        self.etag: str | None = None
        self.expires_at = 0.0

    @property
    def held(self) -> bool:
        return self.etag is not None

    def _info(self, expires_at: float) -> LeaseInfo:
        return LeaseInfo(
            owner=self.owner,
            expires_at=expires_at,
            host=socket.gethostname(),
            path=self.db_path,
            pid=os.getpid(),
            generation=self.generation,
            token=uuid.uuid4().hex,
        )

    def acquire(self) -> None:
        """Take the lease (new, ours already, released or expired), else FencedError."""
        for _ in range(5):
            current = self.store.get_with_etag(self.key)
            now = self.clock()
            mine = self._info(now + self.ttl)
            try:
                if current is None:
                    etag = self.store.put(self.key, mine.encode(), if_none_match=True)
                else:
                    held = LeaseInfo.parse(current[0])
                    if held is not None and held.owner != self.owner and held.expires_at > now:
                        raise FencedError(
                            f"database {self.db_name!r} is being replicated by another writer: {held.describe()}. "
                            "This replicator does not ship, so the two cannot mix their histories. Stop the other "
                            f"one, or wait until its lease expires (object {self.key!r})."
                        )
                    if held is not None and held.owner != self.owner:
                        log.warning(
                            "taking over the expired or released lease of %s: %s", self.db_name, held.describe()
                        )
                    etag = self.store.put(self.key, mine.encode(), if_match=current[1])
            except PreconditionFailed:
                continue  # someone wrote it in between: look again
            self.etag, self.expires_at = etag, mine.expires_at
            log.info("holding the lease of %s until %s", self.db_name, self._until())
            return
        raise FencedError(f"could not take the lease {self.key!r}: other writers keep changing it")

    def ensure(self) -> None:
        """Before an upload: hold the lease with at least half of it left."""
        if self.etag is None:
            self.acquire()
        elif self.expires_at - self.clock() < self.ttl / 2:
            self.renew()

    def renew(self) -> None:
        assert self.etag is not None
        mine = self._info(self.clock() + self.ttl)
        try:
            etag = self.store.put(self.key, mine.encode(), if_match=self.etag)
        except PreconditionFailed:
            current = self.store.get_with_etag(self.key)
            held = LeaseInfo.parse(current[0]) if current is not None else None
            if current is None or held is None or held.token != mine.token:
                self.etag = None
                who = held.describe() if held is not None else "the lease object is gone"
                raise FencedError(
                    f"lost the lease of database {self.db_name!r} to another writer ({who}); "
                    "this replicator stops shipping so the two cannot mix their histories"
                ) from None
            etag = current[1]  # our own write, whose answer was lost
        self.etag, self.expires_at = etag, mine.expires_at
        log.debug("renewed the lease of %s until %s", self.db_name, self._until())

    def release(self) -> None:
        """Let another writer take over at once (best effort)."""
        if self.etag is None:
            return
        try:
            self.store.put(self.key, self._info(0.0).encode(), if_match=self.etag)
            log.info("released the lease of %s", self.db_name)
        except BottomlessError as exc:
            log.info("could not release the lease of %s (%s); it expires by itself", self.db_name, exc)
        self.etag = None

    def _until(self) -> str:
        return datetime.fromtimestamp(self.expires_at, UTC).strftime("%H:%M:%S")

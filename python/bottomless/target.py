"""What one replicator ships and where to: the database, its side folder and
spool, the replicator lock, the S3 store, the cipher, and the two protections against a second
writer (write-once objects, the lease). Shared by the modules that write to
S3 for it (``generation_start.py``, ``shipping.py``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from bottomless import layout
from bottomless.config import Config
from bottomless.crypto import Cipher
from bottomless.key_ids import key_id
from bottomless.lease import FencedError, Lease
from bottomless.lock import ReplicatorLock
from bottomless.s3 import PreconditionFailed, S3Store
from bottomless.side_files import SideFolder
from bottomless.spool import Spool


@dataclass
class Target:
    db_path: str
    db_name: str
    side: SideFolder
    config: Config
    store: S3Store
    spool: Spool
    cipher: Cipher | None
    write_once: bool
    lease: Lease | None
    lock: ReplicatorLock  # only its holder ships the database

    @classmethod
    def open(
        cls,
        db_path: str,
        config: Config,
        store: S3Store | None = None,
    ) -> Target:
        """Settings are checked (S3Store, cipher) before anything is made
        beside the database; then the lock, which makes the side folder and
        says clearly why it cannot; then the spool."""
        db_path = os.path.abspath(db_path)
        db_name = config.database_id or layout.db_name_for_path(db_path)
        store = store or S3Store(config.endpoint, config.bucket)
        cipher = config.cipher()
        # Both rest on conditional writes: without them (the setting that
        # accepts the risk on servers that ignore them) there is no lease.
        write_once = config.conditional_writes
        lease = Lease(store, db_name, db_path, config.lease_secs) if config.lease_secs > 0 and write_once else None
        side = SideFolder.of(db_path)
        lock = ReplicatorLock(side.path)
        return cls(
            db_path=db_path,
            db_name=db_name,
            side=side,
            config=config,
            store=store,
            spool=Spool(db_path),
            cipher=cipher,
            write_once=write_once,
            lease=lease,
            lock=lock,
        )

    @property
    def key_id(self) -> str | None:
        return key_id(self.cipher)

    def guard(self) -> None:
        """Before writing to S3: hold the lease (FencedError when another writer does)."""
        if self.lease is not None:
            self.lease.ensure()

    def put_once(self, key: str, body: bytes, metadata: dict[str, str] | None = None) -> None:
        """PUT ``key``, written once unless conditional writes are off
        (PreconditionFailed when it exists)."""
        self.store.put(key, body, metadata=metadata, if_none_match=self.write_once)

    def put_fenced(self, key: str, body: bytes, metadata: dict[str, str] | None = None) -> None:
        """put_once, where an existing object means another writer got there
        first: FencedError."""
        try:
            self.put_once(key, body, metadata)
        except PreconditionFailed as exc:
            raise FencedError(f"{exc}; this replicator stops shipping") from None

"""Starting a new generation: the one place that does it.

Whatever the reason (a first start, a restore to continue from, a changed
key, a gap in the spool, pages lost, the snapshot interval, a page size
change, ``bottomless-cli snapshot``), a new generation is a consistent
snapshot of the database tied to a spool position, uploaded with its small
objects (``objects.generation_objects``), then recorded beside the spool:
which key it uses, and the state shipping continues from.
"""

from __future__ import annotations

import logging
import os
import uuid

from bottomless import layout, objects
from bottomless.frames import Meta
from bottomless.generation import new_generation
from bottomless.key_ids import record_key_id
from bottomless.lease import FencedError
from bottomless.s3 import PreconditionFailed
from bottomless.side_files import SideFolder
from bottomless.snapshot import take_snapshot
from bottomless.state import ReplicatorState, save_state
from bottomless.target import Target
from bottomless.uploads import upload_file

log = logging.getLogger(__name__)


def record_starting(side: SideFolder, generation: uuid.UUID) -> None:
    """Before its first upload: this side folder starts ``generation``. A
    replicator killed before the state is saved then finds the generation
    in the bucket and knows it as its own (``started_here``), where it
    would otherwise see another writer's history and refuse to go on."""
    path = side.starting
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(str(generation))
    side.adopt(tmp)
    os.replace(tmp, path)


def started_here(side: SideFolder) -> uuid.UUID | None:
    """The generation whose start here was interrupted, if one was."""
    try:
        return uuid.UUID(side.starting.read_text().strip())
    except (OSError, ValueError):
        return None


def start_generation(target: Target, parent: uuid.UUID | None) -> ReplicatorState:
    """Snapshot the database into a new generation (child of ``parent``);
    returns the state shipping continues from (every spool record up to its
    ``shipped_seq`` is in the snapshot)."""
    target.guard()
    snap = take_snapshot(target.db_path, target.spool)
    try:
        generation = new_generation()
        record_starting(target.side, generation)
        if target.lease is not None:
            target.lease.generation = str(generation)
        meta = Meta.new(snap.page_size)
        codec = target.config.compression
        try:
            size = upload_file(
                target.store,
                layout.snapshot_key(target.db_name, generation, codec),
                snap.path,
                codec,
                target.cipher,
                target.write_once,
            )
            for key, body in objects.generation_objects(target.db_name, generation, parent, snap.change_counter, meta):
                target.put_once(key, body)
        except PreconditionFailed as exc:
            raise FencedError(f"{exc}; this replicator stops shipping") from None
    finally:
        os.unlink(snap.path)
    record_key_id(target.side, str(generation), target.key_id)
    chain = meta.chain()
    state = ReplicatorState(
        db_name=target.db_name,
        generation=str(generation),
        page_size=snap.page_size,
        next_frame=1,
        chain=(chain.salt1, chain.salt2, chain.cksum1, chain.cksum2),
        shipped_seq=snap.seq,
        frames_since_snapshot=0,
        bucket=target.config.bucket,
        endpoint=target.config.endpoint,
    )
    save_state(target.side.path, state)
    target.side.starting.unlink(missing_ok=True)
    log.info(
        "new generation %s of %s: snapshot of %d bytes (%s), spool seq %d%s",
        generation,
        target.db_name,
        size,
        codec,
        snap.seq,
        f", parent {parent}" if parent else "",
    )
    if target.cipher is not None:
        log.info("generation %s is encrypted (aes-256-gcm, key id %s)", generation, target.cipher.key_id)
    return state

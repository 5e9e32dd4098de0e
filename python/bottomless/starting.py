"""What a replicator's start needs before the decision (``start_decision.py``):
a destination it may write to, and the facts the decision takes, read from
the side folder and the bucket."""

from __future__ import annotations

import uuid

from bottomless import catalog, objects, server_features
from bottomless.generation_start import started_here
from bottomless.key_ids import generation_key_id
from bottomless.restore_marker import restored_from
from bottomless.snapshot import ensure_wal
from bottomless.start_decision import StartFacts
from bottomless.state import load_state
from bottomless.target import Target


def ready_to_write(target: Target) -> None:
    """The bucket exists, the server honours what the configuration relies
    on (checked once per endpoint and bucket, remembered in the side
    folder), this replicator holds the lease, the database is in WAL mode."""
    target.store.ensure_bucket()
    target.side.ensure()
    server_features.check(
        target.store, target.side.path, target.db_name, target.write_once, lease=target.lease is not None
    )
    target.guard()
    ensure_wal(target.db_path)


def gather_facts(target: Target) -> StartFacts:
    """Everything but ``local_is_newer`` (a GET, asked for only when needed)."""
    state = load_state(target.side.path)
    generations = catalog.list_generations(target.store, target.db_name)
    restored = restored_from(target.db_path)
    return StartFacts(
        db_name=target.db_name,
        bucket=target.config.bucket,
        endpoint=target.config.endpoint,
        state=state,
        newest=generations[0] if generations else None,
        state_key_id=generation_key_id(target.side, state.generation) if state is not None else None,
        key_id=target.key_id,
        restored_from=uuid.UUID(restored) if restored is not None else None,
        started_here=started_here(target.side),
    )


def local_is_newer(target: Target, newest: uuid.UUID) -> bool:
    """Whether the database's change counter is past the one ``newest``'s
    snapshot recorded."""
    remote = objects.read_change_counter(target.store, target.db_name, newest)
    with open(target.db_path, "rb") as f:
        head = f.read(28)
    if remote is None or len(head) < 28:
        return False
    return int.from_bytes(head[24:28], "big") > int.from_bytes(remote, "big")

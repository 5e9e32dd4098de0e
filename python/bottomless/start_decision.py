"""Where shipping continues when a replicator starts: a pure function from
what it knows (the state recorded beside the spool, the bucket's newest
generation, key ids, the restore marker) to an outcome. No I/O here: the
replicator gathers the facts and acts on the decision (``replicator.py``);
``tests/test_start_decision.py`` is its table."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from bottomless.state import ReplicatorState


class Start(enum.Enum):
    CONTINUE = "continue"  # ship into the recorded generation (after what S3 already holds)
    NEW = "new"  # a new generation from a snapshot, child of ``parent``
    NEW_AFTER_RESTORE = "new after restore"  # ditto, child of the restored generation; forget the marker
    NEW_KEY_CHANGED = "new, key changed"  # ditto; the current generation takes nothing more
    DIVERGED = "diverged"  # refuse: shipping would mix two histories
    COMPARE_CHANGE_COUNTER = "compare change counter"  # decide again with ``local_is_newer``


@dataclass(frozen=True)
class StartFacts:
    db_name: str
    bucket: str
    endpoint: str
    state: ReplicatorState | None  # recorded beside the spool
    newest: uuid.UUID | None  # the bucket's newest generation of db_name
    state_key_id: str | None  # fingerprint recorded for state's generation (None: not encrypted)
    key_id: str | None  # fingerprint of the configured key (None: no key)
    restored_from: uuid.UUID | None  # the restore marker
    # Is the local database's change counter past the newest generation's?
    # None: not looked at yet (it costs a GET; asked for only when needed).
    local_is_newer: bool | None = None
    # A generation this side folder began to start and did not finish
    # recording (its replicator was killed between upload and state).
    started_here: uuid.UUID | None = None


@dataclass(frozen=True)
class StartDecision:
    outcome: Start
    state: ReplicatorState | None = None  # the recorded state shipping goes on from, if any
    parent: uuid.UUID | None = None  # parent of the new generation
    reason: str = ""  # DivergedError's message
    note: str = ""  # what the log says about the decision


def decide(facts: StartFacts) -> StartDecision:
    state = facts.state
    note = ""
    if state is not None and (state.db_name, state.bucket, state.endpoint) != (
        facts.db_name,
        facts.bucket,
        facts.endpoint,
    ):
        state = None
        note = "replicator state is for another destination; starting a new generation"
    newest = facts.newest
    if newest is not None and newest == facts.started_here and (state is None or state.generation_id != newest):
        # Ours, half recorded: its snapshot may lack what followed, and the
        # state to continue it is lost. A new generation after it.
        return StartDecision(
            Start.NEW,
            parent=newest,
            note=f"the start of generation {newest} of {facts.db_name} was interrupted; starting a new generation",
        )
    if state is not None and newest is not None:
        if newest != state.generation_id:
            return StartDecision(
                Start.DIVERGED,
                reason=f"the newest generation of {facts.db_name!r} in the bucket is {newest}, but this database "
                f"continues {state.generation}: another writer or a restore elsewhere moved on. Restore this "
                "database (bottomless-cli restore) or start a new generation from it (bottomless-cli snapshot).",
            )
        if facts.state_key_id != facts.key_id:
            # Encryption was turned on or off, or the key changed: the rest
            # of the history goes into a new generation with a new snapshot
            # (which holds what the old one had not received yet).
            return StartDecision(
                Start.NEW_KEY_CHANGED,
                state,
                state.generation_id,
                note=f"the encryption key of {facts.db_name} changed; starting a new generation",
            )
        return StartDecision(Start.CONTINUE, state)
    if facts.restored_from is not None:
        # A restore put this file in place on purpose (on open, or with
        # bottomless-cli restore, maybe to an earlier point in time):
        # continue from it in a new generation.
        return StartDecision(Start.NEW_AFTER_RESTORE, parent=facts.restored_from, note=note)
    if state is None and newest is not None:
        if facts.local_is_newer is None:
            return StartDecision(Start.COMPARE_CHANGE_COUNTER, note=note)
        if not facts.local_is_newer:
            return StartDecision(
                Start.DIVERGED,
                reason=f"the bucket already holds {facts.db_name!r} (newest generation {newest}) and this "
                "database was never replicated from here or is not newer: restore it (bottomless-cli restore), "
                "or start a new generation from it on purpose (bottomless-cli snapshot).",
                note=note,
            )
    return StartDecision(Start.NEW, parent=state.generation_id if state is not None else newest, note=note)


def snapshot_continues(facts: StartFacts) -> bool:
    """Before an explicit new generation (``bottomless-cli snapshot``): does
    the recorded generation take what the spool holds first? Only while it
    is still the bucket's newest and uses the configured key."""
    state = facts.state
    return (
        state is not None
        and state.db_name == facts.db_name
        and state.generation_id == facts.newest
        and facts.state_key_id == facts.key_id
    )

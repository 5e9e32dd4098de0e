"""The start decision as a table: what a replicator does when it starts,
from what it knows, with no S3 server (``start_decision.decide``)."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from bottomless.generation import new_generation
from bottomless.start_decision import Start, StartFacts, decide, snapshot_continues
from bottomless.state import ReplicatorState

DB, BUCKET, ENDPOINT = "app.db", "bucket", "http://s3"
GEN = new_generation()
OTHER = new_generation()
RESTORED = new_generation()


def state(generation: uuid.UUID = GEN, **changes: object) -> ReplicatorState:
    base = ReplicatorState(
        db_name=DB,
        generation=str(generation),
        page_size=4096,
        next_frame=10,
        chain=(1, 2, 3, 4),
        shipped_seq=7,
        frames_since_snapshot=9,
        bucket=BUCKET,
        endpoint=ENDPOINT,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def facts(**changes: object) -> StartFacts:
    base = StartFacts(
        db_name=DB,
        bucket=BUCKET,
        endpoint=ENDPOINT,
        state=None,
        newest=None,
        state_key_id=None,
        key_id=None,
        restored_from=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# (case, facts, outcome, parent, keeps the recorded state)
TABLE = [
    ("first start, empty bucket", facts(), Start.NEW, None, False),
    (
        "killed after uploading its first generation, before recording it",
        facts(newest=GEN, started_here=GEN),
        Start.NEW,
        GEN,
        False,
    ),
    (
        "killed after uploading a new generation, the previous one recorded",
        facts(state=state(OTHER), newest=GEN, started_here=GEN),
        Start.NEW,
        GEN,
        False,
    ),
    (
        "an interrupted start of a generation that is not the newest",
        facts(state=state(), newest=OTHER, started_here=RESTORED),
        Start.DIVERGED,
        None,
        False,
    ),
    ("recorded generation is the newest", facts(state=state(), newest=GEN), Start.CONTINUE, None, True),
    (
        "recorded generation is the newest, encrypted with the same key",
        facts(state=state(), newest=GEN, state_key_id="k1", key_id="k1"),
        Start.CONTINUE,
        None,
        True,
    ),
    (
        "encryption turned on",
        facts(state=state(), newest=GEN, key_id="k1"),
        Start.NEW_KEY_CHANGED,
        GEN,
        True,
    ),
    (
        "encryption turned off",
        facts(state=state(), newest=GEN, state_key_id="k1"),
        Start.NEW_KEY_CHANGED,
        GEN,
        True,
    ),
    (
        "key changed",
        facts(state=state(), newest=GEN, state_key_id="k1", key_id="k2"),
        Start.NEW_KEY_CHANGED,
        GEN,
        True,
    ),
    ("another writer moved on", facts(state=state(), newest=OTHER), Start.DIVERGED, None, False),
    (
        "another writer moved on, even after a restore here",
        facts(state=state(), newest=OTHER, restored_from=RESTORED),
        Start.DIVERGED,
        None,
        False,
    ),
    ("bucket emptied under a recorded state", facts(state=state()), Start.NEW, GEN, False),
    (
        "restored here from the newest generation",
        facts(newest=RESTORED, restored_from=RESTORED),
        Start.NEW_AFTER_RESTORE,
        RESTORED,
        False,
    ),
    (
        "restored from an older generation",
        facts(newest=OTHER, restored_from=RESTORED),
        Start.NEW_AFTER_RESTORE,
        RESTORED,
        False,
    ),
    (
        "bucket holds it, never replicated here: compare first",
        facts(newest=OTHER),
        Start.COMPARE_CHANGE_COUNTER,
        None,
        False,
    ),
    ("bucket holds it, local is newer", facts(newest=OTHER, local_is_newer=True), Start.NEW, OTHER, False),
    ("bucket holds it, local is not newer", facts(newest=OTHER, local_is_newer=False), Start.DIVERGED, None, False),
    (
        "state for another bucket: as if never replicated here",
        facts(state=state(bucket="elsewhere"), newest=GEN),
        Start.COMPARE_CHANGE_COUNTER,
        None,
        False,
    ),
    (
        "state for another endpoint, local newer",
        facts(state=state(endpoint="http://other"), newest=GEN, local_is_newer=True),
        Start.NEW,
        GEN,
        False,
    ),
    (
        "state for another database name, empty bucket",
        facts(state=state(db_name="other.db")),
        Start.NEW,
        None,
        False,
    ),
]


@pytest.mark.parametrize(("case", "given", "outcome", "parent", "keeps_state"), TABLE, ids=[row[0] for row in TABLE])
def test_start_decision(
    case: str, given: StartFacts, outcome: Start, parent: uuid.UUID | None, keeps_state: bool
) -> None:
    decision = decide(given)
    assert decision.outcome is outcome, case
    assert decision.parent == parent, case
    assert (decision.state is not None and decision.state == given.state) is keeps_state, case


def test_divergence_says_what_to_do() -> None:
    moved = decide(facts(state=state(), newest=OTHER))
    assert str(OTHER) in moved.reason and "bottomless-cli restore" in moved.reason
    assert "bottomless-cli snapshot" in moved.reason
    never = decide(facts(newest=OTHER, local_is_newer=False))
    assert "never replicated from here" in never.reason and "bottomless-cli restore" in never.reason


def test_a_state_for_another_destination_is_logged() -> None:
    decision = decide(facts(state=state(bucket="elsewhere")))
    assert decision.outcome is Start.NEW and "another destination" in decision.note


@pytest.mark.parametrize(
    ("given", "continues"),
    [
        (facts(state=state(), newest=GEN), True),
        (facts(state=state(), newest=GEN, state_key_id="k", key_id="k"), True),
        (facts(state=state(), newest=OTHER), False),
        (facts(state=state(), newest=GEN, key_id="k"), False),
        (facts(state=state(db_name="other.db"), newest=GEN), False),
        (facts(newest=GEN), False),
    ],
)
def test_snapshot_continues_only_the_bucket_s_newest_generation(given: StartFacts, continues: bool) -> None:
    assert snapshot_continues(given) is continues

"""Which batches a restore fetches: the furthest-reaching object at each
frame, small ones where a time limit cuts a merged object, and a gap is an
error naming the object past it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from bottomless.catalog import Batch, Generation
from bottomless.errors import RestoreError
from bottomless.merging import MergeRun
from bottomless.restore import select_batches

GEN = uuid.UUID("e4ce6782-474f-7268-ac5f-94e31296aaf1")


def batch(first: int, last: int, secs: int) -> Batch:
    return Batch(f"db-{GEN}/{first:012}-{last:012}-{secs}.zstd", first, last, secs, "zstd", 10)


def generation(*batches: Batch) -> Generation:
    return Generation("db", GEN, batches=sorted(batches, key=lambda b: (b.first, b.last, b.unix_secs)))


def ranges(chosen: list[Batch]) -> list[tuple[int, int]]:
    return [(b.first, b.last) for b in chosen]


def test_merged_objects_are_preferred() -> None:
    small = [batch(i, i, 100 + i) for i in range(1, 11)]
    gen = generation(*small, batch(1, 8, 108), batch(9, 9, 109), batch(10, 10, 110))
    assert ranges(select_batches(gen, None)) == [(1, 8), (9, 9), (10, 10)]


def test_time_limit_inside_a_merged_object_uses_the_small_batches() -> None:
    small = [batch(i, i, 100 + i) for i in range(1, 11)]
    gen = generation(*small, batch(1, 10, 110))
    until = datetime.fromtimestamp(105, UTC)
    assert ranges(select_batches(gen, until)) == [(i, i) for i in range(1, 6)]


def test_a_gap_is_an_error_naming_the_batch_after_it() -> None:
    gen = generation(batch(1, 4, 101), batch(6, 9, 102))
    with pytest.raises(RestoreError, match="000000000006-000000000009"):
        select_batches(gen, None)


def test_merge_runs_are_consecutive_and_bounded() -> None:
    run = MergeRun()
    assert not run.add(1, 2, 1, b"x" * 10)
    assert not run.add(4, 4, 1, b"y")  # not consecutive: starts over at 4
    assert run.take()[:2] == (4, 4)
    for i in range(1, 64):
        assert not run.add(i, i, i, b"z")
    assert run.add(64, 64, 64, b"z")
    assert run.take() == (1, 64, 64, b"z" * 64)

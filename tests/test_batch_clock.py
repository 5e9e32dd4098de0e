"""When batches are due (batch_clock.py): a commit waits for the next grid
point (never more than one interval), at most one batch goes out per grid
slot, a batch starts early by the time shipping took, within a cap, and
databases of one process have their grid points spread over the interval."""

from __future__ import annotations

import pytest

from bottomless.batch_clock import MAX_SHARE, BatchClock, phase_of


@pytest.mark.parametrize("commit", [10.0, 10.01, 10.5, 10.99])
def test_a_commit_waits_for_the_next_grid_point(commit: float) -> None:
    clock = BatchClock(1.0)
    due = clock.due(commit)
    assert commit <= due <= commit + 1.0
    assert due == pytest.approx(11.0 if commit > 10.0 else 10.0)


def test_one_batch_per_slot() -> None:
    clock = BatchClock(1.0)
    clock.shipped(10.2, 0.0)  # the batch due at 11 went out
    # a commit made while it was shipping is in the next slot, not again at 11
    assert clock.due(10.99) == pytest.approx(12.0)
    assert clock.due(13.4) == pytest.approx(14.0)


def test_a_batch_starts_early_by_the_time_shipping_takes() -> None:
    clock = BatchClock(1.0)
    clock.shipped(10.2, 0.08)
    assert 12.0 - MAX_SHARE <= clock.due(11.5) <= 12.0 - 0.08
    for _ in range(20):  # steady shipping times: the lead settles on them
        clock.shipped(clock.due(12.0) + 0.5, 0.08)
    assert clock.lead == pytest.approx(0.08, abs=0.005)
    clock.shipped(clock.due(12.0) + 0.5, 30.0)  # a slow round (a snapshot) moves the lead only up to the cap
    assert clock.lead == pytest.approx(MAX_SHARE)


@pytest.mark.parametrize("commit", [10.0, 10.3, 10.31, 10.99])
def test_a_shifted_grid_keeps_the_promise(commit: float) -> None:
    clock = BatchClock(1.0, phase=0.3)
    due = clock.due(commit)
    assert commit <= due <= commit + 1.0
    assert due == pytest.approx(10.3 if commit <= 10.3 else 11.3)
    clock.shipped(commit, 0.0)
    assert clock.due(commit) == pytest.approx(due + 1.0)  # one batch per slot


def test_many_databases_spread_their_batches_over_the_interval() -> None:
    # A thousand tenants on one grid would all start a batch at once.
    interval = 2.0
    phases = [phase_of(f"tenant-{i:05d}.db", interval) for i in range(1000)]
    assert all(0.0 <= p < interval for p in phases)
    per_tenth = [sum(1 for p in phases if k * interval / 10 <= p < (k + 1) * interval / 10) for k in range(10)]
    assert min(per_tenth) >= 70 and max(per_tenth) <= 130
    assert phase_of("tenant-00001.db", interval) == phases[1]  # the same in every process

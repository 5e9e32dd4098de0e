"""When batches are due (batch_clock.py): a commit waits for the next grid
point (never more than one interval), at most one batch goes out per grid
slot, and a batch starts early by the time shipping took, within a cap."""

from __future__ import annotations

import pytest

from bottomless.batch_clock import MAX_SHARE, BatchClock


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

"""When a batch is due: on a fixed grid of batch intervals, started early
by the time shipping takes, at most one batch per grid slot.

A commit waits for the next grid point, never longer than one interval,
and on average half of one, whenever it comes: the same promise as
Litestream's sync interval. Counting the interval from the oldest pending
commit instead makes the first commit of every batch wait a whole
interval, which with a few commits per interval (5 a second) puts the
median at 0.6 intervals. And the grid point is when the batch should be
in S3, not when it starts: reading, compressing and uploading it takes
tens of milliseconds (more on a busy machine), which would otherwise be
added to every commit's lag.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WEIGHT = 0.3  # of the newest sample: follows a change of load within a few batches
MAX_SHARE = 0.25  # of the interval, at most: a slow round (a snapshot) cannot make batches tiny


@dataclass
class BatchClock:
    interval: float
    lead: float = 0.0  # moving average of how long shipping a batch took
    _last_slot: int = -1

    def due(self, oldest: float) -> float:
        """When the batch holding a commit made at ``oldest`` starts
        (monotonic seconds)."""
        slot = max(math.ceil(oldest / self.interval), self._last_slot + 1)
        return slot * self.interval - self.lead

    def shipped(self, oldest: float, took: float) -> None:
        """The batch holding ``oldest`` went out, taking ``took`` seconds."""
        self._last_slot = max(math.ceil(oldest / self.interval), self._last_slot + 1)
        took = min(max(took, 0.0), self.interval * MAX_SHARE)
        self.lead = took if self.lead == 0.0 else WEIGHT * took + (1 - WEIGHT) * self.lead

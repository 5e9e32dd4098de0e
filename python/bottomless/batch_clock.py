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

Each database's grid is shifted by a phase of its own (``phase_of`` its
name): on one shared grid, a process shipping a thousand databases would
have every due batch start at the same instant each interval, and the last
of them wait for all the others on the pool's few threads.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

WEIGHT = 0.25  # of the newest sample: follows a change of load within a few batches
SPREAD = 2.0  # lead = mean + SPREAD * mean deviation (as TCP's retransmit timer), so most batches arrive in time
MAX_SHARE = 0.25  # of the interval, at most: a slow round (a snapshot) cannot make batches tiny


def phase_of(name: str, interval: float) -> float:
    """Where in [0, interval) the grid of the database ``name`` lies: spread
    evenly over many names, and the same in every process."""
    return zlib.crc32(name.encode()) / 2**32 * interval


@dataclass
class BatchClock:
    interval: float
    phase: float = 0.0  # the grid points are phase + k * interval
    lead: float = 0.0  # how much earlier than the grid point a batch starts
    _mean: float = 0.0  # moving average of how long shipping a batch took
    _dev: float = 0.0  # and of its deviation
    _last_slot: int = -1

    def due(self, oldest: float) -> float:
        """When the batch holding a commit made at ``oldest`` starts
        (monotonic seconds)."""
        slot = max(self._slot(oldest), self._last_slot + 1)
        return slot * self.interval + self.phase - self.lead

    def _slot(self, t: float) -> int:
        return math.ceil((t - self.phase) / self.interval)

    def shipped(self, oldest: float, took: float) -> None:
        """The batch holding ``oldest`` went out, taking ``took`` seconds."""
        self._last_slot = max(self._slot(oldest), self._last_slot + 1)
        took = max(took, 0.0)
        if self._mean == 0.0:
            self._mean, self._dev = took, took / 2
        else:
            self._dev += WEIGHT * (abs(took - self._mean) - self._dev)
            self._mean += WEIGHT * (took - self._mean)
        self.lead = min(self._mean + SPREAD * self._dev, self.interval * MAX_SHARE)

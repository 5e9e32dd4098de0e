"""How early a batch starts so it is in S3 when its oldest commit is one
batch interval old: the interval is a promise about commit-to-S3 lag, and
reading, compressing and uploading a batch takes time of its own (tens of
milliseconds, more on a busy machine), which starting at the interval
would add to every commit's lag."""

from __future__ import annotations

from dataclasses import dataclass

WEIGHT = 0.3  # of the newest sample: follows a change of load within a few batches
MAX_SHARE = 0.25  # of the interval, at most: a slow round (a snapshot) cannot make batches tiny


@dataclass
class ShipLead:
    interval: float
    seconds: float = 0.0  # moving average of how long shipping a batch took

    def record(self, took: float) -> None:
        took = min(max(took, 0.0), self.interval * MAX_SHARE)
        self.seconds = took if self.seconds == 0.0 else WEIGHT * took + (1 - WEIGHT) * self.seconds

    def due_after(self) -> float:
        """Seconds after the oldest unshipped commit at which its batch starts."""
        return self.interval - min(self.seconds, self.interval * MAX_SHARE)

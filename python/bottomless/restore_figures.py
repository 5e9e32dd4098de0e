"""What a restore reports while it runs and when it is done: bytes fetched
and applied, objects, rate and time left."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Figures:
    """Running totals of one restore (updated by the thread that applies)."""

    fetch_total: int = 0  # bytes of every object the plan fetches (listing sizes)
    fetched: int = 0
    objects_total: int = 0
    objects_done: int = 0
    db_bytes: int = 0  # size of the restored database, once known
    applied: int = 0  # bytes of pages written into the restored file
    pages_written: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    # seconds: plan, apply, finish (truncate), integrity (the check, the fsync beside it)
    phases: dict[str, float] = field(default_factory=dict)

    def phase_done(self, name: str, since: float) -> float:
        """Records the phase that began at ``since``; returns now."""
        now = time.monotonic()
        self.phases[name] = round(now - since, 3)
        return now

    @property
    def seconds(self) -> float:
        return (self.finished if self.finished is not None else time.monotonic()) - self.started

    @property
    def fetch_rate(self) -> float:
        """Bytes fetched per second so far."""
        return self.fetched / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far (None before anything arrived)."""
        if self.fetched == 0 or self.fetch_total == 0:
            return None
        return max(0.0, (self.fetch_total - self.fetched) / self.fetch_rate)

    def as_dict(self) -> dict[str, float | int]:
        seconds = self.seconds
        return {
            "seconds": round(seconds, 3),
            "bytes_fetched": self.fetched,
            "objects_fetched": self.objects_done,
            "bytes_applied": self.applied,
            "pages_written": self.pages_written,
            "database_bytes": self.db_bytes,
            "mib_per_s": round(self.db_bytes / 2**20 / seconds, 1) if seconds > 0 else 0.0,
            "fetched_mib_per_s": round(self.fetched / 2**20 / seconds, 1) if seconds > 0 else 0.0,
            **{f"{name}_seconds": value for name, value in self.phases.items()},
        }


Progress = Callable[[Figures], None]

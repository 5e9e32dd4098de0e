"""Merging small batches into larger objects, so a restore fetches tens of
objects where the replicator uploaded thousands.

Every batch stays in S3 (point-in-time restore still has one-second steps);
after every run of ``RUN_BATCHES`` consecutive small batches the replicator
also uploads their frames as one object covering the whole run. A restore
takes, at each frame, the object that reaches furthest (``restore.py``), and
the checksum chain is the same either way. The merged object's timestamp is
its last batch's, so a restore to an earlier time uses the small ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RUN_BATCHES = 64
RUN_BYTES = 16 << 20  # frames kept in memory for one merge, at most
SMALL_BYTES = 1 << 20  # larger batches are worth fetching on their own


@dataclass
class MergeRun:
    """Consecutive small batches of one generation, waiting to be merged."""

    first: int = 0
    last: int = 0
    unix_secs: int = 0
    parts: list[bytes] = field(default_factory=list)
    size: int = 0

    def add(self, first: int, last: int, unix_secs: int, frames: bytes | bytearray | memoryview) -> bool:
        """Take a shipped batch; True when the run should be merged now."""
        if len(frames) > SMALL_BYTES:
            self.clear()
            return False
        if self.parts and first != self.last + 1:
            self.clear()  # a run is consecutive; start a new one here
        if not self.parts:
            self.first = first
        self.last, self.unix_secs = last, unix_secs
        self.parts.append(bytes(frames))  # small: the copy is cheap
        self.size += len(frames)
        return len(self.parts) >= RUN_BATCHES or self.size >= RUN_BYTES

    def take(self) -> tuple[int, int, int, bytes]:
        """(first, last, unix_secs, frames) of the run, which starts over."""
        merged = (self.first, self.last, self.unix_secs, b"".join(self.parts))
        self.clear()
        return merged

    def clear(self) -> None:
        self.parts.clear()
        self.size = 0

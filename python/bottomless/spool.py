"""The spool of a database, read through the native C ABI.

Capture (inside SQLite) appends one record per committed transaction to
``<db>-bottomless/spool``; this is the replicator's view of it: read records
in order, get their pages as WAL frames (from the WAL, or from the copy made
before SQLite reused it), acknowledge what S3 holds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from bottomless._native import BUSY, DONE, Native, load
from bottomless.errors import NativeError
from bottomless.frames import Chain, frame_size
from bottomless.side_files import SideFolder, folder_of

BUSY_RETRIES = 200


@dataclass(frozen=True)
class Record:
    """One committed transaction in the spool (mirrors ``bottomless_record``)."""

    seq: int
    offset: int
    next_offset: int
    unix_ms: int
    page_size: int
    db_size: int
    n_pages: int
    # Commits before this one were not captured (the side folder was not
    # writable or full, or dropped history at its size limit): the history
    # in S3 cannot continue across it.
    gap_before: bool = False


GAP_BEFORE = 1  # bottomless_record.flags


@dataclass(frozen=True)
class SpoolStats:
    """Unacknowledged backlog and disk use (mirrors ``bottomless_stats``)."""

    records: int
    bytes: int
    disk_bytes: int
    oldest_unix_ms: int
    last_seq: int
    acked_seq: int
    # Capture problems waiting for the replicator's next snapshot: records
    # after uncaptured commits, and history dropped at the size limit.
    gaps: int = 0
    dropped_seq: int = 0


def spool_dir(db_path: str) -> str:
    """The folder beside the database that holds its spool."""
    return folder_of(db_path)


def _inode(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


class Spool:
    """Reader/acknowledger of one database's spool."""

    def __init__(self, db_path: str, native: Native | None = None) -> None:
        self.native = native or load()
        self.db_path = db_path
        out = self.native.ffi.new("bottomless_spool **")
        self.native.check(
            self.native.lib.bottomless_spool_open(db_path.encode(), out), f"opening the spool of {db_path}"
        )
        self._handle: Any = out[0]
        self._file = str(SideFolder.of(db_path).spool)
        self._inode = _inode(self._file)

    def close(self) -> None:
        if self._handle is not None:
            self.native.lib.bottomless_spool_close(self._handle)
            self._handle = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _h(self) -> Any:
        if self._handle is None:
            raise ValueError("spool is closed")
        return self._handle

    def replaced(self) -> bool:
        """Whether the spool file was removed or replaced since this handle
        opened it (a restore starts the spool afresh): its records and the
        acknowledgements now on disk belong to different files."""
        return _inode(self._file) != self._inode

    def start(self) -> int:
        """Offset of the first record not yet acknowledged."""
        out = self.native.ffi.new("uint64_t *")
        self.native.check(self.native.lib.bottomless_spool_start(self._h(), out), "reading the spool's ack")
        return int(out[0])

    def _raw(self, rec: Record) -> Any:
        raw = self.native.ffi.new("bottomless_record *")
        raw.seq, raw.offset, raw.next_offset, raw.unix_ms = rec.seq, rec.offset, rec.next_offset, rec.unix_ms
        raw.page_size, raw.db_size, raw.n_pages = rec.page_size, rec.db_size, rec.n_pages
        raw.flags = GAP_BEFORE if rec.gap_before else 0
        return raw

    def next(self, offset: int) -> Record | None:
        """The complete, verified record at ``offset``, or None if none yet."""
        raw = self.native.ffi.new("bottomless_record *")
        code = self.native.check(
            self.native.lib.bottomless_spool_next(self._h(), offset, raw), f"reading the spool at {offset}"
        )
        if code == DONE:
            return None
        return Record(
            int(raw.seq),
            int(raw.offset),
            int(raw.next_offset),
            int(raw.unix_ms),
            int(raw.page_size),
            int(raw.db_size),
            int(raw.n_pages),
            bool(raw.flags & GAP_BEFORE),
        )

    def records(self, offset: int | None = None) -> Iterator[Record]:
        """Complete records from ``offset`` (default: the first unacknowledged)."""
        pos = self.start() if offset is None else offset
        while (rec := self.next(pos)) is not None:
            yield rec
            pos = rec.next_offset

    def frames(self, rec: Record, chain: Chain, first: int = 0, count: int | None = None) -> tuple[bytes, Chain]:
        """Pages ``[first, first+count)`` of ``rec`` as WAL frames continuing ``chain``."""
        n = rec.n_pages - first if count is None else count
        size = n * frame_size(rec.page_size)
        buf = self.native.ffi.new("uint8_t[]", max(size, 1))
        for attempt in range(BUSY_RETRIES):
            c = self.native._chain_in(chain)
            code = self.native.check(
                self.native.lib.bottomless_spool_frames(self._h(), self._raw(rec), first, n, c, buf, size),
                f"reading the pages of transaction {rec.seq}",
            )
            if code != BUSY:
                return bytes(self.native.ffi.buffer(buf, size)), self.native._chain_out(c)
            # SQLite is rewriting checksums of the frames right now.
            time.sleep(0.001 * (attempt + 1))
        raise NativeError(BUSY, f"the WAL frames of transaction {rec.seq} stayed unreadable")

    def ack(self, rec: Record) -> None:
        """Everything up to and including ``rec`` is safe in S3."""
        self.native.check(self.native.lib.bottomless_spool_ack(self._h(), self._raw(rec)), f"acknowledging {rec.seq}")

    def stats(self) -> SpoolStats:
        out = self.native.ffi.new("bottomless_stats *")
        self.native.check(self.native.lib.bottomless_spool_stats(self._h(), out), "reading spool stats")
        return SpoolStats(
            int(out.records),
            int(out.bytes),
            int(out.disk_bytes),
            int(out.oldest_unix_ms),
            int(out.last_seq),
            int(out.acked_seq),
            int(out.gaps),
            int(out.dropped_seq),
        )

    def reconcile(self) -> int:
        """Append commits the WAL holds and the spool lacks; needs the write lock."""
        out = self.native.ffi.new("uint64_t *")
        self.native.check(self.native.lib.bottomless_spool_reconcile(self._h(), out), "reconciling the spool")
        return int(out[0])

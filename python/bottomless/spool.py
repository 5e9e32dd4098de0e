"""The spool of a database, read through the native C ABI (``_native``).

Capture (inside SQLite) appends one record per committed transaction to
``<db>-bottomless/spool``; this is the replicator's view of it: read records
in order, get their pages as WAL frames (from the WAL, or from the copy made
before SQLite reused it), acknowledge what S3 holds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from bottomless._native import Native, Offer, OfferStop, Record, RecordRun, SpoolStats, load
from bottomless.errors import NativeError
from bottomless.frames import Chain
from bottomless.side_files import SideFolder, folder_of

__all__ = ["Offer", "OfferStop", "Record", "RecordRun", "Spool", "SpoolStats", "spool_dir"]

BUSY_RETRIES = 200


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
        self._handle: Any = self.native.spool_open(db_path)
        self._file = str(SideFolder.of(db_path).spool)
        self._inode = _inode(self._file)

    def close(self) -> None:
        if self._handle is not None:
            self.native.spool_close(self._handle)
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
        return self.native.spool_start(self._h())

    def next(self, offset: int) -> Record | None:
        """The complete, verified record at ``offset``, or None if none yet."""
        return self.native.spool_next(self._h(), offset)

    def records(self, offset: int | None = None) -> Iterator[Record]:
        """Complete records from ``offset`` (default: the first unacknowledged)."""
        pos = self.start() if offset is None else offset
        while (rec := self.next(pos)) is not None:
            yield rec
            pos = rec.next_offset

    def frames(self, rec: Record, chain: Chain, first: int = 0, count: int | None = None) -> tuple[bytes, Chain]:
        """Pages ``[first, first+count)`` of ``rec`` as WAL frames continuing ``chain``."""
        n = rec.n_pages - first if count is None else count
        for attempt in range(BUSY_RETRIES):
            got = self.native.spool_frames(self._h(), rec, first, n, chain)
            if got is not None:
                return got
            # SQLite is rewriting checksums of the frames right now.
            time.sleep(0.001 * (attempt + 1))
        raise NativeError(self.native.lib.BOTTOMLESS_BUSY, f"the WAL frames of transaction {rec.seq} stayed unreadable")

    def offer(self, after_seq: int, page_size: int, max_raw_bytes: int, max_span_ms: int) -> Offer:
        """The records the next batch is offered, from the first
        unacknowledged one (those at or below ``after_seq`` are passed
        over): one native call, however many records."""
        return self.native.spool_offer(self._h(), after_seq, page_size, max_raw_bytes, max_span_ms)

    def frames_run(self, run: RecordRun, chain: Chain, max_frames: int) -> tuple[memoryview, Chain, int]:
        """One batch from the start of ``run`` in one native call: each page
        once, as WAL frames continuing ``chain``, at most ``max_frames``
        pages unless its first transaction alone has more; with how many of
        the run's records it holds."""
        for attempt in range(BUSY_RETRIES):
            got = self.native.spool_frames_run(self._h(), run, chain, max_frames)
            if got is not None:
                return got
            time.sleep(0.001 * (attempt + 1))
        raise NativeError(
            self.native.lib.BOTTOMLESS_BUSY,
            f"the WAL frames of {run.count} transaction(s) from spool offset {run.offset} stayed unreadable",
        )

    def ack(self, rec: Record) -> None:
        """Everything up to and including ``rec`` is safe in S3."""
        self.native.spool_ack(self._h(), rec)

    def seq_at(self, salt1: int, salt2: int, mx_frame: int, before_seq: int) -> int | None:
        """The seq of the newest commit a read transaction with this view of
        the WAL sees (None: the spool cannot say yet; retry)."""
        return self.native.spool_seq_at(self._h(), salt1, salt2, mx_frame, before_seq)

    def stats(self) -> SpoolStats:
        return self.native.spool_stats(self._h())

    def reconcile(self) -> int:
        """Append commits the WAL holds and the spool lacks; needs the write lock."""
        return self.native.spool_reconcile(self._h())

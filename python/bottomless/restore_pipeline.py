"""The data path of a restore: fetch, decode, verify and write at once,
each page written once, in its final place, in bounded memory.

Batches are fetched in parallel (a bounded number of bytes in flight), and
each is decrypted, decompressed and checked in the worker that fetched it
(zstandard and the native checks release the GIL). The thread that applies
takes them newest first: a page already written holds its newest image,
so older frames of it are skipped, and so are the snapshot's copies, which
stream in last (one streaming GET, or ranged GETs in parallel decoded in
order) into the pages no batch wrote. Frames after a generation's last
commit are checked and not applied.

Checksums lose nothing by the order. A worker checks a batch's frames
after its first against the chain its first frame stores; the applying
thread ties each first frame to the batch before it (or to ``.meta``'s
seed), so every frame is checked against the chain from the seed, as one
pass from the first frame would. Big-endian words (this project's first
buckets) are recognised per generation from its first batch, as before.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bottomless.catalog import Batch
from bottomless.crypto import HEADER_SIZE, TAG_SIZE, Cipher, is_encrypted
from bottomless.errors import LayoutError, NativeError, RestoreError
from bottomless.frames import FRAME_HEADER_SIZE, Chain, FrameHeader, Meta, frame_size
from bottomless.objects import BodyStream, decode_body
from bottomless.restore_fetch import ObjectSource, fetched, get_part, ordered, parts, streamed
from bottomless.restore_figures import Figures, Progress
from bottomless.restore_native import PageSet, RestoreNative
from bottomless.restore_writer import SnapshotWriter
from bottomless.snapshot_check import HEADER_SIZE as DB_HEADER_SIZE
from bottomless.snapshot_check import parse_header

log = logging.getLogger(__name__)

SNAPSHOT_BUDGET = 64 << 20  # snapshot bytes fetched ahead of the decoder
BATCH_BUDGET = 48 << 20  # decoded batch bytes in flight
# Read size of a streamed snapshot: below the 1 MiB mmap threshold
# bottomless-cli fixes (allocator.py), so each piece reuses heap memory;
# 1 MiB pieces were each freshly mapped (65,000 page faults and 0.15 to
# 0.37 s of system time per 255 MiB read).
STREAM_CHUNK = 512 << 10
STREAM_AHEAD = 16 << 20  # a streamed snapshot's bytes read ahead (64 MiB: peak RSS 240 MiB, 16: 150)


@dataclass(frozen=True)
class Tuning:
    """``part_size`` 0 (the default) streams the snapshot through one GET;
    a positive size fetches it in ranged parts of that many bytes, up to
    ``workers // 2`` at a time. One stream was the faster choice on both
    servers measured here (moto reads the whole object for every ranged
    GET; s3rver too was faster streamed: README, restore table); parts pay
    where one connection carries a fraction of what a restore takes, as on
    S3 itself across a long path."""

    workers: int = 8
    part_size: int = 0
    snapshot_budget: int = SNAPSHOT_BUDGET
    batch_budget: int = BATCH_BUDGET
    stream_chunk: int = STREAM_CHUNK


@dataclass(frozen=True)
class StepInput:
    """One generation's batches, as the plan chose them (oldest first)."""

    prefix: str
    meta: Meta | None
    batches: list[Batch]


@dataclass(frozen=True)
class SnapshotInput:
    key: str
    codec: str
    size: int


@dataclass
class Built:
    page_size: int
    db_size: int
    frames_applied: int
    uncommitted: int


@dataclass
class _Checked:
    """A batch fetched, decoded and checked after its first frame."""

    batch: Batch
    data: bytes | None  # dropped once applied
    first: bytes  # its first frame, to tie it to the batch before
    encrypted: bool
    frames: int
    last_commit: int  # -1: none
    db_size: int
    inner: dict[bool, str | None]  # big_endian -> None when frames 1.. chain, else why not
    end: tuple[int, int]  # checksum words stored in the last frame


@dataclass(frozen=True)
class _Link:
    key: str
    why: dict[bool, str | None]  # big_endian -> None when the whole batch chains from the one before


class Pipeline:
    def __init__(
        self,
        source: ObjectSource,
        native: RestoreNative,
        tmp: str,
        cipher: Cipher | None,
        verify: bool,
        tuning: Tuning,
        figures: Figures,
        progress: Progress | None,
    ) -> None:
        self.source, self.native, self.tmp, self.cipher, self.verify = source, native, tmp, cipher, verify
        self.tuning, self.figures, self.progress = tuning, figures, progress
        self.encrypted: bool | None = None
        self.written = PageSet()
        self.lock = threading.Lock()  # figures.fetched, counted by workers
        self._head = b""  # the snapshot's first range, read before the batches
        self._header_pages: int | None = None  # the snapshot header's page count, when trusted

    # ---- figures -------------------------------------------------------------
    def _fetched(self, n: int, objects: int = 0) -> None:
        with self.lock:
            self.figures.fetched += n
            self.figures.objects_done += objects

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.figures)

    # ---- the whole restore --------------------------------------------------------
    def run(self, snapshot: SnapshotInput | None, steps: list[StepInput], page_size: int | None) -> Built:
        with (
            ThreadPoolExecutor(max(1, self.tuning.workers), thread_name_prefix="restore-batch") as pool,
            ThreadPoolExecutor(max(1, self.tuning.workers // 2), thread_name_prefix="restore-part") as parts_pool,
        ):
            stream = self._snapshot_parts(parts_pool, snapshot) if snapshot is not None else None
            fd = os.open(self.tmp, os.O_RDWR)
            try:
                if snapshot is not None and stream is not None:
                    page_size = self._snapshot_head(snapshot, stream, page_size)
                assert page_size is not None
                final, frames, uncommitted = self._apply_batches(pool, fd, steps, page_size)
                snapshot_pages = 0
                if snapshot is not None and stream is not None:
                    snapshot_pages = self._apply_snapshot(fd, snapshot, stream, page_size, final)
            finally:
                os.close(fd)
                if stream is not None:
                    stream.close()  # a failure: parts not yet started are cancelled
        db_size = final if final is not None else snapshot_pages
        self.figures.db_bytes = db_size * page_size
        return Built(page_size, db_size, frames, uncommitted)

    # ---- batches ----------------------------------------------------------------
    def _apply_batches(
        self, pool: ThreadPoolExecutor, fd: int, steps: list[StepInput], page_size: int
    ) -> tuple[int | None, int, int]:
        """Applies every step's batches newest first; (database size after
        the newest commit or None, frames applied, frames left uncommitted)."""
        fsz = frame_size(page_size)
        newest_first = [(step, b) for step in reversed(steps) if step.meta is not None for b in reversed(step.batches)]

        def cost(item: tuple[StepInput, Batch]) -> int:
            return item[1].size + (item[1].last - item[1].first + 1) * fsz

        def job(item: tuple[StepInput, Batch]) -> tuple[StepInput, _Checked]:
            return item[0], self._check_batch(item[1], page_size)

        final: int | None = None
        applied = uncommitted = 0
        current: StepInput | None = None
        later: _Checked | None = None
        committed = False
        step_uncommitted = 0
        links: list[_Link] = []
        for step, checked in ordered(pool, newest_first, job, cost, self.tuning.batch_budget):
            if step is not current:
                if current is not None:
                    self._close_step(current, later, links, step_uncommitted, page_size)
                current, later, committed, links, step_uncommitted = step, None, False, [], 0
            self._same_encryption(checked)
            if later is not None:
                links.append(self._link(later, Chain(0, 0, *checked.end), page_size))
            eligible = checked.frames
            if not committed:
                eligible = checked.last_commit + 1
                committed = checked.last_commit >= 0
                if committed and final is None:
                    final = checked.db_size
                    self.figures.db_bytes = final * page_size
                step_uncommitted += checked.frames - eligible
                uncommitted += checked.frames - eligible
            assert checked.data is not None
            if eligible and final is not None:
                written = self.native.write_newest(fd, page_size, checked.data[: eligible * fsz], self.written, final)
                self.figures.pages_written += written
                self.figures.applied += written * page_size
            checked.data = None
            applied += eligible
            later = checked
            self._report()
        if current is not None:
            self._close_step(current, later, links, step_uncommitted, page_size)
        return final, applied, uncommitted

    def _close_step(
        self, step: StepInput, oldest: _Checked | None, links: list[_Link], uncommitted: int, page_size: int
    ) -> None:
        if oldest is not None:
            assert step.meta is not None
            links.append(self._link(oldest, step.meta.chain(), page_size))
        self._resolve(step, links)
        if uncommitted:
            log.warning(
                "generation %s ends with %d frame(s) of a transaction that never committed; they are not applied",
                step.prefix,
                uncommitted,
            )

    def _check_batch(self, batch: Batch, page_size: int) -> _Checked:
        raw = fetched(lambda: self.source.get(batch.key), batch.key)
        self._fetched(len(raw), 1)
        encrypted = is_encrypted(raw)
        if self.encrypted is not None and encrypted != self.encrypted:
            raise _mixed(batch.key, encrypted)
        try:
            data = decode_body(raw, batch.key, batch.compression, self.cipher)
        except LayoutError as exc:
            raise RestoreError(str(exc)) from None
        del raw
        fsz = frame_size(page_size)
        if len(data) % fsz:
            raise RestoreError(
                f"batch {batch.key!r} is truncated: {len(data)} bytes is not a whole number of {fsz}-byte frames"
            )
        count = len(data) // fsz
        if count != batch.last - batch.first + 1:
            raise RestoreError(
                f"batch {batch.key!r} holds {count} frames, its name says {batch.last - batch.first + 1}"
            )
        inner: dict[bool, str | None] = {False: None, True: None}
        last_commit, db_size = -1, 0
        try:
            last_commit, db_size, _ = self.native.check_frames(page_size, data, self.verify, False)
            if self.verify and count > 1:
                # Frames 1.. chain in little-endian words: in big-endian ones they would not.
                inner[True] = "its checksums are little-endian words, the generation's first batch's big-endian"
        except NativeError as exc:
            if "checksum" not in str(exc):
                raise RestoreError(f"batch {batch.key!r} failed to apply: {exc}") from None
            inner[False] = str(exc).split(": ", 1)[-1]
            try:
                last_commit, db_size, _ = self.native.check_frames(page_size, data, self.verify, True)
            except NativeError as be_exc:
                inner[True] = str(be_exc).split(": ", 1)[-1]
        end = (0, 0)
        if count:
            last = FrameHeader.decode(data[(count - 1) * fsz : (count - 1) * fsz + FRAME_HEADER_SIZE])
            end = (last.cksum1, last.cksum2)
        return _Checked(batch, data, data[:fsz], encrypted, count, last_commit, db_size, inner, end)

    def _same_encryption(self, checked: _Checked) -> None:
        if self.encrypted is None:
            self.encrypted = checked.encrypted
        elif checked.encrypted != self.encrypted:
            raise _mixed(checked.batch.key, checked.encrypted)

    def _link(self, batch: _Checked, before: Chain, page_size: int) -> _Link:
        """Whether all of ``batch`` chains from ``before`` (the frame before
        its first), for each word order."""
        why = dict(batch.inner)
        if self.verify and batch.frames:
            head = FrameHeader.decode(batch.first[:FRAME_HEADER_SIZE])
            for big_endian in (False, True):
                chain = self.native.chain_after(batch.first, page_size, before, big_endian)
                if why[big_endian] is None and (chain.cksum1, chain.cksum2) != (head.cksum1, head.cksum2):
                    order = "big" if big_endian else "little"
                    why[big_endian] = f"frame 0 (page {head.pgno}) fails its checksum ({order}-endian words)"
        return _Link(batch.batch.key, why)

    def _resolve(self, step: StepInput, links: list[_Link]) -> None:
        """The generation's word order, from its first batch, and the first
        batch (oldest first) whose chain breaks under it."""
        if not self.verify or not links:
            return
        forward = list(reversed(links))
        first = forward[0]
        if first.why[False] is None:
            big_endian = False
        elif first.why[True] is None:
            big_endian = True
            log.info("generation %s has big-endian checksums (written by an earlier bottomless)", step.prefix)
        else:
            raise RestoreError(f"batch {first.key!r} failed to apply: {first.why[False]}")
        for link in forward:
            problem = link.why[big_endian]
            if problem is not None:
                raise RestoreError(f"batch {link.key!r} failed to apply: {problem}")

    # ---- snapshot -----------------------------------------------------------------
    def _snapshot_parts(self, pool: ThreadPoolExecutor, snapshot: SnapshotInput) -> Generator[bytes, None, None]:
        """The snapshot's body in order: a first small range (enough for its
        encryption header, first chunk and database header), then parts."""
        head_len = min(snapshot.size, HEADER_SIZE + (1 << 20) + TAG_SIZE)
        if self.tuning.part_size <= 0:
            ahead = min(self.tuning.snapshot_budget, STREAM_AHEAD)
            return streamed(self.source, snapshot.key, head_len, self.tuning.stream_chunk, ahead, self._fetched)
        ranges = [(0, head_len - 1)] + [
            (first + head_len, last + head_len)
            for first, last in parts(snapshot.size - head_len, self.tuning.part_size)
        ]
        if snapshot.size == 0:
            ranges = []

        def job(span: tuple[int, int]) -> bytes:
            body = get_part(self.source, snapshot.key, span[0], span[1])
            self._fetched(len(body))
            return body

        return ordered(pool, ranges, job, lambda span: span[1] - span[0] + 1, self.tuning.snapshot_budget)

    def _snapshot_head(self, snapshot: SnapshotInput, stream: Iterator[bytes], page_size: int | None) -> int:
        """Checks the snapshot's start before any batch is applied: its
        encryption (every object must agree with it) and key, and its
        database header's page size against ``.meta``'s. Returns the page size."""
        self._head = next(stream, b"")
        self.encrypted = is_encrypted(self._head)
        probe = BodyStream(snapshot.key, snapshot.codec, self.cipher, snapshot.size)
        head = b""
        try:
            for out in probe.feed(self._head):
                head += out
                if len(head) >= DB_HEADER_SIZE:
                    break
            if len(head) < DB_HEADER_SIZE and snapshot.size <= len(self._head):
                head += b"".join(probe.finish())
        except LayoutError as exc:
            raise RestoreError(str(exc)) from None
        complete = snapshot.size <= len(self._head)
        if len(head) >= DB_HEADER_SIZE or (complete and head):
            return self._check_header(snapshot, head, page_size)
        if page_size is None:
            why = "not a SQLite database file (bad header)" if complete else "no .meta gives its page size"
            raise RestoreError(f"snapshot {snapshot.key!r} is unusable: {why}")
        return page_size  # empty, or a larger encryption chunk than the first range: checked as it streams

    def _check_header(self, snapshot: SnapshotInput, head: bytes | bytearray, page_size: int | None) -> int:
        try:
            header = parse_header(bytes(head[:DB_HEADER_SIZE]))
        except ValueError as exc:
            raise RestoreError(f"snapshot {snapshot.key!r} is unusable: {exc}") from None
        if page_size is not None and header.page_size != page_size:
            raise RestoreError(
                f"snapshot {snapshot.key!r} is unusable: page size {header.page_size} differs from .meta's {page_size}"
            )
        self._header_pages = header.page_count
        return header.page_size

    def _apply_snapshot(
        self, fd: int, snapshot: SnapshotInput, stream: Iterator[bytes], page_size: int, final: int | None
    ) -> int:
        """Streams the snapshot into the pages no batch wrote (a writer thread
        writes while this one decodes); returns its page count."""
        body = BodyStream(snapshot.key, snapshot.codec, self.cipher, snapshot.size)
        writer = SnapshotWriter(
            self.native,
            fd,
            page_size,
            self.written,
            lambda: final if final is not None else self._header_pages,
            self.figures,
        )
        checked = False
        try:
            for piece in _chain_first(self._head, stream):
                self._head = b""
                for out in body.feed(piece):
                    writer.add(out, DB_HEADER_SIZE)
                    if not checked and len(writer.head) >= DB_HEADER_SIZE:
                        self._check_header(snapshot, writer.head, page_size)
                        checked = True
                self._report()
            for out in body.finish():
                writer.add(out, DB_HEADER_SIZE)
            if not checked and writer.head:
                self._check_header(snapshot, writer.head, page_size)
            writer.close()
        except LayoutError as exc:
            raise RestoreError(str(exc)) from None
        finally:
            writer.abort()
        total = writer.total
        if total % page_size:
            raise RestoreError(
                f"snapshot {snapshot.key!r} is unusable: {total} bytes is not a whole number of {page_size}-byte pages"
            )
        pages = total // page_size
        if self._header_pages is not None and pages < self._header_pages:
            raise RestoreError(
                f"snapshot {snapshot.key!r} is unusable: truncated: {pages} pages, the header says {self._header_pages}"
            )
        log.info("Restored the main database file")
        return self._header_pages or pages


def _chain_first(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _mixed(key: str, encrypted: bool) -> RestoreError:
    state = "is" if encrypted else "is not"
    other = "is not" if encrypted else "is"
    return RestoreError(
        f"object {key!r} {state} encrypted but the snapshot it continues {other}; "
        "refusing a mixed (possibly substituted) history"
    )

"""Shipping: the spool's records as batches of WAL frames, in order, into
the current generation; and merged objects for runs of small batches.

The shipper knows where the current generation ends (``state``) and moves
it forward one PUT at a time: state saved, then the spool acknowledged. It
never starts a generation itself: when what S3 holds cannot be continued (a
gap, lost pages) or a new snapshot is due, it says so (``ShipResult.restart``)
and the replicator starts one (``generation_start.py``).
"""

from __future__ import annotations

import enum
import itertools
import logging
import time
from dataclasses import dataclass, replace

from bottomless import catalog, layout, objects
from bottomless.crypto import encryption_metadata
from bottomless.errors import BottomlessError, DivergedError, NativeError, S3Error
from bottomless.frames import Chain, frame_size
from bottomless.merging import MergeRun
from bottomless.s3 import PreconditionFailed
from bottomless.spool import Offer, OfferStop, Record, RecordRun, Spool
from bottomless.state import ReplicatorState, save_state
from bottomless.target import Target

log = logging.getLogger(__name__)

# Bytes of raw frames offered to one batch (what one native call reads). A
# busy writer's hot pages are rewritten many times a second (compare.py's
# oltp: 108 raw frames per distinct page, 250 MiB of frames a second at its
# fastest here), and each batch is one PUT, one state save and one
# acknowledgement, so a second of them should be one batch, not many.
RAW_BYTES_PER_OFFER = 256 << 20
# An offer that only measures the backlog: no limit on its time span.
_NO_SPAN_LIMIT_MS = 1 << 62


class Restart(enum.Enum):
    """Why the current generation takes no more and a new one must start."""

    GAP = "gap"  # commits were not captured: S3 cannot continue across the hole
    PAGES_LOST = "pages lost"  # pages of a transaction are gone from the WAL and the spool
    DUE = "due"  # snapshot interval, page size change or an explicit request

    @property
    def finish_current(self) -> bool:
        """Whether the current generation can still take what the spool holds."""
        return self is Restart.DUE


@dataclass(frozen=True)
class ShipResult:
    shipped: int  # transactions
    restart: Restart | None = None
    reason: str = ""


@dataclass
class _Batch:
    """An encoded batch, kept until its PUT succeeds so a retry re-sends the
    very same object under the very same key."""

    key: str
    body: bytes
    last: Record
    state: ReplicatorState
    records: int
    frames: int
    first: int
    raw: bytes | bytearray | memoryview  # the uncompressed frames, for merging


class Shipper:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.spool = target.spool
        self.state: ReplicatorState | None = None
        self._pending: _Batch | None = None
        self._merge = MergeRun()

    # ---- where the generation ends --------------------------------------------
    def begin(self, state: ReplicatorState) -> None:
        """Ship from a new generation's state on: acknowledge what its snapshot holds."""
        self.state = state
        self.ack_through(state.shipped_seq)

    def forget_merge_run(self) -> None:
        self._merge.clear()

    def fast_forward(self) -> None:
        """Skip records whose frames reached S3 before the state recorded them
        (a crash between PUT and save): the one batch past the state, found
        by comparing what the spool's records give with its body."""
        assert self.state is not None
        state = self.state
        gen = catalog.load_generation(self.target.store, self.target.db_name, state.generation_id)
        target = gen.last_frame
        if target < state.next_frame:
            return
        records = self._batch_candidates()
        found = None
        batch = next((b for b in gen.batches if not b.merged and (b.first, b.last) == (state.next_frame, target)), None)
        if batch is not None:
            body = objects.decode_body(
                self.target.store.get(batch.key), batch.key, batch.compression, self.target.cipher
            )
            found = self._records_of(records, body, batch.unix_secs)
        if found is None:
            raise DivergedError(
                f"generation {state.generation} ends at frame {target}, which the local spool cannot account "
                "for: start a new generation (bottomless-cli snapshot)"
            )
        end, chain = found
        last = records[end - 1]
        self.state = replace(
            state,
            next_frame=target + 1,
            chain=_chain_tuple(chain),
            shipped_seq=last.seq,
            frames_since_snapshot=state.frames_since_snapshot + target + 1 - state.next_frame,
        )
        save_state(self.target.side.path, self.state)
        self.spool.ack(last)
        log.info("generation %s already held frames up to %d; resumed after them", state.generation, target)

    def _records_of(self, records: list[Record], body: bytes, unix_secs: int) -> tuple[int, Chain] | None:
        """How many of ``records`` the batch ``body`` holds, with the chain
        after it: the longest run whose frames (each page once) are ``body``."""
        assert self.state is not None
        frames = len(body) // frame_size(self.state.page_size)
        for n in reversed(_runs_of_size(self.spool, records, self.state.chain_state(), frames)):
            if records[n - 1].unix_ms // 1000 != unix_secs:
                continue  # the key holds the last commit's second
            # Whatever limit cut it then, the run of n is what is compared.
            run = RecordRun.of(records[:n])
            every_frame = run.raw_bytes // frame_size(run.page_size)
            raw, chain, taken = self.spool.frames_run(run, self.state.chain_state(), every_frame)
            if taken == n and raw == body:
                return n, chain
        return None

    def _batch_candidates(self) -> list[Record]:
        """The records the one batch beyond the state can have held: those
        _ship_records would have offered it."""
        run = self._offer().run
        if run is None:
            return []
        return list(itertools.islice(self.spool.records(run.offset), run.count))

    def _offer(self) -> Offer:
        """The records offered to the next batch: at most RAW_BYTES_PER_OFFER
        of raw frames, with commits at most two batch intervals apart (what a
        restore to a point in time can tell apart). frames_run then ends the
        batch at BATCH_MAX_FRAMES distinct pages; what it leaves goes into
        the next."""
        assert self.state is not None
        span_ms = int(2000 * self.target.config.batch_interval_secs)
        return self.spool.offer(self.state.shipped_seq, self.state.page_size, RAW_BYTES_PER_OFFER, span_ms)

    def backlog_at_least(self, raw_bytes: int) -> bool:
        """Whether the records not yet shipped hold at least ``raw_bytes``
        of frames: one native scan of at most that much."""
        if self.state is None:
            return False
        offer = self.spool.offer(self.state.shipped_seq, self.state.page_size, raw_bytes, _NO_SPAN_LIMIT_MS)
        return offer.stop is OfferStop.FULL

    def ack_through(self, seq: int) -> None:
        last: Record | None = None
        for rec in self.spool.records():
            if rec.seq > seq:
                break
            last = rec
        if last is not None:
            self.spool.ack(last)

    # ---- shipping ---------------------------------------------------------------
    def has_pending(self) -> bool:
        """Cheap local check: is there a record past what we acknowledged?

        One local read (the file size says nothing: the capture side
        allocates the spool ahead of its records). A spool replaced under
        us, by a restore, holds nothing of ours."""
        if self._pending is not None:
            return True
        if self.spool.replaced():
            return False
        return self.spool.next(self.spool.start()) is not None

    def oldest_pending_age(self, limit: float) -> float:
        """Seconds since the oldest unshipped record was committed, at most
        ``limit`` (0 when unknown)."""
        if self._pending is not None or self.spool.replaced():
            return 0.0
        rec = self.spool.next(self.spool.start())
        if rec is None:
            return 0.0
        return min(max(0.0, time.time() - rec.unix_ms / 1000), limit)

    def ship(self, snapshot_due: bool) -> ShipResult:
        """Upload what the spool holds into the current generation; says
        when a new generation must start (``snapshot_due``: one was asked for)."""
        assert self.state is not None
        if self._pending is not None:
            self._put(self._pending)
        try:
            return self._ship_records(snapshot_due)
        except NativeError as exc:
            if not exc.corrupt:
                raise
            # Pages of a transaction are gone (dropped at the side folder's
            # limit, or the WAL was reset behind the extension's back): what
            # S3 holds cannot be continued, so start over from a snapshot.
            return ShipResult(0, Restart.PAGES_LOST, exc.message)

    def _ship_records(self, snapshot_due: bool) -> ShipResult:
        assert self.state is not None
        shipped = 0
        while True:
            offer = self._offer()
            if offer.skipped is not None:
                self.spool.ack(offer.skipped)
            if offer.run is not None:
                shipped += self._ship_offer(offer.run)
            if offer.stop is not OfferStop.FULL:
                break
        if offer.stop is OfferStop.SKIP:
            assert offer.next is not None
            raise BottomlessError(
                f"spool of {self.target.db_path} skips from seq {self.state.shipped_seq} to {offer.next.seq}"
            )
        gap = offer.next if offer.stop is OfferStop.GAP else None
        if gap is not None:
            # What S3 holds cannot continue across the hole: a snapshot
            # holds everything up to now, gap included.
            return ShipResult(
                shipped,
                Restart.GAP,
                f"transactions of {self.target.db_path} before spool seq {gap.seq} were not captured (see the "
                "application's log: the side folder was not writable or full, or passed "
                "LIBSQL_BOTTOMLESS_SPOOL_MAX_BYTES)",
            )
        if (
            snapshot_due
            or self.state.frames_since_snapshot >= self.target.config.snapshot_frames
            or offer.stop is OfferStop.PAGE_SIZE  # only a new generation can change it
        ):
            return ShipResult(shipped, Restart.DUE)
        return ShipResult(shipped)

    def _ship_offer(self, run: RecordRun) -> int:
        """Ships ``run`` in as many batches as BATCH_MAX_FRAMES asks for."""
        shipped = self._ship_batch(run)
        while shipped < run.count:
            shipped += self._ship_batch(run.after(shipped))
        return shipped

    def _ship_batch(self, run: RecordRun) -> int:
        """Ships one batch from the start of ``run``; returns how many
        records it held."""
        assert self.state is not None
        state = self.state
        raw, chain, n = self.spool.frames_run(run, state.chain_state(), self.target.config.batch_max_frames)
        last = self.spool.next(run.offset_of(n - 1))
        if last is None:
            raise BottomlessError(f"spool record at offset {run.offset_of(n - 1)} of {self.target.db_path} vanished")
        frames = len(raw) // frame_size(state.page_size)  # each page once (frames_run)
        first, end = state.next_frame, state.next_frame + frames - 1
        codec = self.target.config.compression
        db_name = self.target.db_name
        key = layout.batch_key(db_name, state.generation_id, first, end, last.unix_ms // 1000, codec)
        body = objects.encode_body(raw, codec, key, self.target.cipher)
        new_state = replace(
            state,
            next_frame=end + 1,
            chain=_chain_tuple(chain),
            shipped_seq=last.seq,
            frames_since_snapshot=state.frames_since_snapshot + frames,
        )
        batch = _Batch(key, body, last, new_state, n, frames, first, raw)
        self._pending = batch
        self._put(batch)
        return n

    def _put(self, batch: _Batch) -> None:
        self.target.guard()
        self.target.put_fenced(batch.key, batch.body, encryption_metadata(self.target.cipher))
        save_state(self.target.side.path, batch.state)
        self.state = batch.state
        self._pending = None
        self.spool.ack(batch.last)
        log.info(
            "batch %s: %d transaction(s), %d frame(s), %d bytes; requests so far %s",
            batch.key,
            batch.records,
            batch.frames,
            len(batch.body),
            self.target.store.stats.snapshot(),
        )
        unix_secs = batch.last.unix_ms // 1000
        if self._merge.add(batch.first, batch.state.next_frame - 1, unix_secs, batch.raw):
            self._upload_merged()

    def _upload_merged(self) -> None:
        """One object for the run of small batches just shipped (an extra the
        restore prefers; losing it loses nothing, so failures only log)."""
        assert self.state is not None
        first, last, unix_secs, raw = self._merge.take()
        codec = self.target.config.compression
        # Named so libSQL's key parser skips it (its replay would take the
        # overlap for a gap and stop there); this project's reader prefers it.
        key = layout.merged_batch_key(self.target.db_name, self.state.generation_id, first, last, unix_secs, codec)
        body = objects.encode_body(raw, codec, key, self.target.cipher)
        try:
            self.target.guard()
            self.target.put_once(key, body, encryption_metadata(self.target.cipher))
            log.info("merged frames %d-%d into %s (%d bytes)", first, last, key, len(body))
        except PreconditionFailed:
            log.info("%s exists already", key)
        except S3Error as exc:
            log.warning("could not upload merged batch %s (%s); restores fetch the small ones", key, exc)


def _chain_tuple(chain: Chain) -> tuple[int, int, int, int]:
    return (chain.salt1, chain.salt2, chain.cksum1, chain.cksum2)


def _runs_of_size(spool: Spool, records: list[Record], chain: Chain, frames: int) -> list[int]:
    """The lengths of the runs from the start of ``records`` that a batch of
    ``frames`` frames, each page once as frames_run writes it, can hold (a
    record that only rewrites pages the run already holds keeps the count)."""
    newest: set[int] = set()
    out: list[int] = []
    for n, rec in enumerate(records, 1):
        raw, _ = spool.frames(rec, chain)  # only the page numbers matter here
        size = frame_size(rec.page_size)
        newest.update(int.from_bytes(raw[i : i + 4], "big") for i in range(0, len(raw), size))
        if sum(1 for p in newest if p <= rec.db_size) == frames:
            out.append(n)
    return out

"""The replicator: ships a database's spool to S3 as batches of WAL frames.

One implementation serves the three ways it runs: a thread behind
``bottomless.connect()``, the ``bottomless-cli replicate`` daemon, and the
process the extension starts for shells. Only the holder of the database's
replicator lock ships; the others wait for it.

Steady state touches S3 only to PUT batches: the replicator knows what it
uploaded (``state.py``), so it never lists, and an idle database costs no
request at all (idleness is seen on the local spool file). Its single-writer
lease (``lease.py``) is renewed only before uploads: an idle holder may let
it lapse, and learns at its next upload whether another writer took over.

Every object is written once (``If-None-Match: *``) and only while this
replicator holds the database's lease, so a second writer (another machine,
a restored copy started beside the original) stops at its first upload with
FencedError instead of mixing its batches into the first one's generation.
With an encryption key, snapshots and batches are encrypted (``crypto.py``)
after compression.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from bottomless import catalog, layout, objects, server_features
from bottomless.config import Config
from bottomless.crypto import Cipher, encryption_metadata
from bottomless.errors import BadCredentials, BottomlessError, NativeError, S3Error
from bottomless.frames import Chain, Meta
from bottomless.generation import new_generation
from bottomless.health import ProblemReporter, alive, describe_stall
from bottomless.lease import FencedError, Lease
from bottomless.lock import ReplicatorLock, is_locked
from bottomless.merging import MergeRun
from bottomless.restore_on_open import forget_restore, restored_from
from bottomless.s3 import PreconditionFailed, S3Store
from bottomless.side_files import adopt
from bottomless.snapshot import DatabaseBusy, ensure_wal, reconcile_spool, take_snapshot
from bottomless.spool import Record, Spool, spool_dir
from bottomless.state import ReplicatorState, load_state, save_state
from bottomless.uploads import upload_file

log = logging.getLogger(__name__)

POLL_SECS = 0.05
ORPHAN_GIVE_UP_SECS = 600
SNAPSHOT_REQUEST = "snapshot.request"
ENCRYPTION_FILE = "encryption.json"  # which key (fingerprint) the current generation uses


class DivergedError(BottomlessError):
    """The bucket moved on without this database: shipping would mix histories."""


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
    raw: bytes | bytearray  # the uncompressed frames, for merging


class Replicator:
    def __init__(self, db_path: str, config: Config | None = None, store: S3Store | None = None) -> None:
        self.db_path = os.path.abspath(db_path)
        self.config = config or Config.from_env()
        self.db_name = self.config.database_id or layout.db_name_for_path(self.db_path)
        self.spool_dir = spool_dir(self.db_path)
        self.store = store or S3Store(self.config.endpoint, self.config.bucket)
        self.cipher: Cipher | None = self.config.cipher()
        # Both rest on conditional writes: without them (the setting that
        # accepts the risk on servers that ignore them) there is no lease.
        self.write_once = self.config.conditional_writes
        self.lease: Lease | None = (
            Lease(self.store, self.db_name, self.db_path, self.config.lease_secs)
            if self.config.lease_secs > 0 and self.write_once
            else None
        )
        self.lock = ReplicatorLock(self.spool_dir)
        self.spool = Spool(self.db_path)
        self.state: ReplicatorState | None = None
        self._pending: _Batch | None = None
        self._merge = MergeRun()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._snapshot_requested = False
        self._newest: uuid.UUID | None = None
        self._stopped = False
        self._last_spool_warning = 0.0
        # A failure retrying cannot fix (diverged history, refused
        # credentials, an invalid bucket): shipping stops and says why.
        self.error: BottomlessError | None = None
        self._health = ProblemReporter(self.spool_dir)

    # ---- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        """Ship in a background thread until stop()."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.run, name=f"bottomless:{self.db_name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ship what is left (within ``timeout``), then stop and release."""
        if self._stopped:
            return
        self._stopped = True
        limit = self.config.shutdown_timeout_secs if timeout is None else timeout
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(limit + 1.0)
            self._thread = None
        else:
            self._final_flush(limit)
            self._release_lease()
        self.lock.release()
        self.spool.close()

    def request_stop(self) -> None:
        """Ask the loop of run() to ship what is left and return (safe from a
        signal handler)."""
        self._stop.set()
        self._wake.set()

    def run(self, exit_when_idle: bool = False, parent_pid: int | None = None) -> None:
        """The shipping loop. With ``exit_when_idle`` it returns once the
        spool is empty and (when given) ``parent_pid`` has exited."""
        try:
            self._run(exit_when_idle, parent_pid)
        finally:
            self._release_lease()

    def _release_lease(self) -> None:
        if self.lease is not None and self.lock.held:
            self.lease.release()

    def _run(self, exit_when_idle: bool, parent_pid: int | None) -> None:
        backoff = 0.0
        first_pending: float | None = None
        failing_since: float | None = None
        while not self._stop.is_set():
            if exit_when_idle and not _alive(parent_pid):
                # The host is gone: finish what is in the spool, then exit;
                # if S3 stays unreachable, give up after a while (the spool
                # keeps everything for the next replicator).
                if not self.has_pending():
                    return
                if failing_since is not None and time.monotonic() - failing_since > ORPHAN_GIVE_UP_SECS:
                    log.error(
                        "S3 unreachable for %ds after the host exited; leaving the rest in the spool",
                        ORPHAN_GIVE_UP_SECS,
                    )
                    return
            if not self.lock.held and _is_new(self.db_path) and not self._wake.is_set():
                # A new, empty database: leave its page size and journal mode
                # to the application until it has written something.
                self._stop.wait(POLL_SECS * 4)
                continue
            if not self.lock.held:
                if not self.lock.acquire(timeout=0.5):
                    if exit_when_idle and not _alive(parent_pid):
                        return  # another replicator ships; ours is not needed
                    continue
                try:
                    self.prepare()
                except (DivergedError, BadCredentials, FencedError) as exc:
                    self._fail(exc)
                    return
                except S3Error as exc:
                    if not exc.transient:
                        self._fail(exc)
                        return
                    backoff = _next_backoff(backoff)
                    failing_since = failing_since or time.monotonic()
                    self._health.report(f"cannot start replicating yet: {exc}")
                    log.warning(
                        "cannot start replicating %s yet (%s); retrying in %.1fs", self.db_name, exc, backoff
                    )
                    self.lock.release()
                    self._stop.wait(backoff)
                    continue
                except DatabaseBusy as exc:
                    # The application holds the database (switching to WAL
                    # needs a moment alone with it): try again shortly.
                    log.info("%s; retrying", exc)
                    self.lock.release()
                    self._stop.wait(0.2)
                    continue
                except BottomlessError as exc:
                    self._fail(exc)
                    return
                except Exception as exc:
                    self._crash("starting", exc)
                    return
                self._health.clear()
            self._check_requests()
            pending = self.has_pending()
            now = time.monotonic()
            if pending and first_pending is None:
                # From the oldest unshipped commit, not from when this loop
                # noticed it: the interval is a promise about commits.
                first_pending = now - self._oldest_pending_age()
            due = first_pending is not None and (
                now - first_pending >= self.config.batch_interval_secs or self._wake.is_set()
            )
            if due or self._snapshot_requested:
                try:
                    self.ship()
                    self._health.clear()
                    backoff = 0.0
                    failing_since = None
                    first_pending = None
                    self._wake.clear()
                except (DivergedError, BadCredentials, FencedError) as exc:
                    self._fail(exc)
                    return
                except S3Error as exc:
                    if not exc.transient:
                        self._fail(exc)
                        return
                    backoff = _next_backoff(backoff)
                    self._health.report(f"shipping failed: {exc}")
                    log.warning(
                        "shipping %s failed (%s); retrying in %.1fs, commits stay in the spool",
                        self.db_name,
                        exc,
                        backoff,
                    )
                    self._warn_if_spool_large()
                    self._stop.wait(backoff)
                    continue
                except DatabaseBusy as exc:
                    # A snapshot could not be tied to the spool yet.
                    log.info("%s; retrying", exc)
                    self._stop.wait(0.2)
                    continue
                except BottomlessError as exc:
                    self._fail(exc)
                    return
                except Exception as exc:
                    self._crash("shipping", exc)
                    return
            elif not pending and exit_when_idle and not _alive(parent_pid):
                return
            elif not pending:
                # flush() with nothing to ship: nothing left to hurry.
                self._wake.clear()
            wait = POLL_SECS
            if first_pending is not None:
                wait = min(wait, max(0.0, first_pending + self.config.batch_interval_secs - time.monotonic()))
            self._wake.wait(wait)
        self._final_flush(self.config.shutdown_timeout_secs)

    def _crash(self, doing: str, exc: Exception) -> None:
        """A bug, not a condition: say so loudly instead of dying silently."""
        log.exception("replicator of %s failed while %s", self.db_name, doing)
        self._fail(BottomlessError(f"replicator failed unexpectedly while {doing}: {exc!r}"))

    def _fail(self, exc: BottomlessError) -> None:
        self.error = exc
        log.error("replication of %s stopped: %s", self.db_path, exc)
        self._health.report(str(exc), stopped=True)
        self._release_lease()
        self.lock.release()

    def _final_flush(self, limit: float) -> None:
        if self.error is not None:
            return
        if not os.path.isdir(self.spool_dir):
            return  # the database and its spool are gone: nothing to ship
        if not self.lock.held and not self.lock.acquire(timeout=0):
            return
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                if self.state is None:
                    self.prepare()
                self.ship()
                return
            except (DivergedError, FencedError) as exc:
                self.error = exc
                log.error("replication of %s stopped: %s", self.db_path, exc)
                return
            except S3Error as exc:
                if not exc.transient:
                    self.error = exc
                    log.error("replication of %s stopped: %s", self.db_path, exc)
                    return
                log.warning("could not ship %s at shutdown (%s); the spool keeps it for next time", self.db_name, exc)
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    # ---- generations ---------------------------------------------------------
    def prepare(self) -> None:
        """Decide where shipping continues: the recorded generation, or a new one."""
        self.store.ensure_bucket()
        self._check_server()
        self._guard()
        ensure_wal(self.db_path)
        reconcile_spool(self.db_path)
        state = load_state(self.spool_dir)
        if state is not None and (state.db_name, state.bucket, state.endpoint) != (
            self.db_name,
            self.config.bucket,
            self.config.endpoint,
        ):
            log.info("replicator state is for another destination; starting a new generation")
            state = None
        generations = catalog.list_generations(self.store, self.db_name)
        newest = generations[0] if generations else None
        if state is not None and newest is not None and newest != state.generation_id:
            raise DivergedError(
                f"the newest generation of {self.db_name!r} in the bucket is {newest}, but this database "
                f"continues {state.generation}: another writer or a restore elsewhere moved on. Restore this "
                "database (bottomless-cli restore) or start a new generation from it (bottomless-cli snapshot)."
            )
        if state is not None and newest is not None and self._generation_key_id(state.generation) != self._key_id():
            # Encryption was turned on or off, or the key changed: the rest
            # of the history goes into a new generation with a new snapshot
            # (which holds what the old one had not received yet).
            log.info("the encryption key of %s changed; starting a new generation", self.db_name)
            self.state = state
            self.new_generation(parent=state.generation_id, finish_current=False)
            return
        if state is not None and newest is not None:
            self.state = state
            self._fast_forward()
            log.info(
                "continuing generation %s of %s at frame %d", state.generation, self.db_name, self.state.next_frame
            )
            return
        restored = restored_from(self.db_path)
        if restored is not None:
            # A restore put this file in place on purpose (on open, or with
            # bottomless-cli restore, maybe to an earlier point in time):
            # continue from it in a new generation.
            self.new_generation(parent=uuid.UUID(restored))
            forget_restore(self.db_path)
            return
        if state is None and newest is not None and not self._local_is_newer(newest):
            raise DivergedError(
                f"the bucket already holds {self.db_name!r} (newest generation {newest}) and this database was "
                "never replicated from here or is not newer: restore it (bottomless-cli restore), or start a new "
                "generation from it on purpose (bottomless-cli snapshot)."
            )
        self.new_generation(parent=state.generation_id if state else newest)

    def prepare_for_snapshot(self) -> None:
        """Before an explicit new generation: keep shipping into the recorded
        generation only while it is still the bucket's newest."""
        self.store.ensure_bucket()
        self._check_server()
        self._guard()
        ensure_wal(self.db_path)
        state = load_state(self.spool_dir)
        generations = catalog.list_generations(self.store, self.db_name)
        self._newest = generations[0] if generations else None
        if (
            state is not None
            and state.db_name == self.db_name
            and state.generation_id == self._newest
            and self._generation_key_id(state.generation) == self._key_id()
        ):
            self.state = state

    def parent_generation(self) -> uuid.UUID | None:
        return self.state.generation_id if self.state is not None else self._newest

    def _local_is_newer(self, newest: uuid.UUID) -> bool:
        remote = objects.read_change_counter(self.store, self.db_name, newest)
        with open(self.db_path, "rb") as f:
            head = f.read(28)
        if remote is None or len(head) < 28:
            return False
        return int.from_bytes(head[24:28], "big") > int.from_bytes(remote, "big")

    def new_generation(self, parent: uuid.UUID | None, finish_current: bool = True) -> ReplicatorState:
        """Snapshot the database into a new generation and ship from there."""
        if self.state is not None and finish_current:
            # Whatever the current generation can still take goes there first.
            self.ship(records_only=True)
        self._merge.clear()
        self._guard()
        snap = take_snapshot(self.db_path, self.spool)
        try:
            generation = new_generation()
            if self.lease is not None:
                self.lease.generation = str(generation)
            meta = Meta.new(snap.page_size)
            codec = self.config.compression
            try:
                size = upload_file(
                    self.store, layout.snapshot_key(self.db_name, generation, codec),
                    snap.path,
                    codec,
                    self.cipher,
                    self.write_once,
                )
                if parent is not None:
                    self._put_once(layout.dep_key(self.db_name, generation), layout.encode_dep(parent))
                self._put_once(layout.change_counter_key(self.db_name, generation), snap.change_counter)
                # .meta last: a generation without it was never finished.
                self._put_once(layout.meta_key(self.db_name, generation), meta.encode())
            except PreconditionFailed as exc:
                raise FencedError(f"{exc}; this replicator stops shipping") from None
        finally:
            os.unlink(snap.path)
        self._record_key_id(str(generation))
        chain = meta.chain()
        state = ReplicatorState(
            db_name=self.db_name,
            generation=str(generation),
            page_size=snap.page_size,
            next_frame=1,
            chain=(chain.salt1, chain.salt2, chain.cksum1, chain.cksum2),
            shipped_seq=snap.seq,
            frames_since_snapshot=0,
            bucket=self.config.bucket,
            endpoint=self.config.endpoint,
        )
        save_state(self.spool_dir, state)
        self.state = state
        self._ack_through(snap.seq)
        self._snapshot_requested = False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.spool_dir, SNAPSHOT_REQUEST))
        log.info(
            "new generation %s of %s: snapshot of %d bytes (%s), spool seq %d%s",
            generation,
            self.db_name,
            size,
            codec,
            snap.seq,
            f", parent {parent}" if parent else "",
        )
        if self.cipher is not None:
            log.info("generation %s is encrypted (aes-256-gcm, key id %s)", generation, self.cipher.key_id)
        return state

    # ---- single writer, encryption ------------------------------------------------
    def _check_server(self) -> None:
        """Once per endpoint and bucket (remembered beside the spool): does
        the server honour what this configuration relies on?"""
        os.makedirs(self.spool_dir, exist_ok=True)
        server_features.check(
            self.store, self.spool_dir, self.db_name, self.write_once, lease=self.lease is not None
        )

    def _guard(self) -> None:
        """Before writing to S3: hold the lease (FencedError when another writer does)."""
        if self.lease is not None:
            self.lease.ensure()

    def _put_once(self, key: str, body: bytes, metadata: dict[str, str] | None = None) -> None:
        self.store.put(key, body, metadata=metadata, if_none_match=self.write_once)

    def _key_id(self) -> str | None:
        return self.cipher.key_id if self.cipher is not None else None

    def _generation_key_id(self, generation: str) -> str | None:
        """Fingerprint of the key the generation was started with (None: not encrypted)."""
        try:
            raw = json.loads(open(os.path.join(self.spool_dir, ENCRYPTION_FILE)).read())
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(raw, dict) or raw.get("generation") != generation:
            return None
        key_id = raw.get("key_id")
        return str(key_id) if key_id else None

    def _record_key_id(self, generation: str) -> None:
        path = os.path.join(self.spool_dir, ENCRYPTION_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"generation": generation, "key_id": self._key_id()}, f)
        adopt(tmp, self.spool_dir)
        os.replace(tmp, path)

    def _check_requests(self) -> None:
        """``bottomless-cli snapshot`` asks a running replicator by file."""
        if os.path.exists(os.path.join(self.spool_dir, SNAPSHOT_REQUEST)):
            self._snapshot_requested = True

    def _fast_forward(self) -> None:
        """Skip records whose frames reached S3 before the state recorded them
        (a crash between PUT and save)."""
        assert self.state is not None
        gen = catalog.load_generation(self.store, self.db_name, self.state.generation_id)
        target = gen.last_frame
        state = self.state
        if target < state.next_frame:
            return
        chain = state.chain_state()
        frame = state.next_frame
        last: Record | None = None
        for rec in self.spool.records():
            if rec.seq <= state.shipped_seq:
                continue
            if frame > target:
                break
            _, chain = self.spool.frames(rec, chain)
            frame += rec.n_pages
            last = rec
        if last is None or frame != target + 1:
            raise DivergedError(
                f"generation {state.generation} ends at frame {target}, which the local spool cannot account "
                "for: start a new generation (bottomless-cli snapshot)"
            )
        self.state = replace(
            state,
            next_frame=frame,
            chain=(chain.salt1, chain.salt2, chain.cksum1, chain.cksum2),
            shipped_seq=last.seq,
            frames_since_snapshot=state.frames_since_snapshot + frame - state.next_frame,
        )
        save_state(self.spool_dir, self.state)
        self.spool.ack(last)
        log.info("generation %s already held frames up to %d; resumed after them", state.generation, target)

    # ---- shipping ------------------------------------------------------------
    def _oldest_pending_age(self) -> float:
        """Seconds since the oldest unshipped record was committed (0 when
        unknown)."""
        if self._pending is not None or self.spool.replaced():
            return 0.0
        rec = self.spool.next(self.spool.start())
        if rec is None:
            return 0.0
        return min(max(0.0, time.time() - rec.unix_ms / 1000), self.config.batch_interval_secs)

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

    def ship(self, records_only: bool = False) -> int:
        """Upload everything in the spool now; returns transactions shipped."""
        if self.spool.replaced():
            # Its acknowledgements would land in the new spool's ack file.
            log.warning("the spool of %s was replaced (restored?); this replicator ships no more", self.db_path)
            return 0
        if self.state is None:
            self.prepare()
        assert self.state is not None
        if self._pending is not None:
            self._put(self._pending)
        try:
            return self._ship_records(records_only)
        except NativeError as exc:
            if not exc.corrupt:
                raise
            # Pages of a transaction are gone (dropped at the side folder's
            # limit, or the WAL was reset behind the extension's back): what
            # S3 holds cannot be continued, so start over from a snapshot.
            log.error("%s; starting a new generation of %s", exc.message, self.db_name)
            if not records_only:
                self.new_generation(parent=self.state.generation_id, finish_current=False)
            return 0

    def _ship_records(self, records_only: bool) -> int:
        assert self.state is not None
        shipped = 0
        batch: list[Record] = []
        frames = 0
        gap: Record | None = None
        for rec in self.spool.records():
            if rec.seq <= self.state.shipped_seq:
                self.spool.ack(rec)
                continue
            if rec.gap_before:
                gap = rec
                break
            expected = self.state.shipped_seq + len(batch) + 1
            if rec.seq != expected:
                raise BottomlessError(f"spool of {self.db_path} skips from seq {expected - 1} to {rec.seq}")
            if rec.page_size != self.state.page_size:
                break  # only a new generation can change the page size
            batch.append(rec)
            frames += rec.n_pages
            if frames >= self.config.batch_max_frames:
                shipped += self._ship_batch(batch)
                batch, frames = [], 0
        if batch:
            shipped += self._ship_batch(batch)
        if gap is not None:
            if records_only:
                return shipped
            # What S3 holds cannot continue across the hole: a snapshot
            # holds everything up to now, gap included.
            log.error(
                "transactions of %s before spool seq %d were not captured (see the application's log: the side "
                "folder was not writable or full, or passed LIBSQL_BOTTOMLESS_SPOOL_MAX_BYTES); starting a new "
                "generation from a snapshot",
                self.db_path,
                gap.seq,
            )
            self.new_generation(parent=self.state.generation_id, finish_current=False)
            return shipped
        if not records_only and (
            self._snapshot_requested
            or self.state.frames_since_snapshot >= self.config.snapshot_frames
            or self._page_size_changed()
        ):
            self.new_generation(parent=self.state.generation_id)
        return shipped

    def _page_size_changed(self) -> bool:
        assert self.state is not None
        rec = next(iter(self.spool.records()), None)
        return rec is not None and rec.seq > self.state.shipped_seq and rec.page_size != self.state.page_size

    def _ship_batch(self, records: list[Record]) -> int:
        assert self.state is not None
        state = self.state
        raw, chain = self.spool.frames_run(records, state.chain_state())
        frames = sum(rec.n_pages for rec in records)
        first, last = state.next_frame, state.next_frame + frames - 1
        codec = self.config.compression
        key = layout.batch_key(self.db_name, state.generation_id, first, last, records[-1].unix_ms // 1000, codec)
        body = objects.encode_body(raw, codec, key, self.cipher)
        new_state = replace(
            state,
            next_frame=last + 1,
            chain=_chain_tuple(chain),
            shipped_seq=records[-1].seq,
            frames_since_snapshot=state.frames_since_snapshot + frames,
        )
        batch = _Batch(key, body, records[-1], new_state, len(records), frames, first, raw)
        self._pending = batch
        self._put(batch)
        return len(records)

    def _put(self, batch: _Batch) -> None:
        self._guard()
        try:
            self._put_once(batch.key, batch.body, encryption_metadata(self.cipher))
        except PreconditionFailed as exc:
            raise FencedError(f"{exc}; this replicator stops shipping") from None
        save_state(self.spool_dir, batch.state)
        self.state = batch.state
        self._pending = None
        self.spool.ack(batch.last)
        log.info(
            "batch %s: %d transaction(s), %d frame(s), %d bytes; requests so far %s",
            batch.key,
            batch.records,
            batch.frames,
            len(batch.body),
            self.store.stats.snapshot(),
        )
        unix_secs = batch.last.unix_ms // 1000
        if self._merge.add(batch.first, batch.state.next_frame - 1, unix_secs, batch.raw):
            self._upload_merged()

    def _upload_merged(self) -> None:
        """One object for the run of small batches just shipped (an extra the
        restore prefers; losing it loses nothing, so failures only log)."""
        assert self.state is not None
        first, last, unix_secs, raw = self._merge.take()
        codec = self.config.compression
        # Named so libSQL's key parser skips it (its replay would take the
        # overlap for a gap and stop there); this project's reader prefers it.
        key = layout.merged_batch_key(self.db_name, self.state.generation_id, first, last, unix_secs, codec)
        body = objects.encode_body(raw, codec, key, self.cipher)
        try:
            self._guard()
            self._put_once(key, body, encryption_metadata(self.cipher))
            log.info("merged frames %d-%d into %s (%d bytes)", first, last, key, len(body))
        except PreconditionFailed:
            log.info("%s exists already", key)
        except S3Error as exc:
            log.warning("could not upload merged batch %s (%s); restores fetch the small ones", key, exc)

    def _ack_through(self, seq: int) -> None:
        last: Record | None = None
        for rec in self.spool.records():
            if rec.seq > seq:
                break
            last = rec
        if last is not None:
            self.spool.ack(last)

    def _warn_if_spool_large(self) -> None:
        stats = self.spool.stats()
        now = time.monotonic()
        if stats.bytes > self.config.spool_warn_bytes and now - self._last_spool_warning > 60:
            self._last_spool_warning = now
            log.warning(
                "the spool of %s holds %d unshipped bytes (%d transactions); S3 is not keeping up",
                self.db_path,
                stats.bytes,
                stats.records,
            )

    # ---- durability ------------------------------------------------------------
    def flush(self, timeout: float = 30.0) -> None:
        """Ship now and return once every commit made before the call is in S3."""
        if self.error is not None:
            raise self.error
        deadline = time.monotonic() + timeout
        self._wake.set()
        # Until the first generation exists, commits may predate capture (a
        # new database before WAL mode): durable means "in its snapshot".
        while self.state is None and self._thread is not None:
            if self.error is not None:
                raise self.error
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.db_path} has no generation in S3 yet after {timeout:.0f}s")
            time.sleep(0.01)
        wait_durable(self.db_path, timeout=max(0.0, deadline - time.monotonic()), failed=lambda: self.error)


def wait_durable(
    db_path: str,
    seq: int | None = None,
    timeout: float = 30.0,
    failed: Callable[[], BottomlessError | None] = lambda: None,
) -> None:
    """Return once every transaction committed before the call (or up to
    ``seq``) is in S3, whichever process ships it; TimeoutError otherwise."""
    with Spool(db_path) as spool:
        target = spool.stats().last_seq if seq is None else seq
        deadline = time.monotonic() + timeout
        while spool.stats().acked_seq < target:
            if (error := failed()) is not None:
                raise error
            if time.monotonic() >= deadline:
                folder = spool_dir(db_path)
                raise TimeoutError(
                    f"commits of {db_path} up to seq {target} are not in S3 after {timeout:.0f}s: "
                    + describe_stall(folder, is_locked(folder))
                )
            time.sleep(0.02)


def _chain_tuple(chain: Chain) -> tuple[int, int, int, int]:
    return (chain.salt1, chain.salt2, chain.cksum1, chain.cksum2)


def _next_backoff(previous: float) -> float:
    import random

    return min(30.0, max(0.2, previous * 2)) * random.uniform(0.5, 1.0)


def _is_new(db_path: str) -> bool:
    try:
        return os.path.getsize(db_path) == 0
    except FileNotFoundError:
        return True


def _alive(pid: int | None) -> bool:
    return pid is not None and alive(pid)

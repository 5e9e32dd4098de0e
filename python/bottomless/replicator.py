"""The replicator of one database: its loop and error policy, on top of the
modules that do the work.

One implementation serves the three ways it runs: a thread behind
``bottomless.connect()``, the ``bottomless-cli replicate`` daemon, and the
process the extension starts for shells. Only the holder of the database's
replicator lock ships; the others wait for it.

The loop is built on ``step()``: one round of work that returns, with how
long to wait, where the loop would otherwise sleep. A process that drives
many databases schedules their ``step()``s on its own threads.

Steady state touches S3 only to PUT batches: the replicator knows what it
uploaded (``state.py``), so it never lists, and an idle database costs no
request at all (idleness is seen on the local spool file). Its single-writer
lease (``lease.py``) is renewed only before uploads: an idle holder may let
it lapse, and learns at its next upload whether another writer took over.

Every object is written once (``If-None-Match: *``) and only while this
replicator holds the database's lease, so a second writer (another machine,
a restored copy started beside the original) stops at its first upload with
FencedError instead of mixing its batches into the first one's generation.

Where the work is done:
    starting.py           a writable destination, and the facts for the decision
    start_decision.py     where shipping continues (pure)
    generation_start.py   a new generation: snapshot and small objects
    shipping.py           batches and merged objects into the current generation
    key_ids.py            which key each generation uses
    snapshot_request.py   requests by file from other processes
    error_policy.py       retry, wait or stop, per failure
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from bottomless.batch_clock import BatchClock, phase_of
from bottomless.config import Config
from bottomless.error_policy import Verdict, classify, next_backoff
from bottomless.errors import BottomlessError, DivergedError, S3Error
from bottomless.generation_start import start_generation
from bottomless.health import ProblemReporter, alive, describe_stall
from bottomless.lease import FencedError, Lease
from bottomless.lock import is_locked
from bottomless.restore_marker import forget_restore
from bottomless.s3 import S3Store
from bottomless.shipping import Restart, Shipper
from bottomless.side_files import PAGES, SideFolder
from bottomless.snapshot import reconcile_spool
from bottomless.snapshot_request import clear_snapshot_request, snapshot_requested
from bottomless.spool import Spool
from bottomless.start_decision import Start, decide, snapshot_continues
from bottomless.starting import gather_facts, local_is_newer, ready_to_write
from bottomless.state import ReplicatorState
from bottomless.target import Target

log = logging.getLogger(__name__)

POLL_SECS = 0.05
# A writer that outruns the batch interval would make SQLite reuse the WAL
# before its frames are shipped. Capture holds the WAL while it holds
# unshipped commits (wal_hold.zig), up to 64 MiB, and past that copies
# them into the side folder (`pages`): at 10,000 small transactions a second
# about 200 MB in one 1 s interval, near the folder's default cap. So while
# a batch is pending the loop looks every EARLY_CHECK_SECS (one local read,
# no request) and ships as soon as the unshipped frames or their copies pass
# SHIP_EARLY_BYTES, not at the next grid point: the WAL stays well inside
# the hold, and nothing is copied. A writer slower than that keeps its
# batches on the grid. The fleet schedules on ``due_in`` alone and does not
# look early.
EARLY_CHECK_SECS = 0.1
SHIP_EARLY_BYTES = 16 << 20
LOCK_POLL_SECS = 0.1
BUSY_RETRY_SECS = 0.2
ORPHAN_GIVE_UP_SECS = 600

__all__ = ["DivergedError", "Replicator", "Step", "wait_durable"]


@dataclass(frozen=True)
class Step:
    """What one round of work asks of whoever drives the replicator."""

    done: bool = False  # stop driving it: its work is over, or it stopped on an error (``error``)
    wait: float = POLL_SECS  # seconds until the next round
    wakeable: bool = True  # flush() (a commit to hurry) may cut the wait short; stop always may
    # Nothing to do until the spool (or the lock) changes: a driver that is
    # told of spool writes (fleet.py) may wait for that instead of ``wait``.
    idle: bool = False
    # Seconds until the pending batch is due, when one is (the wait is
    # then for the batch, not a retry or a lock).
    due_in: float | None = None


_DONE = Step(done=True, wait=0.0)


class Replicator:
    def __init__(self, db_path: str, config: Config | None = None, store: S3Store | None = None) -> None:
        self.config = config or Config.from_env()
        self.target = Target.open(db_path, self.config, store)
        self.lock = self.target.lock
        self.db_path = self.target.db_path
        self.db_name = self.target.db_name
        self.side = self.target.side
        self.spool_dir = self.side.path
        self.shipper = Shipper(self.target)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._snapshot_requested = False
        self._newest: uuid.UUID | None = None
        self._stopped = False
        self._last_spool_warning = 0.0
        self._backoff = 0.0
        self._first_pending: float | None = None
        interval = self.config.batch_interval_secs
        self._clock = BatchClock(interval, phase_of(self.db_name, interval))
        self._failing_since: float | None = None
        # A failure retrying cannot fix (diverged history, refused
        # credentials, an invalid bucket): shipping stops and says why.
        self.error: BottomlessError | None = None
        self._health = ProblemReporter(self.spool_dir)
        # Every failure step() met (retried or not), for a driver's metrics.
        self.failures = 0
        self.last_failure: Exception | None = None

    @property
    def store(self) -> S3Store:
        return self.target.store

    @property
    def spool(self) -> Spool:
        return self.target.spool

    @property
    def lease(self) -> Lease | None:
        return self.target.lease

    @property
    def state(self) -> ReplicatorState | None:
        """Where the current generation ends (None before the first start)."""
        return self.shipper.state

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
        self.request_stop()
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

    def acquire(self, timeout: float = 0.0) -> bool:
        """Become the database's shipping replicator (its lock), waiting up
        to ``timeout`` seconds; False when another one ships it."""
        return self.lock.acquire(timeout=timeout)

    def release(self) -> None:
        """Let another replicator ship the database."""
        self.lock.release()

    def run(self, exit_when_idle: bool = False, parent_pid: int | None = None) -> None:
        """The shipping loop: step() until stopped. With ``exit_when_idle``
        it returns once the spool is empty and (when given) ``parent_pid``
        has exited."""
        try:
            while not self._stop.is_set():
                step = self.step(exit_when_idle, parent_pid)
                if step.done:
                    return
                (self._wake if step.wakeable else self._stop).wait(step.wait)
            self._final_flush(self.config.shutdown_timeout_secs)
        finally:
            self._release_lease()

    def step(self, exit_when_idle: bool = False, parent_pid: int | None = None) -> Step:
        """One round of work: take the lock and start when needed, then ship
        what is due. Returns when it would otherwise wait, saying how long."""
        orphan = exit_when_idle and not _alive(parent_pid)
        if orphan:
            # The host is gone: finish what is in the spool, then exit; if
            # S3 stays unreachable, give up after a while (the spool keeps
            # everything for the next replicator).
            if not self.has_pending():
                return _DONE
            if self._failing_since is not None and time.monotonic() - self._failing_since > ORPHAN_GIVE_UP_SECS:
                log.error(
                    "S3 unreachable for %ds after the host exited; leaving the rest in the spool",
                    ORPHAN_GIVE_UP_SECS,
                )
                return _DONE
        if not self.lock.held:
            if _is_new(self.db_path) and not self._wake.is_set():
                # A new, empty database: leave its page size and journal mode
                # to the application until it has written something.
                return Step(wait=POLL_SECS * 4, wakeable=False, idle=True)
            if not self.lock.acquire(timeout=0):
                if exit_when_idle and not _alive(parent_pid):
                    return _DONE  # another replicator ships; ours is not needed
                return Step(wait=LOCK_POLL_SECS, wakeable=False, idle=True)
            try:
                self.prepare()
            except Exception as exc:
                return self._failed("starting", exc)
            self._health.clear()
        self._check_requests()
        pending = self.has_pending()
        now = time.monotonic()
        if pending and self._first_pending is None:
            # From the oldest unshipped commit, not from when this round
            # noticed it: the interval is a promise about commits.
            self._first_pending = now - self.shipper.oldest_pending_age(self.config.batch_interval_secs)
        on_time = self._first_pending is not None and (
            now >= self._clock.due(self._first_pending) or self._wake.is_set()
        )
        early = pending and not on_time and self._backlog_is_large()
        if on_time or early or self._snapshot_requested:
            try:
                self.ship()
            except Exception as exc:
                return self._failed("shipping", exc)
            if self._first_pending is not None and not early:
                # An early batch takes no grid slot: the next commit's
                # promise (the next grid point) stays where it was.
                self._clock.shipped(self._first_pending, time.monotonic() - now)
            self._health.clear()
            self._backoff = 0.0
            self._failing_since = None
            self._first_pending = None
            self._wake.clear()
        elif not pending and exit_when_idle and not _alive(parent_pid):
            return _DONE
        elif not pending:
            # flush() with nothing to ship: nothing left to hurry.
            self._wake.clear()
        if self._first_pending is not None:
            # Asleep until the batch is due (looking at the backlog meanwhile):
            # flush() and stop wake it sooner.
            due_in = max(0.0, self._clock.due(self._first_pending) - time.monotonic())
            return Step(wait=min(due_in, EARLY_CHECK_SECS), due_in=due_in)
        return Step(idle=True)

    def _backlog_is_large(self) -> bool:
        """Whether the unshipped frames, in the WAL or copied out of it,
        pass SHIP_EARLY_BYTES."""
        try:
            copies = self.side.file(PAGES).stat().st_blocks * 512
        except FileNotFoundError:
            copies = 0
        return copies >= SHIP_EARLY_BYTES or self.shipper.backlog_at_least(SHIP_EARLY_BYTES)

    # ---- error policy ----------------------------------------------------------
    def _failed(self, doing: str, exc: Exception) -> Step:
        self.failures += 1
        self.last_failure = exc
        starting = doing == "starting"
        verdict = classify(exc, starting)
        if verdict is Verdict.CRASH:
            # A bug, not a condition: say so loudly instead of dying silently.
            log.error("replicator of %s failed while %s", self.db_name, doing, exc_info=exc)
            self._fail(BottomlessError(f"replicator failed unexpectedly while {doing}: {exc!r}"))
            return _DONE
        if verdict is Verdict.STOP:
            assert isinstance(exc, BottomlessError)
            self._fail(exc)
            return _DONE
        if verdict is Verdict.BUSY:
            log.info("%s; retrying", exc)
            if starting:
                self.lock.release()
            return Step(wait=BUSY_RETRY_SECS, wakeable=False)
        self._backoff = next_backoff(self._backoff)
        if starting:
            self._failing_since = self._failing_since or time.monotonic()
            self._health.report(f"cannot start replicating yet: {exc}")
            log.warning("cannot start replicating %s yet (%s); retrying in %.1fs", self.db_name, exc, self._backoff)
            self.lock.release()
        else:
            self._health.report(f"shipping failed: {exc}")
            log.warning(
                "shipping %s failed (%s); retrying in %.1fs, commits stay in the spool",
                self.db_name,
                exc,
                self._backoff,
            )
            self._warn_if_spool_large()
        return Step(wait=self._backoff, wakeable=False)

    def _fail(self, exc: BottomlessError) -> None:
        self.error = exc
        log.error("replication of %s stopped: %s", self.db_path, exc)
        self._health.report(str(exc), stopped=True)
        self._release_lease()
        self.lock.release()

    def _release_lease(self) -> None:
        if self.lease is not None and self.lock.held:
            self.lease.release()

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

    # ---- starting ----------------------------------------------------------------
    def prepare(self) -> None:
        """Decide where shipping continues: the recorded generation, or a new one."""
        ready_to_write(self.target)
        reconcile_spool(self.db_path)
        facts = gather_facts(self.target)
        decision = decide(facts)
        if decision.outcome is Start.COMPARE_CHANGE_COUNTER:
            assert facts.newest is not None
            decision = decide(replace(facts, local_is_newer=local_is_newer(self.target, facts.newest)))
        if decision.note:
            log.info("%s", decision.note)
        if decision.outcome is Start.DIVERGED:
            raise DivergedError(decision.reason)
        if decision.outcome is Start.CONTINUE:
            assert decision.state is not None
            self.shipper.state = decision.state
            self.shipper.fast_forward()
            log.info(
                "continuing generation %s of %s at frame %d",
                decision.state.generation,
                self.db_name,
                self.shipper.state.next_frame,
            )
            return
        if decision.outcome is Start.NEW_KEY_CHANGED:
            self.shipper.state = decision.state
            self.new_generation(parent=decision.parent, finish_current=False)
            return
        self.new_generation(parent=decision.parent)
        if decision.outcome is Start.NEW_AFTER_RESTORE:
            forget_restore(self.db_path)

    def prepare_for_snapshot(self) -> None:
        """Before an explicit new generation: keep shipping into the recorded
        generation only while it is still the bucket's newest."""
        ready_to_write(self.target)
        facts = gather_facts(self.target)
        self._newest = facts.newest
        if snapshot_continues(facts):
            self.shipper.state = facts.state

    def parent_generation(self) -> uuid.UUID | None:
        return self.state.generation_id if self.state is not None else self._newest

    def start_new_generation(self) -> ReplicatorState:
        """``bottomless-cli snapshot`` while holding the lock (acquire()):
        a new generation now, continuing the current one."""
        self.prepare_for_snapshot()
        return self.new_generation(parent=self.parent_generation())

    def new_generation(self, parent: uuid.UUID | None, finish_current: bool = True) -> ReplicatorState:
        """Snapshot the database into a new generation and ship from there."""
        if self.state is not None and finish_current:
            # Whatever the current generation can still take goes there first.
            self.ship(records_only=True)
        self.shipper.forget_merge_run()
        state = start_generation(self.target, parent)
        self.shipper.begin(state)
        self._snapshot_requested = False
        clear_snapshot_request(self.side)
        return state

    # ---- requests, shipping ----------------------------------------------------------
    def _check_requests(self) -> None:
        """``bottomless-cli snapshot`` asks a running replicator by file."""
        if snapshot_requested(self.side):
            self._snapshot_requested = True

    def has_pending(self) -> bool:
        """Cheap local check: is there a record past what S3 holds?"""
        return self.shipper.has_pending()

    def ship(self, records_only: bool = False) -> int:
        """Upload everything in the spool now; returns transactions shipped.
        With ``records_only``, into the current generation only (never
        starting another)."""
        if self.spool.replaced():
            # Its acknowledgements would land in the new spool's ack file.
            log.warning("the spool of %s was replaced (restored?); this replicator ships no more", self.db_path)
            return 0
        if self.state is None:
            self.prepare()
        assert self.state is not None
        result = self.shipper.ship(self._snapshot_requested and not records_only)
        restart = result.restart
        if restart is Restart.PAGES_LOST:
            log.error("%s; starting a new generation of %s", result.reason, self.db_name)
        if restart is None or records_only:
            return result.shipped
        if restart is Restart.GAP:
            log.error("%s; starting a new generation from a snapshot", result.reason)
        self.new_generation(parent=self.state.generation_id, finish_current=restart.finish_current)
        return result.shipped

    def sleep_on_bell(self) -> bool:
        """Before a driver sleeps on filesystem notifications: arm the side
        folder's bell (the next commit writes it; a record written through
        capture's mapping is not reported), then look once more. True when
        something came in meanwhile: do not sleep."""
        try:
            self.spool.native.bell_arm(self.db_path)
        except BottomlessError as exc:  # the driver's periodic recheck still comes
            log.debug("cannot arm the bell of %s: %s", self.db_path, exc)
        return self.has_pending() or snapshot_requested(self.side)

    def pending_age(self) -> float:
        """Seconds since the oldest commit not yet in S3 (0 when none is
        known to be waiting): cheap, no spool read, safe from any thread."""
        first = self._first_pending
        return 0.0 if first is None else max(0.0, time.monotonic() - first)

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
                folder = SideFolder.of(db_path).path
                raise TimeoutError(
                    f"commits of {db_path} up to seq {target} are not in S3 after {timeout:.0f}s: "
                    + describe_stall(folder, is_locked(folder))
                )
            time.sleep(0.02)


def _is_new(db_path: str) -> bool:
    try:
        return os.path.getsize(db_path) == 0
    except FileNotFoundError:
        return True


def _alive(pid: int | None) -> bool:
    return pid is not None and alive(pid)

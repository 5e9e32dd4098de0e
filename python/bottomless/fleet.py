"""Many databases in one process (``bottomless-cli replicate --dir/--config``).

Each database has its own ``Replicator``, the same one that serves
``bottomless.connect()`` and ``replicate -d``; this module only schedules
their ``step()``s on a bounded pool of threads. Nothing here polls a
database: a round is due when its batch is due, when its retry backoff
ends, or when the kernel says its spool was written (fleet_watch.py); an
idle database is looked at again only every IDLE_RECHECK_SECS, in case a
notification was lost. One S3 store (one boto3 client, one connection
pool) serves every database on the same endpoint and bucket.

A database that fails is its own problem: its replicator reports it (log
line, ``replicator.problem`` in its side folder, the errors metric) and
either retries with backoff (step() says when) or stops; a stopped one is
parked and tried afresh after PARK_RETRY_SECS. The others never wait for
it: S3 retries inside a round are bounded (FLEET_RETRY), and the long
waits are the scheduler's, not a thread's.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from bottomless import log_context
from bottomless.errors import BottomlessError
from bottomless.fleet_metrics import RoundAttribution
from bottomless.fleet_sources import Plan, Sources, Wanted
from bottomless.fleet_watch import Watcher
from bottomless.metrics import DatabaseMetrics, Metrics
from bottomless.replicator import Replicator, Step
from bottomless.s3 import RetryPolicy, S3Store

log = logging.getLogger(__name__)

DEFAULT_THREADS = 8
IDLE_RECHECK_SECS = 120.0  # an idle, notified database: in case a notification was lost
LOCKED_RECHECK_SECS = 5.0  # another process ships it (or it is new and empty)
UNWATCHED_RECHECK_SECS = 1.0  # no notifications on this system: the timer is all there is
RESCAN_SECS = 60.0  # the folders, even with notifications (which say when they change)
UNWATCHED_RESCAN_SECS = 2.0
RESCAN_SETTLE_SECS = 0.2  # a burst of folder events is one rescan
# The scheduler never sleeps longer than this, a bound in case a wake-up is
# ever missed. Signals cannot cause that: run_until_signalled() keeps the
# scheduler off the main thread, where their handlers run.
SCHEDULER_MAX_SLEEP_SECS = 60.0
PARK_RETRY_SECS = 300.0
# One round may retry a failed request only briefly: a longer outage is the
# replicator's backoff, in the scheduler, so no thread sleeps through it.
FLEET_RETRY = RetryPolicy(attempts=2, base_delay=0.1, max_delay=0.5)


@dataclass(eq=False)
class Member:
    """One database of the fleet and where its scheduling stands."""

    wanted: Wanted
    rep: Replicator | None = None
    metrics: DatabaseMetrics | None = None
    due: float = 0.0  # monotonic; when its next round runs
    running: bool = False
    dirty: bool = False  # its spool changed while a round ran
    idle: bool = False  # waiting for its spool to change (a notification runs it early)
    gone: bool = False
    failures_seen: int = 0
    unshipped: int = 0
    error: str | None = None  # why it is parked

    @property
    def path(self) -> str:
        return self.wanted.path


@dataclass
class Fleet:
    sources: Sources
    metrics: Metrics = field(default_factory=Metrics)
    threads: int = DEFAULT_THREADS
    _members: dict[str, Member] = field(default_factory=dict)
    _skipped: dict[str, str] = field(default_factory=dict)
    _stores: dict[tuple[str, str], S3Store] = field(default_factory=dict)
    _heap: list[tuple[float, int, Member]] = field(default_factory=list)
    _counter: itertools.count[int] = field(default_factory=itertools.count)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _stopping: bool = False
    _rescan_at: float = 0.0
    _reload: Callable[[], Sources] | None = None
    _reload_requested: bool = False
    # When the waiting scheduler looks at the heap next (-inf: it is not
    # waiting, so it looks before it waits): a round due later needs no
    # wake-up, and most rounds end by scheduling the next one later.
    _wake_at: float = float("-inf")

    def __post_init__(self) -> None:
        self._attribution = RoundAttribution()
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="bottomless-fleet")
        self._watch = Watcher(self._spool_written, self._folder_changed, self._overflow)
        self._coverage = self.sources.coverage(os.getpid())
        self._watch.judge_names(lambda path: path in self._members, lambda path: self._coverage.covers(path))

    # ---- what wakes the scheduler (any thread, signal handlers too) ----------
    def request_stop(self) -> None:
        self._stopping = True
        self._notify()

    def request_reload(self, reload: Callable[[], Sources]) -> None:
        """SIGHUP: re-read the sources in the scheduler's thread."""
        self._reload = reload
        self._reload_requested = True
        self._notify()

    def _notify(self) -> None:
        # Never blocks: a signal handler may run while its thread holds the lock.
        if self._cond.acquire(blocking=False):
            try:
                self._cond.notify()
            finally:
                self._cond.release()
        else:
            threading.Thread(target=self._notify_later, daemon=True).start()

    def _notify_later(self) -> None:
        with self._cond:
            self._cond.notify()

    def _spool_written(self, db_path: str) -> None:
        with self._cond:
            m = self._members.get(db_path)
            if m is None:
                return
            if m.running:
                m.dirty = True
            elif m.idle:
                # A database waiting for a due batch or a backoff is not
                # hurried: one round per commit would be a poll by another name.
                self._schedule(m, 0.0)

    def _folder_changed(self) -> None:
        with self._cond:
            self._rescan_at = min(self._rescan_at, time.monotonic() + RESCAN_SETTLE_SECS)
            self._cond.notify()

    def _overflow(self) -> None:
        log.warning("filesystem notifications were lost; looking at every database")
        with self._cond:
            for m in self._members.values():
                if m.running:
                    m.dirty = True
                elif m.error is None:
                    self._schedule(m, 0.0)
            self._rescan_at = time.monotonic()

    # ---- the scheduler ----------------------------------------------------------
    def run_until_signalled(self) -> None:
        """run() on a thread of its own while the main thread waits for it.

        Python runs signal handlers on the main thread, between bytecodes.
        Were the scheduler that thread, a SIGHUP or SIGTERM landing while it
        held its (reentrant) condition, between checking the flags and
        waiting, would notify nobody, and the scheduler would sleep through
        it (CI once saw a reload acted on 60 s late). Here the handler runs
        in the waiting main thread, whose notify() takes the condition like
        any other thread's and so cannot fall into that gap."""
        failure: list[BaseException] = []

        def scheduler() -> None:
            try:
                self.run()
            except BaseException as exc:  # re-raised in the main thread
                failure.append(exc)

        thread = threading.Thread(target=scheduler, name="bottomless-fleet-scheduler")
        thread.start()
        try:
            thread.join()  # interruptible: signal handlers run here
        except BaseException:
            self.request_stop()
            thread.join()
            raise
        if failure:
            raise failure[0]

    def run(self) -> None:
        """Ship until request_stop(), then ship what is left within the
        shutdown timeout and return."""
        try:
            self._rescan()
            with self._cond:
                while not self._stopping:
                    if self._reload_requested:
                        self._reload_requested = False
                        self._cond.release()
                        try:
                            self._do_reload()
                        finally:
                            self._cond.acquire()
                        continue
                    now = time.monotonic()
                    if now >= self._rescan_at:
                        self._cond.release()
                        try:
                            self._rescan()
                        finally:
                            self._cond.acquire()
                        continue
                    while self._heap and self._heap[0][0] <= now:
                        due, _, m = heapq.heappop(self._heap)
                        if due == m.due and not m.running and not m.gone:
                            m.running = True
                            m.dirty = False
                            self._pool.submit(self._round, m)
                    next_at = min(self._rescan_at, self._heap[0][0] if self._heap else self._rescan_at)
                    timeout = max(0.0, min(next_at - time.monotonic(), SCHEDULER_MAX_SLEEP_SECS))
                    self._wake_at = time.monotonic() + timeout
                    try:
                        self._cond.wait(timeout)
                    finally:
                        self._wake_at = float("-inf")
        finally:
            self._shutdown()

    def _schedule(self, m: Member, delay: float) -> None:
        """With the condition held."""
        m.idle = False
        m.due = time.monotonic() + delay
        heapq.heappush(self._heap, (m.due, next(self._counter), m))
        if m.due < self._wake_at:
            self._cond.notify()

    def _round(self, m: Member) -> None:
        """One step() of one database, on a pool thread."""
        delay, idle = PARK_RETRY_SECS, False
        try:
            if m.rep is None:
                m.rep = self._open(m)
            if m.rep is not None:
                with self._attribution.round_of(m.metrics), log_context.about(m.wanted.name):
                    step = m.rep.step()
                self._count_failures(m, m.rep)
                m.unshipped = m.rep.spool.stats().bytes
                if step.done:
                    error = m.rep.error
                    self._park(m, str(error) if error is not None else "its replicator stopped", None)
                elif step.idle and self._watch.available and m.rep.sleep_on_bell():
                    delay = 0.0  # a commit came in while it was being put to sleep
                else:
                    delay, idle = self._next_delay(m.rep, step), step.idle
        except Exception as exc:  # a bug in one database's round must not end the others
            log.error("replicator of %s failed", m.path, exc_info=exc)
            self._park(m, f"replicator failed unexpectedly: {exc!r}", "crash")
        with self._cond:
            m.running = False
            if m.gone or self._stopping:
                return
            self._schedule(m, 0.0 if idle and m.dirty else delay)
            m.idle = idle and m.error is None

    def _next_delay(self, rep: Replicator, step: Step) -> float:
        if step.idle:
            if not self._watch.available:
                return UNWATCHED_RECHECK_SECS
            return IDLE_RECHECK_SECS if rep.lock.held else LOCKED_RECHECK_SECS
        if step.due_in is not None:
            return step.due_in
        return step.wait

    def _open(self, m: Member) -> Replicator | None:
        """The member's replicator (None, parked, when it cannot be made)."""
        m.error = None
        try:
            rep = Replicator(m.path, m.wanted.config, self._store(m.wanted))
        except (BottomlessError, OSError) as exc:
            self._park(m, f"cannot replicate it: {exc}", type(exc).__name__)
            return None
        self._watch.watch_database(m.path)
        m.failures_seen = 0
        return rep

    def _park(self, m: Member, why: str, kind: str | None) -> None:
        """Stop shipping ``m`` until PARK_RETRY_SECS from now (a fresh replicator then)."""
        if m.error != why:
            log.error("%s: %s; trying again in %.0fs", m.path, why, PARK_RETRY_SECS)
        m.error = why
        if kind is not None and m.metrics is not None:
            m.metrics.error(kind)
        rep, m.rep = m.rep, None
        if rep is not None:
            _close(rep)

    def _count_failures(self, m: Member, rep: Replicator) -> None:
        if rep.failures != m.failures_seen and m.metrics is not None and rep.last_failure is not None:
            for _ in range(rep.failures - m.failures_seen):
                m.metrics.error(type(rep.last_failure).__name__)
        m.failures_seen = rep.failures

    def _store(self, wanted: Wanted) -> S3Store:
        key = (wanted.config.endpoint, wanted.config.bucket)
        with self._cond:
            store = self._stores.get(key)
            if store is None:
                from bottomless.s3 import make_client

                client = make_client(wanted.config.endpoint, max_pool_connections=self.threads * 2)
                store = self._stores[key] = S3Store(key[0], key[1], client=client, retry=FLEET_RETRY)
                store.listeners.append(self._attribution)
            return store

    # ---- which databases ----------------------------------------------------------
    def _rescan(self, fresh: bool = False) -> None:
        """``fresh``: the sources changed, so nothing of the last plan holds."""
        try:
            with self._cond:
                previous = {} if fresh else {path: m.wanted for path, m in self._members.items()}
            plan = self.sources.plan(previous)
        except OSError as exc:
            log.error("cannot list the replicated folders (%s); keeping the databases found before", exc)
            plan = None
        with self._cond:
            period = RESCAN_SECS if self._watch.available else UNWATCHED_RESCAN_SECS
            self._rescan_at = time.monotonic() + period
        if plan is not None:
            self._apply(plan)

    def _apply(self, plan: Plan) -> None:
        for folder in plan.folders:
            self._watch.watch_folder(folder)
        for path, why in plan.skipped.items():
            if self._skipped.get(path) != why:
                log.warning("not replicating %s: %s", path, why)
        self._skipped = dict(plan.skipped)
        self.metrics.skipped(len(self._skipped))
        dropped: list[Member] = []
        with self._cond:
            for path, m in list(self._members.items()):
                wanted = plan.databases.get(path)
                if wanted is None or wanted != m.wanted:
                    m.gone = True
                    del self._members[path]
                    dropped.append(m)
            for path, wanted in plan.databases.items():
                if path not in self._members:
                    m = self._members[path] = Member(wanted)
                    m.metrics = self.metrics.database(wanted.name, _lag_of(m), _unshipped_of(m))
                    log.info("replicating %s as %r in bucket %r", path, wanted.name, wanted.config.bucket)
                    self._schedule(m, 0.0)
        for m in dropped:
            log.info("no longer replicating %s", m.path)
            self._watch.forget(m.path)
            if m.metrics is not None and m.wanted.name not in {w.name for w in plan.databases.values()}:
                self.metrics.forget(m.wanted.name)
            self._pool.submit(self._retire, m)

    def _retire(self, m: Member) -> None:
        """A dropped database: ship what is left if it is still there."""
        while True:
            with self._cond:
                if not m.running:
                    m.running = True
                    break
            time.sleep(0.05)  # its last round is finishing
        rep, m.rep = m.rep, None
        if rep is not None:
            limit = rep.config.shutdown_timeout_secs if os.path.exists(m.path) else 0.0
            _close(rep, limit)

    def _do_reload(self) -> None:
        assert self._reload is not None
        try:
            sources = self._reload()
        except BottomlessError as exc:
            log.error("configuration not reloaded, keeping the one in use: %s", exc)
            return
        log.info("configuration reloaded")
        self.sources = sources
        self._coverage = sources.coverage(os.getpid())
        self._rescan(fresh=True)

    # ---- the end ----------------------------------------------------------------
    def _shutdown(self) -> None:
        """Every replicator ships what it can, all at once, within the
        longest shutdown timeout of them."""
        with self._cond:
            self._stopping = True
            members = list(self._members.values())
        self._watch.close()
        limit = max((m.wanted.config.shutdown_timeout_secs for m in members), default=0.0)
        deadline = time.monotonic() + limit
        # Rounds still running finish first (each is short: bounded retries).
        while any(m.running for m in members) and time.monotonic() < deadline:
            time.sleep(0.02)
        futures: list[Future[None]] = []
        for m in members:
            rep, m.rep = m.rep, None
            if rep is not None and not m.running:
                # Only a holder of the lock has anything of its own to ship.
                left = max(0.0, deadline - time.monotonic()) if rep.lock.held else 0.0
                futures.append(self._pool.submit(_close, rep, left))
        _, late = wait(futures, timeout=max(0.0, deadline - time.monotonic()) + 1.0)
        if late:
            log.warning("%d database(s) still shipping at the shutdown timeout; their spools keep the rest", len(late))
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ---- for status and tests -------------------------------------------------------
    def databases(self) -> dict[str, str]:
        """Path -> ``<db-name>`` of every database shipped now."""
        with self._cond:
            return {path: m.wanted.name for path, m in self._members.items()}


def _lag_of(m: Member) -> Callable[[], float]:
    def lag() -> float:
        rep = m.rep
        return rep.pending_age() if rep is not None else 0.0

    return lag


def _unshipped_of(m: Member) -> Callable[[], float]:
    return lambda: float(m.unshipped)


def _close(rep: Replicator, limit: float = 0.0) -> None:
    try:
        rep.stop(timeout=limit)
    except Exception as exc:  # shutting one down must not keep the others from it
        log.warning("stopping the replicator of %s: %s", rep.db_path, exc)

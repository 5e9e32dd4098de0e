"""Where the backup of each database stands (``bottomless-cli status``).

For every database: the newest generation in the bucket, the newest commit
it holds and when that commit was made, what the spool beside the file
holds that S3 does not, whether a replicator ships it now, the lease in the
bucket, and the problem its replicator last reported. It is read from the
side folder (``side_files.py``) and the bucket with the modules that own
each thing; nothing here knows a key or a file name.

Status only reads. It opens a spool only where a replicator has already
read it (an ``ack`` file exists): opening one that has none would tell
capture that a replicator ships it. A database that has no backup, a file
that is not SQLite, an unreachable bucket: each is a row that says so, never
an exception that hides the other rows.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bottomless import catalog, layout
from bottomless.config import Config
from bottomless.errors import BottomlessError
from bottomless.fleet_sources import Plan, Wanted
from bottomless.health import alive, read_problem
from bottomless.lease import LeaseInfo, owner_id
from bottomless.lock import holder_pid, is_locked
from bottomless.s3 import S3Store
from bottomless.side_files import ACK, SideFolder
from bottomless.spool import Spool
from bottomless.state import load_state

log = logging.getLogger(__name__)

WORKERS = 8  # databases read at once: S3 round trips overlap, the bucket is not flooded


@dataclass(frozen=True)
class StatusTarget:
    """A database to report on: its ``<db-name>`` in ``config``'s bucket,
    its file when there is one here, and why it is not replicated when a
    directory scan passed over it."""

    name: str
    path: Path | None
    config: Config | None  # None for a file passed over
    skipped: str | None = None


@dataclass(frozen=True)
class LeaseStatus:
    state: str  # "held", "expired" or "released"
    holder: str  # host, path and pid of the replicator that wrote it
    expires_at: float  # unix seconds (0 once released)
    ours: bool  # written for this very file on this machine


@dataclass(frozen=True)
class ErrorStatus:
    message: str
    since: float  # unix seconds
    pid: int
    stopped: bool  # the replicator gave up on it (retrying cannot help)
    replicator_alive: bool


@dataclass(frozen=True)
class DatabaseStatus:
    name: str
    path: str | None
    bucket: str | None
    endpoint: str | None
    generation: str | None = None
    generation_created_at: datetime | None = None
    last_frame: int | None = None  # newest WAL frame in the bucket
    last_commit_at: float | None = None  # unix seconds of that commit (of the snapshot without batches)
    unshipped_bytes: int | None = None
    unshipped_transactions: int | None = None
    oldest_unshipped_at: float | None = None  # unix seconds
    replicator_pid: int | None = None  # a replicator ships it now (0: running, pid unknown)
    lease: LeaseStatus | None = None
    error: ErrorStatus | None = None
    notes: tuple[str, ...] = ()  # why a fact is missing: no backup yet, bucket unreachable, ...

    @property
    def running(self) -> bool:
        return self.replicator_pid is not None

    def lag(self, now: float) -> float:
        """Seconds the oldest commit not yet in S3 has waited (0 when none)."""
        if not self.unshipped_transactions or self.oldest_unshipped_at is None:
            return 0.0
        return max(0.0, now - self.oldest_unshipped_at)

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "database": self.name,
            "path": self.path,
            "bucket": self.bucket,
            "endpoint": self.endpoint,
            "generation": self.generation,
            "generation_created_at": _iso(self.generation_created_at),
            "last_commit": None
            if self.last_frame is None
            else {
                "frame": self.last_frame,
                "at": _iso_unix(self.last_commit_at),
                "age_secs": None if self.last_commit_at is None else round(max(0.0, now - self.last_commit_at), 3),
            },
            "unshipped": None
            if self.unshipped_bytes is None
            else {
                "bytes": self.unshipped_bytes,
                "transactions": self.unshipped_transactions,
                "lag_secs": round(self.lag(now), 3),
            },
            "replicator": {"running": self.running, "pid": self.replicator_pid or None},
            "lease": None
            if self.lease is None
            else {
                "state": self.lease.state,
                "holder": self.lease.holder,
                "expires_at": _iso_unix(self.lease.expires_at) if self.lease.expires_at else None,
                "ours": self.lease.ours,
            },
            "last_error": None
            if self.error is None
            else {
                "message": self.error.message,
                "since": _iso_unix(self.error.since),
                "pid": self.error.pid,
                "stopped": self.error.stopped,
                "replicator_alive": self.error.replicator_alive,
            },
            "notes": list(self.notes),
        }


# ---- which databases -----------------------------------------------------------------


def file_target(path: str | Path, config: Config) -> StatusTarget:
    """The database file ``path`` under the ``<db-name>`` a replicator gives
    it (as ``Target.open``), whether or not it exists here."""
    absolute = Path(os.path.abspath(path))
    return StatusTarget(config.database_id or layout.db_name_for_path(str(absolute)), absolute, config)


def plan_targets(plan: Plan) -> list[StatusTarget]:
    """What a multi-database replicator of these sources ships now (by
    name), then the files it passes over, with the reason."""
    targets = [StatusTarget(w.name, Path(w.path), w.config) for w in sorted(plan.databases.values(), key=_by_name)]
    targets += [StatusTarget(path, Path(path), None, skipped=why) for path, why in sorted(plan.skipped.items())]
    return targets


def _by_name(wanted: Wanted) -> tuple[str, str, str]:
    return (wanted.config.bucket, wanted.name, wanted.path)


# ---- gathering -----------------------------------------------------------------------


@dataclass
class _Facts:
    """What one database's row is built from, filled in piece by piece."""

    values: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def gather(
    targets: Iterable[StatusTarget],
    make_store: Callable[[Config], S3Store] | None = None,
    clock: Callable[[], float] = time.time,
) -> list[DatabaseStatus]:
    """The status of every target, in order. One store (and one bucket
    check) per endpoint and bucket; an unreachable one is a note on each of
    its rows."""
    targets = list(targets)
    make = make_store or (lambda c: S3Store(c.endpoint, c.bucket))
    stores: dict[tuple[str, str], S3Store | str] = {}
    for config in (t.config for t in targets):
        if config is not None and _where(config) not in stores:
            stores[_where(config)] = _open_store(make, config)

    def one(t: StatusTarget) -> DatabaseStatus:
        return _one(t, None if t.config is None else stores[_where(t.config)], clock)

    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="status") as pool:
        return list(pool.map(one, targets))


def _where(config: Config) -> tuple[str, str]:
    return (config.endpoint, config.bucket)


def _open_store(make: Callable[[Config], S3Store], config: Config) -> S3Store | str:
    try:
        store = make(config)
        store.check_bucket()
        return store
    except BottomlessError as exc:
        return f"bucket unreachable: {exc}"


def _one(target: StatusTarget, store: S3Store | str | None, clock: Callable[[], float]) -> DatabaseStatus:
    facts = _Facts()
    if target.skipped is not None:
        facts.notes.append(f"not replicated: {target.skipped}")
    elif target.path is not None:
        _local(target.path, facts)
    if isinstance(store, str):
        facts.notes.append(store)
    elif store is not None:
        try:
            _remote(store, target, facts, clock())
        except BottomlessError as exc:
            facts.notes.append(f"cannot read the bucket: {exc}")
    return DatabaseStatus(
        name=target.name,
        path=None if target.path is None else str(target.path),
        bucket=None if target.config is None else target.config.bucket,
        endpoint=None if target.config is None else target.config.endpoint,
        notes=tuple(facts.notes),
        **facts.values,
    )


def _local(path: Path, facts: _Facts) -> None:
    if not path.exists():
        facts.notes.append(f"{path} does not exist")
    side = SideFolder.of(path)
    if not os.path.isdir(side.path):
        if path.exists():
            facts.notes.append("never replicated from this machine (no side folder)")
        return
    problem = read_problem(side.path)
    if problem is not None:
        facts.values["error"] = ErrorStatus(
            problem.message, problem.since, problem.pid, problem.stopped, alive(problem.pid)
        )
    try:
        if is_locked(side.path):
            facts.values["replicator_pid"] = holder_pid(side.path) or 0
    except OSError as exc:
        facts.notes.append(f"cannot tell whether a replicator runs: {exc.strerror or exc}")
    try:
        state = load_state(side.path)
    except RuntimeError as exc:
        facts.notes.append(str(exc))
        state = None
    if state is not None:
        facts.values["generation"] = state.generation  # the bucket's newest replaces it when readable
    if not (side.spool.exists() and side.file(ACK).exists()):
        facts.notes.append("no replicator has read the spool yet")
        return
    try:
        with Spool(str(path)) as spool:
            stats = spool.stats()
    except (BottomlessError, OSError) as exc:
        facts.notes.append(f"cannot read the spool: {exc}")
        return
    facts.values["unshipped_bytes"] = stats.bytes
    facts.values["unshipped_transactions"] = stats.records
    facts.values["oldest_unshipped_at"] = stats.oldest_unix_ms / 1000 if stats.records else None


def _remote(store: S3Store, target: StatusTarget, facts: _Facts, now: float) -> None:
    generations = catalog.list_generations(store, target.name)
    if generations:
        newest = catalog.load_generation(store, target.name, generations[0])
        local = facts.values.get("generation")
        if local is not None and local != str(newest.generation):
            facts.notes.append(f"this file's replicator last shipped generation {local}, not the newest")
        facts.values["generation"] = str(newest.generation)
        facts.values["generation_created_at"] = newest.created_at
        facts.values.update(_last_commit(newest))
    else:
        facts.notes.append(f"no backup in bucket {store.bucket!r} yet")
    raw = store.get_or_none(layout.lease_key(target.name))
    if raw is not None:
        info = LeaseInfo.parse(raw)
        if info is None:
            facts.notes.append(f"the lease object {layout.lease_key(target.name)!r} is not readable")
        else:
            facts.values["lease"] = _lease(info, target.path, now)


def _last_commit(gen: catalog.Generation) -> dict[str, Any]:
    """The newest frame the generation holds and when it was committed (a
    batch's name carries its last commit's time; a snapshot alone, its upload)."""
    snapshot_at = gen.snapshot.last_modified.timestamp() if gen.snapshot is not None else None
    if gen.batches:
        newest = max(gen.batches, key=lambda b: b.last)
        return {"last_frame": newest.last, "last_commit_at": float(newest.unix_secs)}
    if gen.pages:
        return {"last_frame": gen.pages[-1].frame, "last_commit_at": snapshot_at}
    if gen.snapshot is not None:
        return {"last_frame": 0, "last_commit_at": snapshot_at}
    return {}


def _lease(info: LeaseInfo, path: Path | None, now: float) -> LeaseStatus:
    if info.expires_at == 0:
        state = "released"
    elif info.expires_at <= now:
        state = "expired"
    else:
        state = "held"
    ours = path is not None and info.owner == owner_id(str(path))
    return LeaseStatus(state, info.holder(), info.expires_at, ours)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso_unix(seconds: float | None) -> str | None:
    return None if seconds is None else _iso(datetime.fromtimestamp(seconds, UTC))

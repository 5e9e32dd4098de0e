"""Restore a database from S3: choose, fetch, verify, apply, check, rename.

Nothing is written to the target until a complete database has been built
in a temporary file beside it, every frame checksum has been verified (when
``verify`` is on) and ``PRAGMA integrity_check`` says ``ok``. Any gap,
damage or inconsistency raises RestoreError naming the object at fault:
restore never yields a quietly shorter database.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path

from bottomless import catalog, layout, objects, perpage
from bottomless._native import Native, load
from bottomless.catalog import Batch, Generation
from bottomless.crypto import Cipher
from bottomless.errors import LayoutError, RestoreError
from bottomless.frames import Meta
from bottomless.generation import created_at
from bottomless.restore_fetch import ObjectSource
from bottomless.restore_figures import Figures, Progress
from bottomless.restore_native import RestoreNative
from bottomless.restore_pipeline import Pipeline, SnapshotInput, StepInput, Tuning
from bottomless.s3 import S3Store
from bottomless.snapshot_check import SQLITE_MAGIC

log = logging.getLogger(__name__)

__all__ = ["Figures", "Plan", "Progress", "RestoreResult", "Step", "Tuning", "choose_generation", "restore"]
FROM_ENV = "from-env"  # restore(cipher=...) default: the key in the environment, if any


@dataclass(frozen=True)
class Step:
    """One generation of a restore plan and the batches applied from it."""

    generation: Generation
    meta: Meta | None  # None: a generation without frames (libSQL writes no .meta then)
    batches: list[Batch]


@dataclass(frozen=True)
class Plan:
    """Everything a restore will fetch, in the order it is applied."""

    db_name: str
    snapshot_key: str | None  # None: libSQL's first generation, which starts from an empty file
    snapshot_compression: str | None
    steps: list[Step]  # oldest generation (the one with the snapshot, or the first one) first
    snapshot_size: int | None = None  # bytes in S3

    @property
    def generation(self) -> uuid.UUID:
        return self.steps[-1].generation.generation

    @property
    def metas(self) -> list[Meta]:
        return [step.meta for step in self.steps if step.meta is not None]

    @property
    def batch_count(self) -> int:
        return sum(len(step.batches) for step in self.steps)


@dataclass(frozen=True)
class RestoreResult:
    path: str
    generation: uuid.UUID
    generations: list[uuid.UUID]  # the .dep chain used, oldest first
    page_size: int
    db_size: int  # pages
    batches_applied: int
    frames_applied: int
    checksums_verified: int
    integrity: str
    uncommitted_frames: int = 0  # frames after a generation's last commit, not applied (libSQL's writer ships them)
    pages_written: int = 0  # each page of the restored file is written once, its newest image
    figures: Figures | None = None  # bytes fetched and applied, time taken


def choose_generation(
    store: S3Store,
    db_name: str,
    generation: uuid.UUID | None = None,
    until: datetime | None = None,
) -> uuid.UUID:
    """The named generation, else the newest one (created at or before ``until``)."""
    if generation is not None:
        if until is not None and created_at(generation) > until:
            raise RestoreError(
                f"generation {generation} of {db_name!r} was created at "
                f"{created_at(generation).isoformat(timespec='seconds')}, after {until.isoformat()}: "
                "it holds no state of that time; give a later time, or -u alone to pick the generation"
            )
        return generation
    generations = catalog.list_generations(store, db_name)
    if not generations:
        raise RestoreError(f"no generation of database {db_name!r} in bucket {store.bucket!r}")
    if until is None:
        return generations[0]
    for candidate in generations:
        if created_at(candidate) <= until:
            return candidate
    raise RestoreError(f"no generation of database {db_name!r} was created at or before {until.isoformat()}")


def plan_restore(
    store: S3Store,
    db_name: str,
    generation: uuid.UUID,
    until: datetime | None = None,
    listed: Generation | None = None,
) -> Plan:
    """Follow ``.dep`` back to a generation with a snapshot (or to libSQL's
    first generation, which has neither snapshot nor ``.dep``); pick the
    batches. ``listed`` is ``generation``'s listing when the caller has it."""
    chain: list[Generation] = []
    seen: set[uuid.UUID] = set()
    current: uuid.UUID | None = generation
    while current is not None:
        if current in seen:
            raise RestoreError(f"generation {current} depends on itself through .dep objects")
        seen.add(current)
        gen = listed if listed is not None and current == listed.generation else _load(store, db_name, current)
        prefix = layout.generation_prefix(db_name, current)
        if not gen.all_keys():
            raise RestoreError(f"generation {prefix} does not exist in bucket {store.bucket!r}")
        chain.insert(0, gen)
        if gen.snapshot is not None:
            break
        try:
            current = objects.read_dep(store, db_name, current)
        except LayoutError as exc:
            raise RestoreError(str(exc)) from None
        if current is None and not gen.batches:
            raise RestoreError(
                f"generation {prefix} has no snapshot ({prefix}db.<zstd|gz|raw>), no batches "
                "and no .dep parent to continue from"
            )
    root = chain[0]
    steps: list[Step] = []
    for gen in chain:
        try:
            meta = objects.read_meta(store, db_name, gen.generation)
        except LayoutError as exc:
            raise RestoreError(str(exc)) from None
        if meta is None and gen.batches:
            raise RestoreError(
                f"object {layout.meta_key(db_name, gen.generation)!r} is missing (page size and checksum seed "
                f"of the {len(gen.batches)} batch(es) in {gen.prefix})"
            )
        first = next((step.meta for step in steps if step.meta is not None), None)
        if meta is not None and first is not None and meta.page_size != first.page_size:
            key = layout.meta_key(db_name, gen.generation)
            raise RestoreError(
                f"object {key!r} says page size {meta.page_size}, an earlier generation's .meta says {first.page_size}"
            )
        steps.append(Step(gen, meta, select_batches(gen, until)))
    snapshot_key = root.snapshot.key if root.snapshot is not None else None
    snapshot_size = root.snapshot.size if root.snapshot is not None else None
    return Plan(db_name, snapshot_key, root.snapshot_compression, steps, snapshot_size)


def select_batches(gen: Generation, until: datetime | None) -> list[Batch]:
    """The gap-free run of batches from frame 1 (up to ``until``), taking at
    each frame the batch that reaches furthest: a merged object where the
    replicator made one, the small batches where the time limit falls inside
    it. Identical ranges (a re-sent batch) count once."""
    limit = None if until is None else until.timestamp()
    allowed = [b for b in gen.batches if limit is None or b.unix_secs <= limit]
    furthest: dict[int, Batch] = {}
    for candidate in allowed:
        best = furthest.get(candidate.first)
        if best is None or candidate.last > best.last:
            furthest[candidate.first] = candidate
    chosen: list[Batch] = []
    expected = 1
    while (step := furthest.get(expected)) is not None:
        chosen.append(step)
        expected = step.last + 1
    beyond = [b for b in allowed if b.last >= expected]
    if beyond:
        raise RestoreError(
            f"gap in generation {gen.prefix}: expected a batch starting at frame {expected}, "
            f"found {min(beyond, key=lambda b: b.first).key}"
        )
    return chosen


def restore(
    store: S3Store,
    db_name: str,
    target: str,
    generation: uuid.UUID | None = None,
    until: datetime | None = None,
    verify: bool = True,
    workers: int = 8,
    progress: Progress | None = None,
    native: Native | None = None,
    cipher: Cipher | None | str = FROM_ENV,
    source: ObjectSource | None = None,
    tuning: Tuning | None = None,
) -> RestoreResult:
    """Restore ``db_name`` into the file ``target`` (replaced atomically).

    ``cipher`` decrypts encrypted generations; by default the key comes from
    LIBSQL_BOTTOMLESS_ENCRYPTION_KEY(_FILE). Unencrypted generations restore
    with or without a key. ``source`` is where object bodies are read from
    (default: ``store``; the listing always comes from ``store``)."""
    figures = Figures()
    key: Cipher | None = Cipher.from_env() if isinstance(cipher, str) else cipher
    target_path = Path(target).resolve()
    _check_target_dir(target_path)
    chosen = choose_generation(store, db_name, generation, until)
    log.info("Restoring from generation %s", chosen)
    newest = _load(store, db_name, chosen)
    build: Callable[[str], RestoreResult]
    if newest.per_page:
        build = partial(_build_per_page, store, newest, verify, figures, progress)
    else:
        plan = plan_restore(store, db_name, chosen, until, newest)
        build = partial(
            _build,
            store,
            plan,
            verify=verify,
            tuning=tuning or Tuning(workers=workers),
            figures=figures,
            progress=progress,
            native=native or load(),
            cipher=key,
            source=source,
        )
        figures.phase_done("plan", figures.started)
    fd, tmp = tempfile.mkstemp(prefix=f".{target_path.name}.restore-", dir=target_path.parent)
    os.close(fd)
    try:
        result = build(tmp)
        _install(tmp, target_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    figures.finished = time.monotonic()
    figures.db_bytes = result.db_size * result.page_size
    return replace(result, path=str(target_path), figures=figures)


def _load(store: S3Store, db_name: str, generation: uuid.UUID) -> Generation:
    try:
        return catalog.load_generation(store, db_name, generation)
    except LayoutError as exc:
        raise RestoreError(str(exc)) from None


def _build_per_page(
    store: S3Store, gen: Generation, verify: bool, figures: Figures, progress: Progress | None, tmp: str
) -> RestoreResult:
    """A generation of libSQL's 2023 layout: snapshot, then its pages."""

    def objects_done(done: int, total: int) -> None:
        figures.objects_done, figures.objects_total = done, total
        if progress is not None:
            progress(figures)

    def chain_start() -> int | None:
        # A writer process chained its CRCs on into the generations it started.
        older = [g for g in catalog.list_generations(store, gen.db_name) if g.int > gen.generation.int]
        if not older:
            return None
        previous = _load(store, gen.db_name, older[0])
        return previous.pages[-1].crc if previous.pages else 0

    applied = perpage.apply_generation(store, gen, tmp, verify, chain_start, objects_done)
    _check_integrity(tmp, gen.generation)
    return RestoreResult(
        path=tmp,
        generation=gen.generation,
        generations=[gen.generation],
        page_size=applied.page_size,
        db_size=applied.db_size,
        batches_applied=applied.frames,
        frames_applied=applied.frames,
        checksums_verified=applied.verified,
        integrity="ok",
        uncommitted_frames=applied.skipped,
        pages_written=applied.frames,
    )


def _check_integrity(tmp: str, generation: uuid.UUID) -> str:
    integrity = integrity_check(tmp)
    if integrity != "ok":
        raise RestoreError(f"restored database from generation {generation} fails PRAGMA integrity_check: {integrity}")
    return integrity


def _build(
    store: S3Store,
    plan: Plan,
    tmp: str,
    verify: bool,
    tuning: Tuning,
    figures: Figures,
    progress: Progress | None,
    native: Native,
    cipher: Cipher | None = None,
    source: ObjectSource | None = None,
) -> RestoreResult:
    snapshot = None
    if plan.snapshot_key is not None:
        assert plan.snapshot_compression is not None and plan.snapshot_size is not None
        snapshot = SnapshotInput(plan.snapshot_key, plan.snapshot_compression, plan.snapshot_size)
    steps = [StepInput(s.generation.prefix, s.meta, s.batches) for s in plan.steps]
    metas = plan.metas
    figures.fetch_total = (plan.snapshot_size or 0) + sum(b.size for s in plan.steps for b in s.batches)
    figures.objects_total = plan.batch_count + (1 if snapshot is not None else 0)
    pipeline = Pipeline(source or store, RestoreNative(native), tmp, cipher, verify, tuning, figures, progress)
    began = time.monotonic()
    built = pipeline.run(snapshot, steps, metas[0].page_size if metas else None)
    began = figures.phase_done("apply", began)
    if snapshot is not None:
        figures.objects_done += 1
    if plan.snapshot_key is None:
        _check_started_empty(plan, tmp, built.db_size)
    try:
        os.truncate(tmp, built.db_size * built.page_size)
    except OSError as exc:
        raise RestoreError(f"could not finish the restored file {tmp}: {exc}") from None
    began = figures.phase_done("finish", began)
    # The file is written back to disk while the integrity check reads it
    # from the page cache; the rename waits for both.
    with ThreadPoolExecutor(1, thread_name_prefix="restore-fsync") as pool:
        synced = pool.submit(_fsync, tmp)
        integrity = _check_integrity(tmp, plan.generation)
        try:
            synced.result()
        except OSError as exc:
            raise RestoreError(f"could not make the restored file {tmp} durable: {exc}") from None
    figures.phase_done("integrity", began)
    return RestoreResult(
        path=tmp,
        generation=plan.generation,
        generations=[s.generation.generation for s in plan.steps],
        page_size=built.page_size,
        db_size=built.db_size,
        batches_applied=plan.batch_count,
        frames_applied=built.frames_applied,
        checksums_verified=built.frames_applied if verify else 0,
        integrity=integrity,
        uncommitted_frames=built.uncommitted,
        pages_written=figures.pages_written,
    )


def _check_started_empty(plan: Plan, tmp: str, db_size: int) -> None:
    """A generation without snapshot and ``.dep`` is libSQL's first one: its
    first transaction writes the database from page 1. Frames that do not
    mean its snapshot went missing."""
    prefix = plan.steps[0].generation.prefix
    with open(tmp, "rb") as f:
        head = f.read(16)
    if db_size == 0 or head != SQLITE_MAGIC:
        raise RestoreError(
            f"generation {prefix} has no snapshot ({prefix}db.<zstd|gz|raw>) and no .dep parent to continue "
            "from, and its frames do not start a new database from page 1: its snapshot is missing"
        )


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def integrity_check(path: str) -> str:
    """``PRAGMA integrity_check`` of a database file that nothing else has open."""
    uri = Path(path).resolve().as_uri() + "?immutable=1"
    conn = sqlite3.connect(uri, uri=True)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        conn.close()
    return "\n".join(str(row[0]) for row in rows)


def _check_target_dir(target: Path) -> None:
    """Say so before any download when the restored file cannot be written."""
    folder = target.parent
    if not folder.is_dir():
        raise RestoreError(f"cannot restore into {target}: the directory {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        why = "is on a read-only file system" if _read_only_fs(folder) else "is not writable (permission denied)"
        raise RestoreError(f"cannot restore into {target}: the directory {folder} {why}")


def _read_only_fs(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _file_mode(target: Path) -> int:
    """The mode SQLite would give a new database (0666 less the umask), or
    the mode of the file being replaced."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0o022)  # no /proc: read it the only other way there is
    os.umask(current)
    return current


def _install(tmp: str, target: Path) -> None:
    """Move the restored file into place, dropping the old database's WAL."""
    os.chmod(tmp, _file_mode(target))
    with contextlib.suppress(FileNotFoundError, PermissionError):
        owner = target.stat()
        os.chown(tmp, owner.st_uid, owner.st_gid)  # root restoring another user's database
    for suffix in ("-wal", "-shm"):
        stale = Path(str(target) + suffix)
        if stale.exists():
            log.warning("removing %s, which belongs to the database being replaced", stale)
            stale.unlink()
    os.replace(tmp, target)
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

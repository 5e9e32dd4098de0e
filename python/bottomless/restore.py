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
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path

from bottomless import catalog, layout, objects, perpage
from bottomless._native import ApplyResult, Native, load
from bottomless.catalog import Batch, Generation
from bottomless.crypto import Cipher, is_encrypted
from bottomless.errors import (
    BottomlessError,
    LayoutError,
    NativeError,
    NoSuchObject,
    RestoreError,
)
from bottomless.frames import Meta, frame_count, frame_size
from bottomless.generation import created_at
from bottomless.s3 import S3Store
from bottomless.snapshot_check import SQLITE_MAGIC, parse_header, snapshot_pages
from bottomless.uploads import TRANSFER

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (objects done, objects total)
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
    return Plan(db_name, snapshot_key, root.snapshot_compression, steps)


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
) -> RestoreResult:
    """Restore ``db_name`` into the file ``target`` (replaced atomically).

    ``cipher`` decrypts encrypted generations; by default the key comes from
    LIBSQL_BOTTOMLESS_ENCRYPTION_KEY(_FILE). Unencrypted generations restore
    with or without a key."""
    key: Cipher | None = Cipher.from_env() if isinstance(cipher, str) else cipher
    target_path = Path(target).resolve()
    _check_target_dir(target_path)
    chosen = choose_generation(store, db_name, generation, until)
    log.info("Restoring from generation %s", chosen)
    newest = _load(store, db_name, chosen)
    build: Callable[[str], RestoreResult]
    if newest.per_page:
        build = partial(_build_per_page, store, newest, verify, progress)
    else:
        plan = plan_restore(store, db_name, chosen, until, newest)
        build = partial(
            _build, store, plan, verify=verify, workers=workers, progress=progress, native=native or load(), cipher=key
        )
    fd, tmp = tempfile.mkstemp(prefix=f".{target_path.name}.restore-", dir=target_path.parent)
    os.close(fd)
    try:
        result = build(tmp)
        _install(tmp, target_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return replace(result, path=str(target_path))


def _load(store: S3Store, db_name: str, generation: uuid.UUID) -> Generation:
    try:
        return catalog.load_generation(store, db_name, generation)
    except LayoutError as exc:
        raise RestoreError(str(exc)) from None


def _build_per_page(
    store: S3Store, gen: Generation, verify: bool, progress: Progress | None, tmp: str
) -> RestoreResult:
    """A generation of libSQL's 2023 layout: snapshot, then its pages."""

    def chain_start() -> int | None:
        # A writer process chained its CRCs on into the generations it started.
        older = [g for g in catalog.list_generations(store, gen.db_name) if g.int > gen.generation.int]
        if not older:
            return None
        previous = _load(store, gen.db_name, older[0])
        return previous.pages[-1].crc if previous.pages else 0

    applied = perpage.apply_generation(store, gen, tmp, verify, chain_start, progress)
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
    workers: int,
    progress: Progress | None,
    native: Native,
    cipher: Cipher | None = None,
) -> RestoreResult:
    total = plan.batch_count + 1
    done = 0
    frames_total = 0
    uncommitted = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        jobs = _prefetch(pool, store, plan, workers * 2)
        page_size, db_size, encrypted = _start(plan, jobs, tmp, cipher)
        done += 1
        if progress:
            progress(done, total)
        for step in plan.steps:
            if step.meta is None:
                continue  # a generation without frames: its snapshot is all it holds
            replay = _Replay(native, tmp, page_size, step.meta, verify, step.generation.prefix)
            for batch in step.batches:
                _, future = next(jobs)
                raw = _fetched(future, batch.key)
                if encrypted is None:
                    encrypted = is_encrypted(raw)
                data = decode_object(raw, batch.key, batch.compression, cipher, encrypted)
                try:
                    count = frame_count(data, page_size)
                except ValueError as exc:
                    raise RestoreError(f"batch {batch.key!r} is truncated: {exc}") from None
                if count != batch.last - batch.first + 1:
                    raise RestoreError(
                        f"batch {batch.key!r} holds {count} frames, its name says {batch.last - batch.first + 1}"
                    )
                applied_size = replay.apply(batch.key, data)
                if applied_size:
                    db_size = applied_size
                done += 1
                if progress:
                    progress(done, total)
            frames_total += replay.frames_applied
            if replay.pending_frames:
                uncommitted += replay.pending_frames
                log.warning(
                    "generation %s ends with %d frame(s) of a transaction that never committed; they are not applied",
                    step.generation.prefix,
                    replay.pending_frames,
                )
    if plan.snapshot_key is None:
        _check_started_empty(plan, tmp, db_size)
    try:
        native.finish_restore(tmp, page_size, db_size)
    except NativeError as exc:
        raise RestoreError(f"could not finish the restored file {tmp}: {exc}") from None
    integrity = _check_integrity(tmp, plan.generation)
    return RestoreResult(
        path=tmp,
        generation=plan.generation,
        generations=[s.generation.generation for s in plan.steps],
        page_size=page_size,
        db_size=db_size,
        batches_applied=plan.batch_count,
        frames_applied=frames_total,
        checksums_verified=frames_total if verify else 0,
        integrity=integrity,
        uncommitted_frames=uncommitted,
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


def _start(
    plan: Plan, jobs: Iterator[tuple[str, Future[bytes]]], tmp: str, cipher: Cipher | None
) -> tuple[int, int, bool | None]:
    """Write the snapshot into ``tmp`` (or leave it empty: libSQL's first
    generation starts from nothing); (page size, pages, encrypted), where
    encrypted is None until an object says."""
    metas = plan.metas
    if plan.snapshot_key is None:
        assert metas, "planned without snapshot and without frames"
        return metas[0].page_size, 0, None
    assert plan.snapshot_compression is not None
    _, snapshot_future = next(jobs)
    raw = _fetched(snapshot_future, plan.snapshot_key)
    encrypted = is_encrypted(raw)
    snapshot = decode_object(raw, plan.snapshot_key, plan.snapshot_compression, cipher, encrypted)
    del raw
    try:
        page_size = metas[0].page_size if metas else parse_header(snapshot).page_size
        db_size = snapshot_pages(snapshot, page_size)
    except ValueError as exc:
        raise RestoreError(f"snapshot {plan.snapshot_key!r} is unusable: {exc}") from None
    Path(tmp).write_bytes(snapshot)
    log.info("Restored the main database file")
    return page_size, db_size, encrypted


def _prefetch(pool: ThreadPoolExecutor, store: S3Store, plan: Plan, window: int) -> Iterator[tuple[str, Future[bytes]]]:
    """Futures of the snapshot and every batch, in apply order, with at most
    ``window`` downloads ahead of the consumer."""
    keys = [plan.snapshot_key] if plan.snapshot_key is not None else []
    keys += [b.key for s in plan.steps for b in s.batches]
    pending: deque[tuple[str, Future[bytes]]] = deque()
    position = 0
    while position < len(keys) or pending:
        while position < len(keys) and len(pending) < max(1, window):
            key = keys[position]
            # The snapshot can be large: ranged GETs in parallel.
            fetch = partial(store.get_large, transfer=TRANSFER) if key == plan.snapshot_key else store.get
            pending.append((key, pool.submit(fetch, key)))
            position += 1
        yield pending.popleft()


def _fetched(future: Future[bytes], key: str) -> bytes:
    try:
        return future.result()
    except NoSuchObject:
        raise RestoreError(f"object {key!r} disappeared during the restore") from None
    except BottomlessError as exc:
        raise RestoreError(f"could not fetch {key!r}: {exc}") from exc


def decode_object(data: bytes, key: str, codec: str, cipher: Cipher | None, generation_encrypted: bool) -> bytes:
    """Decrypt (when encrypted) and decompress one object. Within a restore
    every object is encrypted or none is, as its snapshot: a plaintext object
    in an encrypted history (or the reverse) is refused, not trusted."""
    if is_encrypted(data) != generation_encrypted:
        state = "is" if is_encrypted(data) else "is not"
        raise RestoreError(
            f"object {key!r} {state} encrypted but the snapshot it continues {'is not' if state == 'is' else 'is'}; "
            "refusing a mixed (possibly substituted) history"
        )
    try:
        return objects.decode_body(data, key, codec, cipher)
    except LayoutError as exc:
        raise RestoreError(str(exc)) from None


class _Replay:
    """The frames of one generation, applied commit by commit.

    libSQL's writer cuts batches every N frames, so a transaction may start
    in one batch and commit in a later one: the frames after a batch's last
    commit wait here and go in front of the next batch. Checksum words are
    little-endian (SQLite on x86-64/aarch64, libSQL, this project now); a
    generation this project wrote before used big-endian ones, which the
    first batch reveals."""

    def __init__(self, native: Native, tmp: str, page_size: int, meta: Meta, verify: bool, prefix: str) -> None:
        self.native, self.tmp, self.page_size, self.verify, self.prefix = native, tmp, page_size, verify, prefix
        self.chain = meta.chain()
        self.big_endian: bool | None = None if verify else False
        self.pending = b""
        self.frames_applied = 0

    @property
    def pending_frames(self) -> int:
        return len(self.pending) // frame_size(self.page_size)

    def apply(self, key: str, data: bytes) -> int:
        """Apply what ``data`` (the next batch) completes; the database size
        after its last commit, 0 when it holds none."""
        frames = self.pending + data if self.pending else data
        try:
            applied = self._apply(frames, bool(self.big_endian))
        except NativeError as exc:
            if self.big_endian is not None or not exc.corrupt:
                raise RestoreError(f"batch {key!r} failed to apply: {exc}") from None
            try:
                applied = self._apply(frames, True)
            except NativeError:
                raise RestoreError(f"batch {key!r} failed to apply: {exc}") from None
            log.info("generation %s has big-endian checksums (written by an earlier bottomless)", self.prefix)
            self.big_endian = True
        if self.big_endian is None and frames:
            self.big_endian = False
        self.chain = applied.chain
        self.pending = frames[applied.frames_applied * frame_size(self.page_size) :]
        self.frames_applied += applied.frames_applied
        return applied.db_size

    def _apply(self, frames: bytes, big_endian: bool) -> ApplyResult:
        return self.native.apply_frames(self.tmp, self.page_size, frames, self.chain, self.verify, big_endian)


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

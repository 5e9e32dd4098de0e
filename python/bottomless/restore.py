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

from bottomless import catalog, layout
from bottomless._native import Native, load
from bottomless.catalog import Batch, Generation
from bottomless.compression import decompress
from bottomless.crypto import KEY_FILE_VAR, KEY_VAR, Cipher, EncryptionError, is_encrypted
from bottomless.errors import (
    BottomlessError,
    CompressionError,
    LayoutError,
    NativeError,
    NoSuchObject,
    RestoreError,
)
from bottomless.frames import Meta, frame_count
from bottomless.generation import created_at
from bottomless.s3 import S3Store
from bottomless.snapshot_check import snapshot_pages
from bottomless.uploads import TRANSFER

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (objects done, objects total)
FROM_ENV = "from-env"  # restore(cipher=...) default: the key in the environment, if any


@dataclass(frozen=True)
class Step:
    """One generation of a restore plan and the batches applied from it."""

    generation: Generation
    meta: Meta
    batches: list[Batch]


@dataclass(frozen=True)
class Plan:
    """Everything a restore will fetch, in the order it is applied."""

    db_name: str
    snapshot_key: str
    snapshot_compression: str
    steps: list[Step]  # oldest generation (the one with the snapshot) first

    @property
    def generation(self) -> uuid.UUID:
        return self.steps[-1].generation.generation

    @property
    def page_size(self) -> int:
        return self.steps[0].meta.page_size

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


def read_meta(store: S3Store, db_name: str, generation: uuid.UUID) -> Meta:
    key = layout.meta_key(db_name, generation)
    try:
        return Meta.decode(store.get(key))
    except NoSuchObject:
        raise RestoreError(f"object {key!r} is missing (page size and checksum seed)") from None
    except ValueError as exc:
        raise RestoreError(f"object {key!r} is malformed: {exc}") from None


def plan_restore(store: S3Store, db_name: str, generation: uuid.UUID, until: datetime | None = None) -> Plan:
    """Follow ``.dep`` back to a generation with a snapshot; pick the batches."""
    chain: list[Generation] = []
    seen: set[uuid.UUID] = set()
    current: uuid.UUID | None = generation
    while current is not None:
        if current in seen:
            raise RestoreError(f"generation {current} depends on itself through .dep objects")
        seen.add(current)
        try:
            gen = catalog.load_generation(store, db_name, current)
        except LayoutError as exc:
            raise RestoreError(str(exc)) from None
        prefix = layout.generation_prefix(db_name, current)
        if not gen.all_keys():
            raise RestoreError(f"generation {prefix} does not exist in bucket {store.bucket!r}")
        chain.insert(0, gen)
        if gen.snapshot is not None:
            break
        try:
            current = catalog.read_dep(store, db_name, current)
        except LayoutError as exc:
            raise RestoreError(str(exc)) from None
        if current is None:
            raise RestoreError(
                f"generation {prefix} has no snapshot ({prefix}db.<zstd|gz|raw>) and no .dep parent to continue from"
            )
    root = chain[0]
    assert root.snapshot is not None and root.snapshot_compression is not None
    steps: list[Step] = []
    for gen in chain:
        meta = read_meta(store, db_name, gen.generation)
        if steps and meta.page_size != steps[0].meta.page_size:
            key = layout.meta_key(db_name, gen.generation)
            raise RestoreError(
                f"object {key!r} says page size {meta.page_size}, "
                f"the snapshot's generation says {steps[0].meta.page_size}"
            )
        steps.append(Step(gen, meta, select_batches(gen, until)))
    return Plan(db_name, root.snapshot.key, root.snapshot_compression, steps)


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
    plan = plan_restore(store, db_name, chosen, until)
    fd, tmp = tempfile.mkstemp(prefix=f".{target_path.name}.restore-", dir=target_path.parent)
    os.close(fd)
    try:
        result = _build(store, plan, tmp, verify, workers, progress, native or load(), key)
        _install(tmp, target_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return replace(result, path=str(target_path))


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
    page_size = plan.page_size
    total = plan.batch_count + 1
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        jobs = _prefetch(pool, store, plan, workers * 2)
        _, snapshot_future = next(jobs)
        raw = _fetched(snapshot_future, plan.snapshot_key)
        encrypted = is_encrypted(raw)
        snapshot = decode_object(raw, plan.snapshot_key, plan.snapshot_compression, cipher, encrypted)
        del raw
        try:
            db_size = snapshot_pages(snapshot, page_size)
        except ValueError as exc:
            raise RestoreError(f"snapshot {plan.snapshot_key!r} is unusable: {exc}") from None
        Path(tmp).write_bytes(snapshot)
        del snapshot
        log.info("Restored the main database file")
        done += 1
        if progress:
            progress(done, total)
        frames_total = 0
        for step in plan.steps:
            chain = step.meta.chain()
            for batch in step.batches:
                _, future = next(jobs)
                data = decode_object(_fetched(future, batch.key), batch.key, batch.compression, cipher, encrypted)
                try:
                    count = frame_count(data, page_size)
                except ValueError as exc:
                    raise RestoreError(f"batch {batch.key!r} is truncated: {exc}") from None
                if count != batch.last - batch.first + 1:
                    raise RestoreError(
                        f"batch {batch.key!r} holds {count} frames, its name says {batch.last - batch.first + 1}"
                    )
                try:
                    applied = native.apply_frames(tmp, page_size, data, chain, verify)
                except NativeError as exc:
                    raise RestoreError(f"batch {batch.key!r} failed to apply: {exc}") from None
                if applied.frames_applied != count:
                    raise RestoreError(
                        f"batch {batch.key!r}: only {applied.frames_applied} of {count} "
                        "frames belong to a committed transaction"
                    )
                chain = applied.chain
                if applied.db_size:
                    db_size = applied.db_size
                frames_total += count
                done += 1
                if progress:
                    progress(done, total)
    try:
        native.finish_restore(tmp, page_size, db_size)
    except NativeError as exc:
        raise RestoreError(f"could not finish the restored file {tmp}: {exc}") from None
    integrity = integrity_check(tmp)
    if integrity != "ok":
        raise RestoreError(
            f"restored database from generation {plan.generation} fails PRAGMA integrity_check: {integrity}"
        )
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
    )


def _prefetch(pool: ThreadPoolExecutor, store: S3Store, plan: Plan, window: int) -> Iterator[tuple[str, Future[bytes]]]:
    """Futures of the snapshot and every batch, in apply order, with at most
    ``window`` downloads ahead of the consumer."""
    keys = [plan.snapshot_key] + [b.key for s in plan.steps for b in s.batches]
    pending: deque[tuple[str, Future[bytes]]] = deque()
    position = 0
    while position < len(keys) or pending:
        while position < len(keys) and len(pending) < max(1, window):
            key = keys[position]
            # The snapshot can be large: ranged GETs in parallel.
            fetch = partial(store.get_large, transfer=TRANSFER) if position == 0 else store.get
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
    if generation_encrypted:
        if cipher is None:
            raise RestoreError(
                f"object {key!r} is encrypted (aes-256-gcm): set {KEY_VAR} "
                f"(base64 of the 32-byte key) or {KEY_FILE_VAR}"
            )
        try:
            data = cipher.decrypt(data, key)
        except EncryptionError as exc:
            raise RestoreError(str(exc)) from None
    try:
        return decompress(data, codec, key)
    except CompressionError as exc:
        raise RestoreError(str(exc)) from None


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

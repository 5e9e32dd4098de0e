"""Where a restore reads object bodies from, and how it keeps a bounded
amount of them in flight.

``ObjectSource`` is what the pipeline needs: whole small objects and byte
ranges of large ones. ``S3Store`` is one; ``LocalObjects`` reads a folder
holding a copy of the bucket's keys (the benchmark's "local apply" rate,
the ceiling of the restore's own side). ``ordered`` runs jobs in a pool
and yields their results in submission order, with at most ``budget``
bytes of them (by the caller's estimate) submitted and not yet consumed.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

from bottomless.errors import BottomlessError, NoSuchObject, RestoreError, S3Error

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741


class ObjectSource(Protocol):
    def get(self, key: str) -> bytes: ...

    def get_range(self, key: str, first: int, last: int) -> bytes: ...


class LocalObjects:
    """Objects stored as files named by their key under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NoSuchObject(key) from None

    def get_range(self, key: str, first: int, last: int) -> bytes:
        try:
            fd = os.open(self._path(key), os.O_RDONLY)
        except FileNotFoundError:
            raise NoSuchObject(key) from None
        try:
            return os.pread(fd, last - first + 1, first)
        finally:
            os.close(fd)


def fetched(fetch: Callable[[], bytes], key: str) -> bytes:
    """``fetch()`` with its failures told as a restore's."""
    try:
        return fetch()
    except NoSuchObject:
        raise RestoreError(f"object {key!r} disappeared during the restore") from None
    except BottomlessError as exc:
        raise RestoreError(f"could not fetch {key!r}: {exc}") from exc


def get_part(source: ObjectSource, key: str, first: int, last: int) -> bytes:
    """Bytes first..last of ``key``; a server that ignores Range (a longer,
    wrong body) is named, not trusted."""
    body = fetched(lambda: source.get_range(key, first, last), key)
    if len(body) != last - first + 1:
        raise RestoreError(
            f"could not fetch {key!r}: the server returned {len(body)} bytes for the range {first}-{last}; "
            "it ignores Range requests; please report the server's name"
        ) from S3Error(f"Range ignored for {key}", operation="GetObject", code="RangeIgnored")
    return body


def parts(size: int, part_size: int) -> list[tuple[int, int]]:
    """Inclusive byte ranges covering an object of ``size`` bytes."""
    return [(start, min(size, start + part_size) - 1) for start in range(0, size, part_size)]


def ordered(
    pool: ThreadPoolExecutor, items: Iterable[I], job: Callable[[I], T], cost: Callable[[I], int], budget: int
) -> Generator[T, None, None]:
    """``job(item)`` for every item, run in ``pool``, results in order; at
    most ``budget`` (by ``cost``; always at least one job) in flight. When
    the consumer stops early, jobs not started are cancelled."""
    pending: deque[tuple[int, Future[T]]] = deque()
    source = iter(items)
    in_flight = 0
    exhausted = False
    try:
        while True:
            while not exhausted and (not pending or in_flight < budget):
                item = next(source, None)
                if item is None:
                    exhausted = True
                    break
                weight = cost(item)
                pending.append((weight, pool.submit(job, item)))
                in_flight += weight
            if not pending:
                return
            weight, future = pending.popleft()
            result = future.result()
            in_flight -= weight
            yield result
    finally:
        for _, future in pending:
            future.cancel()

"""Where a restore reads object bodies from, and how it keeps a bounded
amount of them in flight.

``ObjectSource`` is what the pipeline needs: whole small objects, and byte
ranges of large ones or one streaming read of them. ``S3Store`` is one; ``LocalObjects`` reads a folder
holding a copy of the bucket's keys (the benchmark's "local apply" rate,
the ceiling of the restore's own side). ``ordered`` runs jobs in a pool
and yields their results in submission order, with at most ``budget``
bytes of them (by the caller's estimate) submitted and not yet consumed.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

from bottomless.errors import BottomlessError, NoSuchObject, RestoreError, S3Error

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741


class ObjectSource(Protocol):
    def get(self, key: str) -> bytes: ...

    def get_range(self, key: str, first: int, last: int) -> bytes: ...

    def stream(self, key: str, chunk: int) -> Iterator[bytes]: ...


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

    def stream(self, key: str, chunk: int) -> Iterator[bytes]:
        try:
            f = self._path(key).open("rb")
        except FileNotFoundError:
            raise NoSuchObject(key) from None
        with f:
            while piece := f.read(chunk):
                yield piece


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


def streamed(
    source: ObjectSource, key: str, first: int, chunk: int, budget: int, counted: Callable[[int], None]
) -> Generator[bytes, None, None]:
    """``key``'s body from one streaming GET, read by a thread of its own
    at most ``budget`` bytes ahead of the consumer; the first piece holds at
    least ``first`` bytes (or the whole body)."""
    pieces: queue.Queue[bytes | BaseException | None] = queue.Queue(max(1, budget // chunk))
    stop = threading.Event()

    def pump() -> None:
        try:
            head = b""
            for piece in fetched_stream(source, key, chunk):
                if stop.is_set():
                    return
                counted(len(piece))
                if len(head) < first:
                    head += piece
                    if len(head) < first:
                        continue
                    piece, head = head, b""
                pieces.put(piece)
            if head:
                pieces.put(head)
            pieces.put(None)
        except BaseException as exc:  # handed to the consumer
            pieces.put(exc)

    thread = threading.Thread(target=pump, name="restore-stream", daemon=True)
    thread.start()
    try:
        while (item := pieces.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a pump waiting to put
            with contextlib.suppress(queue.Empty):
                pieces.get(timeout=0.05)


def fetched_stream(source: ObjectSource, key: str, chunk: int) -> Iterator[bytes]:
    """``source.stream(key, chunk)`` with its failures told as a restore's."""
    try:
        yield from source.stream(key, chunk)  # closed with this generator (the GET's body with it)
    except NoSuchObject:
        raise RestoreError(f"object {key!r} disappeared during the restore") from None
    except BottomlessError as exc:
        raise RestoreError(f"could not fetch {key!r}: {exc}") from exc


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

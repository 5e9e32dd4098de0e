"""The thread that writes a snapshot's pages while another thread decodes
it. Decoded bytes are copied into a few buffers that are used over and
over, each handed to the native writer when full: a fresh buffer of
several MiB per hand-over costs a page fault per 4 KiB (the kernel zeroes
each new page) and, allocated in one thread and freed in another, grows
the heap of a long restore."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from bottomless.restore_figures import Figures
from bottomless.restore_native import PageSet, RestoreNative

WRITE_CHUNK = 4 << 20  # snapshot bytes handed to the writer at once
BUFFERS = 3  # one filling, one writing, one waiting


class SnapshotWriter:
    """Writes the pages 1, 2, ... of a decoded snapshot that ``written``
    does not hold, up to ``limit()`` (the database's size, once known)."""

    def __init__(
        self,
        native: RestoreNative,
        fd: int,
        page_size: int,
        written: PageSet,
        limit: Callable[[], int | None],
        figures: Figures,
        chunk: int = WRITE_CHUNK,
    ) -> None:
        assert chunk % page_size == 0
        self.native, self.fd, self.page_size, self.written = native, fd, page_size, written
        self.limit, self.figures = limit, figures
        self.free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(BUFFERS):
            self.free.put(bytearray(chunk))
        self.full: queue.Queue[tuple[int, bytearray, int] | None] = queue.Queue()
        self.failure: list[BaseException] = []
        self.buf: bytearray | None = None
        self.fill = 0
        self.next_pgno = 1
        self.total = 0  # bytes added
        self.head = b""  # the first bytes added, up to a database header's worth
        self.thread = threading.Thread(target=self._run, name="restore-writer", daemon=True)
        self.thread.start()

    def add(self, data: bytes | memoryview, head_size: int = 100) -> None:
        if len(self.head) < head_size:
            self.head += bytes(data[: head_size - len(self.head)])
        view = memoryview(data)
        while view:
            if self.buf is None:
                self.buf = self._take()
            n = min(len(view), len(self.buf) - self.fill)
            self.buf[self.fill : self.fill + n] = view[:n]
            self.fill += n
            self.total += n
            view = view[n:]
            if self.fill == len(self.buf):
                self._hand_over()

    def close(self) -> None:
        """Writes what is left (whole pages) and waits for the writer;
        raises what it failed with."""
        if self.buf is not None and self.fill:
            self._hand_over()
        self._stop()
        if self.failure:
            raise self.failure[0]

    def abort(self) -> None:
        """Stops the writer without writing what is left."""
        self._stop()

    def _stop(self) -> None:
        if self.thread.is_alive():
            self.full.put(None)
            self.thread.join()

    def _take(self) -> bytearray:
        while True:
            if self.failure:
                raise self.failure[0]
            try:
                return self.free.get(timeout=0.1)
            except queue.Empty:
                continue

    def _hand_over(self) -> None:
        assert self.buf is not None
        self.full.put((self.next_pgno, self.buf, self.fill))
        self.next_pgno += self.fill // self.page_size
        self.buf, self.fill = None, 0
        if self.failure:
            raise self.failure[0]

    def _run(self) -> None:
        while (item := self.full.get()) is not None:
            first_pgno, buf, fill = item
            try:
                if not self.failure:
                    self._write(first_pgno, memoryview(buf)[: fill - fill % self.page_size])
            except BaseException as exc:  # handed to the decoding thread
                self.failure.append(exc)
            finally:
                self.free.put(buf)

    def _write(self, first_pgno: int, data: memoryview) -> None:
        last = first_pgno + len(data) // self.page_size - 1
        limit = self.limit()
        top = min(last, limit) if limit is not None else last
        if top < first_pgno:
            return
        n = self.native.write_image(self.fd, self.page_size, first_pgno, data, self.written, top)
        self.figures.pages_written += n
        self.figures.applied += n * self.page_size

"""The one binding of the native core's C ABI, ``bottomless.h`` (cffi, ABI
mode). Every call into the library, and every use of cffi, is here; the
other modules (``spool``, ``sqlite_vfs``, ``restore``) use these methods.

The declarations, status codes and flags are read from the header that was
built with the library (``_paths.header_of``), so the binding can never
drift from it. Preprocessor lines are dropped except ``#define NAME
<integer>`` constants, which cffi understands; the status codes are the
header's ``enum bottomless_status``.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass
from typing import Any

import cffi

from bottomless._paths import extension_path, header_of
from bottomless.errors import NativeError
from bottomless.frames import Chain, frame_size

_INT_DEFINE = re.compile(r"^\s*#\s*define\s+[A-Za-z_][A-Za-z0-9_]*\s+-?\d+\b")

# The functions of the SQLite library a Python host links, which the VFS is
# registered through (not bottomless.h: SQLite's own).
_SQLITE_CDEF = """
void *sqlite3_vfs_find(const char *);
int sqlite3_vfs_register(void *, int);
void *sqlite3_database_file_object(const char *);
int sqlite3_libversion_number(void);
void *sqlite3_malloc(int);
"""
_DATABASE_FILE_OBJECT_SINCE = 3031000


def cdef_source(header: str) -> str:
    """The header text reduced to what ``ffi.cdef`` accepts."""
    header = re.sub(r"/\*.*?\*/", " ", header, flags=re.DOTALL)
    lines = []
    for line in header.splitlines():
        if line.lstrip().startswith("#") and not _INT_DEFINE.match(line):
            continue
        lines.append(line)
    return "\n".join(lines)


@dataclass(frozen=True)
class SpoolStats:
    """Unacknowledged backlog and disk use (``bottomless_stats``)."""

    records: int
    bytes: int
    disk_bytes: int
    oldest_unix_ms: int
    last_seq: int
    acked_seq: int
    # Capture problems waiting for the replicator's next snapshot: records
    # after uncaptured commits, and history dropped at the size limit.
    gaps: int = 0
    dropped_seq: int = 0


class Record:
    """One committed transaction in the spool: a cursor over the
    ``bottomless_record`` the core filled in. Its fields are read from that
    struct, and the same struct goes back to the core to read the record's
    pages and to acknowledge it."""

    __slots__ = ("raw", "gap_before")

    def __init__(self, raw: Any, gap_before: bool) -> None:
        self.raw = raw
        # Commits before this one were not captured (the side folder was not
        # writable or full, or dropped history at its size limit): the
        # history in S3 cannot continue across it.
        self.gap_before = gap_before

    @property
    def seq(self) -> int:
        return int(self.raw.seq)

    @property
    def offset(self) -> int:
        return int(self.raw.offset)

    @property
    def next_offset(self) -> int:
        return int(self.raw.next_offset)

    @property
    def unix_ms(self) -> int:
        return int(self.raw.unix_ms)

    @property
    def page_size(self) -> int:
        return int(self.raw.page_size)

    @property
    def db_size(self) -> int:
        return int(self.raw.db_size)

    @property
    def n_pages(self) -> int:
        return int(self.raw.n_pages)

    def __repr__(self) -> str:
        return f"Record(seq={self.seq}, offset={self.offset}, n_pages={self.n_pages}, gap_before={self.gap_before})"


@dataclass(frozen=True)
class RecordRun:
    """Consecutive spool records, by where the first one is: what one batch
    is cut from (``bottomless_spool_frames_run``)."""

    offset: int
    count: int
    page_size: int
    raw_bytes: int  # of their frames, at most
    max_pages: int  # the most pages one of them holds, at most
    stride: int  # bytes from one record to the next

    @classmethod
    def of(cls, records: list[Record]) -> RecordRun:
        first = records[0]
        return cls(
            first.offset,
            len(records),
            first.page_size,
            sum(rec.n_pages for rec in records) * frame_size(first.page_size),
            max(rec.n_pages for rec in records),
            first.next_offset - first.offset,
        )

    def after(self, n: int) -> RecordRun:
        """The records past the first ``n``."""
        assert 0 < n < self.count
        return RecordRun(
            self.offset + n * self.stride,
            self.count - n,
            self.page_size,
            self.raw_bytes,
            self.max_pages,
            self.stride,
        )

    def offset_of(self, i: int) -> int:
        return self.offset + i * self.stride


class OfferStop(enum.Enum):
    """Why an offer ended (``enum bottomless_offer_stop``)."""

    END = 0  # no further complete record yet
    FULL = 1  # the next one would pass the offer's bytes or time span
    GAP = 2  # the next one follows uncaptured commits
    PAGE_SIZE = 3  # the next one has another page size
    SKIP = 4  # the next one's seq does not follow: the spool is damaged


@dataclass(frozen=True)
class Offer:
    """The records the next batch is offered (``bottomless_offer``)."""

    skipped: Record | None  # newest unacknowledged record already in S3
    run: RecordRun | None  # the records offered
    next: Record | None  # the record the offer stopped at
    stop: OfferStop


class Native:
    """The loaded native library with Pythonic wrappers around its calls."""

    def __init__(self, library: str | None = None) -> None:
        self.ffi = cffi.FFI()
        self.path = library or extension_path()
        self.header = header_of(self.path)
        with open(self.header) as f:
            self.ffi.cdef(cdef_source(f.read()))
        self.lib: Any = self.ffi.dlopen(self.path)
        # Scratch the native side fills whole: zeroing it first (as
        # bytearray() and ffi.new() do, holding the GIL) would touch tens of
        # MiB a batch for nothing, while an in-process application waits.
        self._unzeroed = self.ffi.new_allocator(should_clear_after_alloc=False)

    # -- plumbing ---------------------------------------------------------
    def last_error(self) -> str:
        raw = self.lib.bottomless_last_error()
        if raw == self.ffi.NULL:
            return "unknown error"
        text: str = self.ffi.string(raw).decode("utf-8", "replace")
        return text

    def check(self, code: int, what: str) -> int:
        """Return ``code`` when it is OK or DONE, else raise NativeError."""
        if code < 0:
            raise NativeError(code, f"{what}: {self.last_error()}", corrupt=code == self.lib.BOTTOMLESS_CORRUPT)
        return code

    def chain_in(self, chain: Chain) -> Any:
        c = self.ffi.new("bottomless_chain *")
        c.salt1, c.salt2, c.cksum1, c.cksum2 = chain.salt1, chain.salt2, chain.cksum1, chain.cksum2
        return c

    @staticmethod
    def chain_out(c: Any) -> Chain:
        return Chain(int(c.salt1), int(c.salt2), int(c.cksum1), int(c.cksum2))

    # -- core ---------------------------------------------------------------
    def version(self) -> str:
        text: str = self.ffi.string(self.lib.bottomless_version()).decode()
        return text

    def register_vfs(self, sqlite_library: str) -> None:
        """Register the ``bottomless`` VFS into the SQLite library at
        ``sqlite_library`` (already loaded by this process), idempotently."""
        side = cffi.FFI()
        side.cdef(_SQLITE_CDEF)
        sqlite: Any = side.dlopen(sqlite_library)
        fns = self.ffi.new("bottomless_sqlite_fns *")

        def addr(name: str) -> Any:
            return self.ffi.cast("void *", int(side.cast("uintptr_t", side.addressof(sqlite, name))))

        fns.vfs_find = addr("sqlite3_vfs_find")
        fns.vfs_register = addr("sqlite3_vfs_register")
        fns.database_file_object = (
            addr("sqlite3_database_file_object")
            if sqlite.sqlite3_libversion_number() >= _DATABASE_FILE_OBJECT_SINCE
            else self.ffi.NULL
        )
        fns.malloc = addr("sqlite3_malloc")
        self.check(self.lib.bottomless_register_vfs(fns), "registering the bottomless VFS")

    # -- spool --------------------------------------------------------------
    def spool_open(self, db_path: str) -> Any:
        """A handle on the spool of ``db_path`` (close with spool_close)."""
        out = self.ffi.new("bottomless_spool **")
        self.check(self.lib.bottomless_spool_open(db_path.encode(), out), f"opening the spool of {db_path}")
        return out[0]

    def spool_close(self, handle: Any) -> None:
        self.lib.bottomless_spool_close(handle)

    def spool_start(self, handle: Any) -> int:
        out = self.ffi.new("uint64_t *")
        self.check(self.lib.bottomless_spool_start(handle, out), "reading the spool's ack")
        return int(out[0])

    def spool_next(self, handle: Any, offset: int) -> Record | None:
        raw = self.ffi.new("bottomless_record *")
        code = self.check(self.lib.bottomless_spool_next(handle, offset, raw), f"reading the spool at {offset}")
        if code == self.lib.BOTTOMLESS_DONE:
            return None
        return self._record(raw)

    def spool_frames(
        self, handle: Any, rec: Record, first: int, count: int, chain: Chain
    ) -> tuple[bytes, Chain] | None:
        """Pages ``[first, first+count)`` of ``rec`` as WAL frames continuing
        ``chain``; None while SQLite rewrites them (BUSY: try again)."""
        size = count * frame_size(rec.page_size)
        buf = self.ffi.new("uint8_t[]", max(size, 1))
        c = self.chain_in(chain)
        code = self.check(
            self.lib.bottomless_spool_frames(handle, rec.raw, first, count, c, buf, size),
            f"reading the pages of transaction {rec.seq}",
        )
        if code == self.lib.BOTTOMLESS_BUSY:
            return None
        return bytes(self.ffi.buffer(buf, size)), self.chain_out(c)

    def spool_offer(
        self, handle: Any, after_seq: int, page_size: int, max_raw_bytes: int, max_span_ms: int
    ) -> Offer:
        """bottomless_spool_offer: one scan in the core, however many records."""
        out = self.ffi.new("bottomless_offer *")
        self.check(
            self.lib.bottomless_spool_offer(handle, after_seq, page_size, max_raw_bytes, max_span_ms, out),
            "reading the spool",
        )
        run = None
        if out.count:
            first = out.first
            run = RecordRun(
                int(first.offset),
                int(out.count),
                int(first.page_size),
                int(out.raw_bytes),
                int(out.max_pages),
                int(first.next_offset) - int(first.offset),
            )
        stop = OfferStop(int(out.stop))
        return Offer(
            self._record_copy(out.skipped) if out.skipped.seq else None,
            run,
            self._record_copy(out.next) if stop is not OfferStop.END else None,
            stop,
        )

    def _record_copy(self, raw: Any) -> Record:
        own = self.ffi.new("bottomless_record *")
        own[0] = raw
        return self._record(own)

    def _record(self, raw: Any) -> Record:
        return Record(raw, bool(raw.flags & self.lib.BOTTOMLESS_GAP_BEFORE))

    def spool_frames_run(
        self, handle: Any, run: RecordRun, chain: Chain, max_frames: int
    ) -> tuple[memoryview, Chain, int] | None:
        """One batch from the start of ``run``: each page once, as WAL frames
        continuing ``chain``, at most ``max_frames`` distinct pages unless its
        first transaction alone has more, written straight into the returned
        buffer (no per-record call or copy under the GIL); with how many
        records it took. None on BUSY."""
        fsz = frame_size(run.page_size)
        # Room for the batch's pages and one record read beside them (the
        # core copies each frame into its page's place); never more than
        # every frame.
        size = min(run.raw_bytes, (max_frames + run.max_pages) * fsz)
        buf = self._unzeroed("uint8_t[]", size)
        written = self.ffi.new("size_t *")
        taken = self.ffi.new("uint64_t *")
        c = self.chain_in(chain)
        code = self.check(
            self.lib.bottomless_spool_frames_run(
                handle, run.offset, run.count, max_frames, c, buf, size, written, taken
            ),
            f"reading the pages of {run.count} transaction(s) from spool offset {run.offset}",
        )
        if code == self.lib.BOTTOMLESS_BUSY:
            return None
        # The kept frames where the core left them: a view that keeps the
        # scratch alive (of which only what was written is resident), not
        # a copy of tens of MiB made holding the GIL.
        return memoryview(self.ffi.buffer(buf, int(written[0]))), self.chain_out(c), int(taken[0])

    def spool_seq_at(self, handle: Any, salt1: int, salt2: int, mx_frame: int, before_seq: int) -> int | None:
        """bottomless_spool_seq_at; None on BUSY (the spool cannot say yet)."""
        out = self.ffi.new("uint64_t *")
        code = self.check(
            self.lib.bottomless_spool_seq_at(handle, salt1, salt2, mx_frame, before_seq, out),
            "tying a snapshot to the spool",
        )
        return None if code == self.lib.BOTTOMLESS_BUSY else int(out[0])

    def spool_ack(self, handle: Any, rec: Record) -> None:
        self.check(self.lib.bottomless_spool_ack(handle, rec.raw), f"acknowledging {rec.seq}")

    def spool_stats(self, handle: Any) -> SpoolStats:
        out = self.ffi.new("bottomless_stats *")
        self.check(self.lib.bottomless_spool_stats(handle, out), "reading spool stats")
        return SpoolStats(
            int(out.records),
            int(out.bytes),
            int(out.disk_bytes),
            int(out.oldest_unix_ms),
            int(out.last_seq),
            int(out.acked_seq),
            int(out.gaps),
            int(out.dropped_seq),
        )

    def spool_reconcile(self, handle: Any) -> int:
        out = self.ffi.new("uint64_t *")
        self.check(self.lib.bottomless_spool_reconcile(handle, out), "reconciling the spool")
        return int(out[0])

    def bell_arm(self, db_path: str) -> None:
        """The next commit to ``db_path`` writes its side folder's bell,
        which the kernel reports (a commit's record, written through a
        mapping, is not). Look at the spool once more after this, then sleep."""
        self.check(self.lib.bottomless_bell_arm(db_path.encode()), f"arming the bell of {db_path}")

    # -- restore ------------------------------------------------------------
    def wal_checksum(self, data: bytes, chain: Chain, big_endian: bool = False) -> Chain:
        """SQLite's WAL checksum over ``data``, continuing ``chain`` (words
        little-endian, as this library ships them, unless ``big_endian``)."""
        c = self.chain_in(chain)
        self.check(self.lib.bottomless_wal_checksum(data, len(data), int(big_endian), c), "wal checksum")
        return self.chain_out(c)

    def finish_restore(self, db_path: str, page_size: int, db_size: int) -> None:
        """Truncate/extend ``db_path`` to ``db_size`` pages and fsync it."""
        code = self.lib.bottomless_finish_restore(db_path.encode(), page_size, db_size)
        self.check(code, f"finishing restore of {db_path}")


@functools.cache
def load() -> Native:
    """The process-wide binding (loaded once, on first use)."""
    return Native()

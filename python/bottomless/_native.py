"""cffi (ABI mode) binding of the native core's C ABI, ``bottomless.h``.

The declarations are read from the header itself, so the binding can never
drift from it: from ``bottomless/_lib/bottomless.h`` in an installed package
(shipped next to the library), else from ``native/include/bottomless.h`` when
running from a source checkout. Preprocessor lines are dropped except
``#define NAME <integer>`` constants, which cffi understands.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cffi

from bottomless._paths import extension_path
from bottomless.errors import NativeError
from bottomless.frames import Chain

_PKG_DIR = Path(__file__).resolve().parent
_INT_DEFINE = re.compile(r"^\s*#\s*define\s+[A-Za-z_][A-Za-z0-9_]*\s+-?\d+\b")

OK = 0
DONE = 1
BUSY = 2
CORRUPT = -2


def header_path(library: str | None = None) -> Path:
    """Path of the bottomless.h that belongs to ``library`` (default: the
    library ``extension_path()`` picks): the installed copy beside a library
    in ``_lib/``, the checkout's beside one in ``zig-out/``. A header older
    or newer than the library would bind its calls with the wrong arguments."""
    installed = _PKG_DIR / "_lib" / "bottomless.h"
    checkout = _PKG_DIR.parent.parent / "native" / "include" / "bottomless.h"
    lib = Path(library or extension_path()).resolve()
    candidates = [installed, checkout] if lib.parent == installed.parent else [checkout, installed]
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(f"bottomless.h not found (looked in: {looked})")


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
class ApplyResult:
    """Outcome of :meth:`Native.apply_frames`."""

    chain: Chain
    db_size: int
    frames_applied: int


class Native:
    """The loaded native library with Pythonic wrappers around its calls."""

    def __init__(self, library: str | None = None) -> None:
        self.ffi = cffi.FFI()
        self.path = library or extension_path()
        self.ffi.cdef(cdef_source(header_path(self.path).read_text()))
        self.lib: Any = self.ffi.dlopen(self.path)

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
            raise NativeError(code, f"{what}: {self.last_error()}")
        return code

    def _chain_in(self, chain: Chain) -> Any:
        c = self.ffi.new("bottomless_chain *")
        c.salt1, c.salt2, c.cksum1, c.cksum2 = chain.salt1, chain.salt2, chain.cksum1, chain.cksum2
        return c

    @staticmethod
    def _chain_out(c: Any) -> Chain:
        return Chain(int(c.salt1), int(c.salt2), int(c.cksum1), int(c.cksum2))

    # -- API ----------------------------------------------------------------
    def version(self) -> str:
        text: str = self.ffi.string(self.lib.bottomless_version()).decode()
        return text

    def wal_checksum(self, data: bytes, chain: Chain, big_endian: bool = False) -> Chain:
        """SQLite's WAL checksum over ``data``, continuing ``chain`` (words
        little-endian, as this library ships them, unless ``big_endian``)."""
        c = self._chain_in(chain)
        self.check(self.lib.bottomless_wal_checksum(data, len(data), int(big_endian), c), "wal checksum")
        return self._chain_out(c)

    def apply_frames(
        self,
        db_path: str,
        page_size: int,
        frames: bytes,
        chain: Chain,
        verify: bool = True,
        big_endian: bool = False,
    ) -> ApplyResult:
        """Write the pages of WAL ``frames`` up to the last commit frame into
        the file at ``db_path``; ``frames_applied`` says how many that was."""
        c = self._chain_in(chain)
        db_size = self.ffi.new("uint32_t *")
        applied = self.ffi.new("uint64_t *")
        flags = (self.lib.BOTTOMLESS_APPLY_VERIFY if verify else 0) | (
            self.lib.BOTTOMLESS_APPLY_BIG_ENDIAN if big_endian else 0
        )
        code = self.lib.bottomless_apply_frames(
            db_path.encode(),
            page_size,
            frames,
            len(frames),
            flags,
            c,
            db_size,
            applied,
        )
        self.check(code, f"applying frames to {db_path}")
        return ApplyResult(self._chain_out(c), int(db_size[0]), int(applied[0]))

    def finish_restore(self, db_path: str, page_size: int, db_size: int) -> None:
        """Truncate/extend ``db_path`` to ``db_size`` pages and fsync it."""
        code = self.lib.bottomless_finish_restore(db_path.encode(), page_size, db_size)
        self.check(code, f"finishing restore of {db_path}")


@functools.cache
def load() -> Native:
    """The process-wide binding (loaded once, on first use)."""
    return Native()

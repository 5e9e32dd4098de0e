"""Putting the ``bottomless`` VFS into the SQLite that a Python host uses.

Python's ``sqlite3`` module here cannot load extensions, so the VFS is
registered through the C ABI into the very ``libsqlite3`` that ``_sqlite3``
links (found in this process's memory map). apsw bundles its own SQLite and
can load extensions, so it takes the ordinary extension path.
"""

from __future__ import annotations

import ctypes.util
import logging
import sqlite3
from pathlib import Path

from bottomless._native import Native, load
from bottomless._paths import extension_path

log = logging.getLogger(__name__)

VFS_NAME = "bottomless"


def _mapped_sqlite_library() -> str | None:
    """Path of the libsqlite3 mapped into this process, if any (Linux)."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return None
    for line in maps.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 6 and "libsqlite3" in Path(parts[-1]).name:
            return parts[-1]
    return None


def python_sqlite_library() -> str:
    """The SQLite library Python's ``sqlite3`` module runs on."""
    sqlite3.connect(":memory:").close()  # make sure _sqlite3 (and its lib) is loaded
    path = _mapped_sqlite_library() or ctypes.util.find_library("sqlite3")
    if not path:
        raise RuntimeError(
            "cannot find the SQLite library of Python's sqlite3 module; use apsw (bottomless.register_apsw) instead"
        )
    return path


def register_python_sqlite(native: Native | None = None) -> None:
    """Register the VFS into Python's ``sqlite3`` (idempotent)."""
    (native or load()).register_vfs(python_sqlite_library())


def register_apsw() -> None:
    """Load the extension into apsw's SQLite (registers the VFS; idempotent)."""
    import apsw  # optional dependency

    if VFS_NAME in apsw.vfs_names():
        return
    conn = apsw.Connection(":memory:")
    conn.enable_load_extension(True)
    conn.load_extension(extension_path())
    conn.close()

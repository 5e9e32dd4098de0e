"""Files the replicator writes in a database's side folder take the database
file's permissions, as the native capture's do (native/src/sidefolder.zig)
and as SQLite's own -wal and -shm do: the same mode bits and, when the
process is root, the same owner and group. So a replicator run as root for
a database another user writes leaves files that user can still write."""

from __future__ import annotations

import os
from pathlib import Path

SUFFIX = "-bottomless"


def database_of(side_folder: str | Path) -> str:
    """The database file a side folder belongs to."""
    name = str(side_folder).rstrip("/")
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name


def ensure_folder(side_folder: str | Path) -> None:
    """Creates the side folder with the database's permissions if missing
    (x wherever the database file has r, so it can be entered)."""
    path = Path(side_folder)
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True)
    try:
        st = os.stat(database_of(path))
    except FileNotFoundError:
        return
    mode = st.st_mode & 0o777
    _adopt(path, st, mode | ((mode & 0o444) >> 2))


def adopt(path: str | Path, side_folder: str | Path) -> None:
    """Gives a file just written in the side folder the database's mode
    and, as root, its owner. Failing that is not an error: the file works."""
    try:
        st = os.stat(database_of(side_folder))
    except FileNotFoundError:
        return
    _adopt(Path(path), st, st.st_mode & 0o777)


def _adopt(path: Path, db: os.stat_result, mode: int) -> None:
    try:
        now = os.stat(path)
        if os.geteuid() == 0 and (now.st_uid, now.st_gid) != (db.st_uid, db.st_gid):
            os.chown(path, db.st_uid, db.st_gid)
        if now.st_mode & 0o777 != mode:
            os.chmod(path, mode)
    except OSError:
        pass

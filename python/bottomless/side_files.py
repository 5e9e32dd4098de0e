"""The side folder ``<db>-bottomless/``: the one owner of its name and of
the name of every file in it. Every other module (and every test) asks here.

Capture (native code, ``native/src/spool.zig``) writes ``spool``, ``pages``,
``pages.lock``, ``sealed``, ``ack`` and ``bell``; Zig spells those names itself, and
``integration/test_side_folder.py`` lists a real folder to check they match
``CAPTURE_FILES``. The rest is the replicator's.

Files the replicator writes there take the database file's permissions, as
the native capture's do (native/src/sidefolder.zig) and as SQLite's own
-wal and -shm do: the same mode bits and, when the process is root, the same
owner and group. So a replicator run as root for a database another user
writes leaves files that user can still write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SUFFIX = "-bottomless"

# Written by capture (native code).
SPOOL = "spool"  # one record per committed transaction
PAGES = "pages"  # copies of WAL frames made before SQLite reused them
PAGES_LOCK = "pages.lock"  # orders appends to pages
SEALED = "sealed"  # where a reconciled spool may end
ACK = "ack"  # what S3 holds (written by the replicator through the C ABI)
BELL = "bell"  # wakes a replicator sleeping on filesystem notifications (armed through the C ABI)
CAPTURE_FILES = (SPOOL, PAGES, PAGES_LOCK, SEALED, ACK, BELL)

# Written by the replicator.
STATE = "replicator.json"  # what this replicator has put in S3 (state.py)
ENCRYPTION = "encryption.json"  # which key the current generation uses (key_ids.py)
SNAPSHOT_REQUEST = "snapshot.request"  # bottomless-cli snapshot asks a running replicator (snapshot_request.py)
LOCK = "replicator.lock"  # one replicator per database (lock.py)
RESTORED_FROM = "restored-from"  # a restore put this file in place (restore_marker.py)
LOG = "replicator.log"  # a detached replicator's output (daemon.py)
PROBLEM = "replicator.problem"  # why the replicator cannot ship (health.py)
SERVER_FEATURES = "s3-server.json"  # what the S3 server honours (server_features.py)
STARTING = "generation.starting"  # a generation whose start is under way here (generation_start.py)
REPLICATOR_FILES = (STATE, ENCRYPTION, SNAPSHOT_REQUEST, LOCK, RESTORED_FROM, LOG, PROBLEM, SERVER_FEATURES, STARTING)


def folder_of(db_path: str | Path) -> str:
    """The side folder of the database file ``db_path``."""
    return f"{db_path}{SUFFIX}"


def database_of(side_folder: str | Path) -> str:
    """The database file a side folder belongs to."""
    name = str(side_folder).rstrip("/")
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name


@dataclass(frozen=True)
class SideFolder:
    """Paths inside one side folder."""

    path: str

    @classmethod
    def of(cls, db_path: str | Path) -> SideFolder:
        return cls(folder_of(db_path))

    @property
    def database(self) -> str:
        return database_of(self.path)

    def file(self, name: str) -> Path:
        return Path(self.path) / name

    @property
    def spool(self) -> Path:
        return self.file(SPOOL)

    @property
    def state(self) -> Path:
        return self.file(STATE)

    @property
    def encryption(self) -> Path:
        return self.file(ENCRYPTION)

    @property
    def snapshot_request(self) -> Path:
        return self.file(SNAPSHOT_REQUEST)

    @property
    def lock(self) -> Path:
        return self.file(LOCK)

    @property
    def restored_from(self) -> Path:
        return self.file(RESTORED_FROM)

    @property
    def log(self) -> Path:
        return self.file(LOG)

    @property
    def problem(self) -> Path:
        return self.file(PROBLEM)

    @property
    def server_features(self) -> Path:
        return self.file(SERVER_FEATURES)

    @property
    def starting(self) -> Path:
        return self.file(STARTING)

    def ensure(self) -> None:
        ensure_folder(self.path)

    def adopt(self, path: str | Path) -> None:
        adopt(path, self.path)


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

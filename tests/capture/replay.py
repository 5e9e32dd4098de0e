"""Replays a database's spool onto a copy of its starting file.

The proof of capture: at any commit, base + every spooled transaction, in
order, must be the live database.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from bottomless._native import load
from bottomless.frames import chain_from_seed, frame_size
from bottomless.restore_native import PageSet, RestoreNative
from bottomless.spool import Spool
from tests.capture.hosts import content


class Replayer:
    """Applies new spool records to ``target`` as they appear."""

    def __init__(self, db_path: Path, base: Path, target: Path) -> None:
        self.db_path = db_path
        self.target = target
        shutil.copyfile(base, target)
        self.offset = 0
        self.seq = 0
        self.page_size = 0
        self.db_size = -1
        self.native = load()
        self.restore = RestoreNative(self.native)
        self.chain = chain_from_seed(7, 11)

    def catch_up(self) -> int:
        """Applies every record not applied yet; returns how many."""
        n = 0
        with Spool(str(self.db_path)) as spool:
            for rec in spool.records(self.offset):
                assert rec.seq == self.seq + 1, f"spool sequence jumps from {self.seq} to {rec.seq}"
                frames, _ = spool.frames(rec, self.chain)
                self._apply(rec.page_size, frames, rec.db_size)
                self.page_size, self.db_size = rec.page_size, rec.db_size
                self.seq, self.offset = rec.seq, rec.next_offset
                n += 1
        if n:
            self.native.finish_restore(str(self.target), self.page_size, self.db_size)
        return n

    def _apply(self, page_size: int, frames: bytes, db_size: int) -> None:
        """Checks a transaction's frames from the chain so far (as a restore
        does), then writes the newest image of each of its pages."""
        last_commit, size, self.chain = self.restore.check_frames(page_size, frames, True, False, self.chain)
        assert last_commit == len(frames) // frame_size(page_size) - 1, "a spooled transaction ends at its commit"
        assert size == db_size
        fd = os.open(self.target, os.O_RDWR)
        try:
            self.restore.write_newest(fd, page_size, frames, PageSet(), size)
        finally:
            os.close(fd)


def replayed_content(path: Path) -> list[Any]:
    """Content of a replayed database file, after its integrity check.

    Works on a private copy so opening it (which may create -wal/-shm files)
    never touches the file being replayed into.
    """
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "copy.db"
        shutil.copyfile(path, copy)
        conn = sqlite3.connect(copy)
        try:
            check = conn.execute("PRAGMA integrity_check").fetchall()
            assert check == [("ok",)], f"integrity check of the replayed database: {check}"
            return content(lambda q: conn.execute(q).fetchall())
        finally:
            conn.close()

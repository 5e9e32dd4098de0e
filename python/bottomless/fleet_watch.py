"""Wake-ups for the multi-database replicator (fleet.py) from the kernel:
one inotify descriptor over every database's side folder (capture rings
``bell`` at the first commit after the replicator armed it, native/src/bell.zig;
``bottomless-cli snapshot`` writes ``snapshot.request``) and over every watched directory (databases created,
deleted, renamed). One thread reads it, so a thousand idle databases cost
no polling at all.

Where inotify is missing (macOS, or ``inotify_simple`` not installed) the
watcher is inert and says so (``available``): the fleet then rechecks
idle databases and rescans directories on a timer instead.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from bottomless.side_files import BELL, SNAPSHOT_REQUEST, SPOOL, SUFFIX

log = logging.getLogger(__name__)

# The bell rings for commits (written through a mapping, the spool's own
# writes are not all reported); the spool itself when a connection starts it.
_SIDE_NAMES = frozenset((BELL, SPOOL, SNAPSHOT_REQUEST))
_COMPANIONS = ("-wal", "-shm", "-journal", SUFFIX)

try:
    import inotify_simple  # type: ignore[import-untyped]
except ImportError:  # not Linux
    inotify_simple = None


class Watcher:
    """Calls ``on_spool(db_path)`` when a watched database's spool (or
    snapshot request) is written, ``on_folder()`` when a watched directory
    gains or loses an entry that may be a database, and ``on_overflow()``
    when the kernel dropped events (then every database must be looked at)."""

    def __init__(
        self,
        on_spool: Callable[[str], None],
        on_folder: Callable[[], None],
        on_overflow: Callable[[], None],
    ) -> None:
        self._on_spool = on_spool
        self._on_folder = on_folder
        self._on_overflow = on_overflow
        self._lock = threading.Lock()
        self._by_wd: dict[int, tuple[bool, str]] = {}  # wd -> (is a side folder, db path or folder)
        self._wd_of: dict[str, int] = {}
        self._known: Callable[[str], bool] = lambda path: False
        self._covered: Callable[[str], bool] = lambda path: True
        self._inotify: Any = None
        self._thread: threading.Thread | None = None
        self._closed = False
        if inotify_simple is None:
            return
        try:
            self._inotify = inotify_simple.INotify()
        except OSError as exc:  # too many instances for this user
            log.warning("no filesystem notifications (%s); rechecking databases on a timer", exc)
            return
        self._thread = threading.Thread(target=self._read, name="bottomless:watch", daemon=True)
        self._thread.start()

    @property
    def available(self) -> bool:
        return self._inotify is not None

    def judge_names(self, known: Callable[[str], bool], covered: Callable[[str], bool]) -> None:
        """``known(path)``: a database already shipped (writes to it and its
        companions are not news for the folder watch); ``covered(path)``: a
        file the sources would ship if it were a database (nothing else in
        a watched folder is news, however busy)."""
        self._known = known
        self._covered = covered

    def watch_database(self, db_path: str) -> None:
        self._add(f"{db_path}{SUFFIX}", side=True, key=db_path)

    def watch_folder(self, folder: str) -> None:
        self._add(folder, side=False, key=folder)

    def forget(self, key: str) -> None:
        """Stop watching a database's side folder (by its db path) or a folder."""
        with self._lock:
            path = f"{key}{SUFFIX}" if f"{key}{SUFFIX}" in self._wd_of else key
            wd = self._wd_of.pop(path, None)
            if wd is None:
                return
            self._by_wd.pop(wd, None)
        try:
            self._inotify.rm_watch(wd)
        except OSError:
            pass  # already gone with its folder

    def _add(self, path: str, side: bool, key: str) -> None:
        if self._inotify is None:
            return
        flags = inotify_simple.flags
        if side:
            mask = flags.MODIFY | flags.CLOSE_WRITE | flags.CREATE | flags.MOVED_TO
        else:
            mask = flags.CREATE | flags.DELETE | flags.MOVED_FROM | flags.MOVED_TO | flags.MODIFY | flags.CLOSE_WRITE
        with self._lock:
            if path in self._wd_of:
                return
            try:
                wd = self._inotify.add_watch(path, mask)
            except OSError as exc:
                # Gone already, unreadable, or out of watches: the timer still covers it.
                log.debug("cannot watch %s: %s", path, exc)
                return
            self._wd_of[path] = wd
            self._by_wd[wd] = (side, key)

    def close(self) -> None:
        self._closed = True
        if self._inotify is not None:
            try:
                self._inotify.close()
            except OSError:
                pass

    def _read(self) -> None:
        flags = inotify_simple.flags
        while not self._closed:
            try:
                events = self._inotify.read(timeout=1000)
            except (OSError, ValueError):
                if self._closed:
                    return
                raise
            folder_changed = False
            for event in events:
                if event.mask & flags.Q_OVERFLOW:
                    self._on_overflow()
                    continue
                with self._lock:
                    watched = self._by_wd.get(event.wd)
                    if event.mask & flags.IGNORED:
                        self._by_wd.pop(event.wd, None)
                        if watched is not None:
                            path = f"{watched[1]}{SUFFIX}" if watched[0] else watched[1]
                            self._wd_of.pop(path, None)
                if watched is None:
                    continue
                side, key = watched
                if side:
                    if event.name in _SIDE_NAMES:
                        self._on_spool(key)
                elif self._is_news(key, event.name, event.mask):
                    folder_changed = True
            if folder_changed:
                self._on_folder()

    def _is_news(self, folder: str, name: str, mask: int) -> bool:
        """Whether an event in a watched folder may add or drop a database.
        Writes to a database already shipped (and its -wal, -shm, side
        folder) are its own business, or every commit would be a rescan."""
        if not name:
            return False
        flags = inotify_simple.flags
        base = name
        for suffix in _COMPANIONS:
            if name.endswith(suffix):
                base = name[: -len(suffix)]
                break
        path = os.path.join(folder, base)
        if mask & flags.ISDIR:
            return not name.endswith(SUFFIX)  # a sub-folder of a recursive dir
        if not self._covered(path):
            return False
        if mask & (flags.MODIFY | flags.CLOSE_WRITE):
            return not self._known(path)
        if mask & flags.CREATE and base != name and self._known(path):
            return False  # a known database's -wal or -shm appearing
        return True

"""One replicator per database, across processes: an flock on a file in the
spool folder. The kernel drops it when the holder dies, so a crashed
replicator never blocks the next one."""

from __future__ import annotations

import fcntl
import os
import time
from types import TracebackType

from bottomless.side_files import SideFolder, adopt, ensure_folder


class ReplicatorLock:
    def __init__(self, spool_dir: str) -> None:
        ensure_folder(spool_dir)
        self.spool_dir = spool_dir
        self.path = SideFolder(spool_dir).lock
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float = 0.0) -> bool:
        """Try to take the lock, waiting up to ``timeout`` seconds."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        adopt(self.path, self.spool_dir)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
            return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ReplicatorLock:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def is_locked(spool_dir: str) -> bool:
    """Whether some process is replicating this database right now."""
    path = SideFolder(spool_dir).lock
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def holder_pid(spool_dir: str) -> int | None:
    """The pid the lock's holder wrote into it (None when unreadable or blank)."""
    try:
        text = SideFolder(spool_dir).lock.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None

"""What keeps a database's replicator from shipping, told to other processes.

The replicator of a database may run in another process (a daemon, or one
that a shell started). When it cannot ship (the endpoint is down, the
credentials are refused), it says why in a small file beside the spool, so
``sync``, ``wait_durable`` and ``status`` in any process can report the real
cause rather than a bare timeout. Written only when the problem changes, so
a retrying replicator does not write on every attempt.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bottomless.side_files import SideFolder, adopt


@dataclass(frozen=True)
class Problem:
    pid: int
    message: str
    since: float  # unix time the problem was first seen
    stopped: bool  # the replicator gave up (retrying cannot fix it)


def _path(spool_dir: str) -> Path:
    return SideFolder(spool_dir).problem


def read_problem(spool_dir: str) -> Problem | None:
    """The problem the database's replicator last reported, if any."""
    try:
        raw = json.loads(_path(spool_dir).read_text())
        return Problem(int(raw["pid"]), str(raw["message"]), float(raw["since"]), bool(raw["stopped"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class ProblemReporter:
    """The replicator's side: report a problem, or that it is gone."""

    def __init__(self, spool_dir: str) -> None:
        self._spool_dir = spool_dir
        self._current: tuple[str, bool] | None = None

    def report(self, message: str, stopped: bool = False) -> None:
        if self._current == (message, stopped):
            return
        since = time.time()
        previous = read_problem(self._spool_dir)
        if previous is not None and previous.message == message and previous.pid == os.getpid():
            since = previous.since
        problem = Problem(os.getpid(), message, since, stopped)
        path = _path(self._spool_dir)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(asdict(problem)))
            adopt(tmp, self._spool_dir)
            os.replace(tmp, path)
        except OSError:
            return  # the folder is unwritable: the log still says it
        self._current = (message, stopped)

    def clear(self) -> None:
        if self._current is None:
            return
        try:
            _path(self._spool_dir).unlink(missing_ok=True)
        except OSError:
            return
        self._current = None


def describe_stall(spool_dir: str, replicator_running: bool) -> str:
    """Why commits are not reaching S3, for a timeout message. A replicator
    that is retrying may have let go of its lock between attempts."""
    problem = read_problem(spool_dir)
    if problem is not None and not problem.stopped and alive(problem.pid):
        replicator_running = True
    if replicator_running:
        if problem is not None and not problem.stopped:
            age = max(0.0, time.time() - problem.since)
            return f"the replicator shipping it (pid {problem.pid}) cannot ship, for {age:.0f}s now: {problem.message}"
        return "a replicator is running but has not shipped them yet"
    hint = "start one with `bottomless-cli -d DATABASE replicate`"
    if problem is not None:
        return f"no replicator is running (the last one stopped: {problem.message}); {hint}"
    return f"no replicator is running; {hint}"


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

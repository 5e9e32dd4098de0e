"""The replicator behind ``connect()``: a child process, so its Python work
(boto3's requests, the loop, saving state) never holds the writer's GIL.

It tells this process everything through the side folder, as a replicator
of another process would: what S3 holds through the spool's ack
(``wait_durable``), why it stopped through ``replicator.problem``
(health.py). A child that dies without saying why is noticed too, so a
caller's ``flush()`` fails with a clear error instead of waiting out its
timeout. SIGUSR1 asks it to ship now; SIGTERM to ship what is left and exit.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time

from bottomless.config import Config
from bottomless.daemon import replicate_command, replicator_env
from bottomless.errors import (
    BadCredentials,
    BottomlessError,
    ConfigError,
    DivergedError,
    NoSuchBucket,
    S3Error,
    UnsupportedServer,
)
from bottomless.fleet_coverage import covering
from bottomless.health import Problem, describe_stall, read_problem
from bottomless.lease import FencedError
from bottomless.lock import holder_pid, is_locked
from bottomless.replicator import wait_durable
from bottomless.side_files import SideFolder, ensure_folder

log = logging.getLogger(__name__)

# The errors a stopped replicator reports by name, rebuilt here so a caller
# can tell a fenced writer from refused credentials (anything else arrives as
# a BottomlessError with the replicator's message).
_KINDS: dict[str, type[BottomlessError]] = {
    cls.__name__: cls
    for cls in (FencedError, DivergedError, ConfigError, S3Error, BadCredentials, NoSuchBucket, UnsupportedServer)
}

# Extra time a stopping child gets beyond its own shutdown limit (to start
# and to exit) before it is killed; the spool keeps whatever it did not ship.
_EXIT_GRACE_SECS = 10.0


def rebuild(problem: Problem) -> BottomlessError:
    """The error a stopped replicator reported, as its own class."""
    return _KINDS.get(problem.kind, BottomlessError)(problem.message)


class ReplicatorProcess:
    """One connection's replicator, running as ``bottomless-cli replicate``
    in a child process until this process exits (or stop())."""

    def __init__(self, db_path: str, config: Config, proc: subprocess.Popen[bytes] | None) -> None:
        self.db_path = os.path.abspath(db_path)
        self.config = config
        self.side = SideFolder.of(self.db_path)
        self._proc = proc
        self._error: BottomlessError | None = None
        self._stopped = False

    @classmethod
    def spawn(cls, db_path: str, config: Config) -> ReplicatorProcess:
        """Start the child (none when a running multi-database replicator
        already covers the database). Its output goes to the side folder's
        log; it runs in a session of its own, so the writer's Ctrl-C is the
        writer's to handle."""
        if covering(db_path) is not None:
            return cls(db_path, config, None)
        ensure_folder(SideFolder.of(db_path).path)
        with open(SideFolder.of(db_path).log, "ab") as log:
            proc = subprocess.Popen(
                replicate_command(db_path, os.getpid(), detach=False),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=replicator_env(config), start_new_session=True,
            )  # fmt: skip
        return cls(db_path, config, proc)

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def error(self) -> BottomlessError | None:
        """Why replication stopped (None while it works or retries): the
        error the replicator reported, or that it died without a word."""
        if self._error is None:
            self._error = self._failure()
        return self._error

    def _failure(self) -> BottomlessError | None:
        proc = self._proc
        exited = proc is not None and proc.poll() is not None
        problem = read_problem(self.side.path)  # after poll(): a child says why before it exits
        if problem is not None and problem.stopped and (proc is None or problem.pid == proc.pid):
            return rebuild(problem)
        if exited and not self._stopped and not is_locked(self.side.path):
            assert proc is not None
            return BottomlessError(
                f"the replicator of {self.db_path} (pid {proc.pid}) exited with status {proc.returncode} "
                f"and nothing ships it now; its log is {self.side.log}"
            )
        return None

    def wake(self) -> None:
        """Ask the child to ship now rather than when its batch is due: only
        once it holds the lock (before, it would not ship anyway, and it may
        not yet handle SIGUSR1, whose default is to exit)."""
        proc = self._proc
        if proc is not None and proc.poll() is None and holder_pid(self.side.path) == proc.pid:
            proc.send_signal(signal.SIGUSR1)

    def flush(self, timeout: float = 30.0) -> None:
        """Return once every commit made before the call is in S3."""
        if self.error is not None:
            raise self.error
        deadline = time.monotonic() + timeout
        # Until a replicator has started a generation, commits may predate
        # capture (a database put in WAL mode just now): durable means "in
        # its snapshot", which the state file records.
        while not (self.side.state.exists() and is_locked(self.side.path)):
            if self.error is not None:
                raise self.error
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{self.db_path} has no generation in S3 yet after {timeout:.0f}s: "
                    + describe_stall(self.side.path, is_locked(self.side.path))
                )
            time.sleep(0.02)
        self.wake()
        wait_durable(self.db_path, timeout=max(0.0, deadline - time.monotonic()), failed=lambda: self.error)

    def stop(self) -> None:
        """Ship what is left (within the configured shutdown time), then
        have the child exit; wait for it."""
        if self._stopped:
            return
        proc = self._proc
        if proc is None or proc.poll() is not None:
            self._stopped = True
            return
        # flush() first, not SIGTERM alone: a child still starting up would
        # die of it (its handler is not installed yet) with nothing shipped.
        try:
            self.flush(self.config.shutdown_timeout_secs)
        except (BottomlessError, TimeoutError) as exc:
            log.warning("closing %s with commits not yet in S3 (the spool keeps them): %s", self.db_path, exc)
        self._stopped = True
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(self.config.shutdown_timeout_secs + _EXIT_GRACE_SECS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

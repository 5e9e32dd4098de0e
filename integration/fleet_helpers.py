"""Helpers of test_fleet: the multi-database replicator in a subprocess of
the real CLI, writers, scraping its metrics, waiting for the spools."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bottomless.spool import Spool

WRITER = str(Path(__file__).with_name("fleet_writer.py"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FleetProcess:
    """``bottomless-cli replicate ARGS`` running in the foreground. Each one
    started is put in ``started`` (the ``fleets`` fixture kills what a
    failed test left running)."""

    started: list[FleetProcess] = []

    def __init__(self, env: dict[str, str], log: Path, *args: str, user: list[str] | None = None) -> None:
        self.log = log
        self._out = open(log, "a")
        self.proc = subprocess.Popen(
            [*(user or []), sys.executable, "-m", "bottomless_cli", "replicate", *args],
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        FleetProcess.started.append(self)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, and its exit status."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._out.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._out.close()

    @classmethod
    def kill_all(cls) -> None:
        for fleet in cls.started:
            fleet.kill()
        cls.started.clear()

    def output(self) -> str:
        return self.log.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """``{sample name: {labels: value}}`` from ``/metrics``, parsed with
    prometheus_client's own parser."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def scrape_or_nothing(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """scrape(), or nothing while the server is not listening yet."""
    try:
        return scrape(port)
    except OSError:
        return {}


def db_series(metrics: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str) -> set[str]:
    """The ``database`` labels of one per-database sample name."""
    return {dict(labels)["database"] for labels in metrics.get(name, {})}


def wait_until(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    fleet: FleetProcess | None = None,
    detail: Callable[[], str] = str,
) -> None:
    """Until ``check()``; else fail saying ``what`` and ``detail()``, with
    the replicator's log and its threads' stacks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if fleet is not None and not fleet.alive():
            pytest.fail(f"the replicator exited ({fleet.proc.returncode}) while waiting for {what}:\n{fleet.output()}")
        time.sleep(0.2)
    tail = ""
    if fleet is not None:
        fleet.signal(signal.SIGUSR1)  # its threads' stacks, into its log
        time.sleep(1)
        tail = fleet.output()[-12000:]
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} {detail()}\n{tail}")


def shipped(db: Path) -> bool:
    """Every transaction in the spool of ``db`` is acknowledged (in S3)."""
    try:
        with Spool(str(db)) as spool:
            stats = spool.stats()
    except Exception:
        return False
    return stats.acked_seq >= stats.last_seq


class Writers:
    """Writer processes, each on its share of the databases; collects what
    each reports committed."""

    def __init__(
        self, env: dict[str, str], shares: list[list[Path]], count: int, seed: int, pause: float = 0.0
    ) -> None:
        self.committed: dict[str, set[int]] = {}
        self._lock = threading.Lock()
        self.procs = [
            subprocess.Popen(
                [sys.executable, WRITER, str(count), str(seed + i), str(pause), *map(str, share)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i, share in enumerate(shares)
        ]
        self._readers = [threading.Thread(target=self._read, args=(p,), daemon=True) for p in self.procs]
        for reader in self._readers:
            reader.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "committed":
                with self._lock:
                    self.committed.setdefault(parts[1], set()).add(int(parts[2]))

    def total(self) -> int:
        with self._lock:
            return sum(len(ids) for ids in self.committed.values())

    def wait(self, timeout: float = 300) -> None:
        for proc in self.procs:
            proc.wait(timeout)
            assert proc.stderr is not None
            err = proc.stderr.read()
            assert proc.returncode == 0, f"a writer failed ({proc.returncode}):\n{err}"
        for reader in self._readers:
            reader.join(10)


def as_nobody() -> list[str]:
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else []

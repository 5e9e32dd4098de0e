"""Restore and verify figures: a progress bar while they run (on a
terminal), then one summary line or, with ``--json``, the same figures as
JSON."""

from __future__ import annotations

import json
import sys
import time
from types import TracebackType
from typing import Any, TextIO

import click

from bottomless.restore import RestoreResult
from bottomless.restore_figures import Figures

REDRAW = 0.1  # seconds between redraws


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


class RestoreProgress:
    """A ``restore(progress=...)`` callback drawing one status line on a
    terminal: bytes fetched and applied, rate, time left."""

    def __init__(self, label: str, enabled: bool | None = None, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._drawn = 0.0
        self._width = 0

    def line(self, f: Figures) -> str:
        share = f.fetched / f.fetch_total if f.fetch_total else 0.0
        bar = ("#" * int(share * 24)).ljust(24, "-")
        eta = f.eta
        left = f"{eta:4.0f} s left" if eta is not None else "   ? s left"
        applied = mib(f.applied) + (f" of {mib(f.db_bytes)}" if f.db_bytes else "")
        return (
            f"{self.label} [{bar}] fetched {mib(f.fetched)} of {mib(f.fetch_total)} "
            f"({f.objects_done}/{f.objects_total} objects), applied {applied}, "
            f"{f.fetch_rate / 2**20:,.1f} MiB/s, {left}"
        )

    def __call__(self, figures: Figures) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._drawn < REDRAW:
            return
        self._drawn = now
        text = self.line(figures)
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def __enter__(self) -> RestoreProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()


def figures_of(result: RestoreResult) -> dict[str, Any]:
    """The figures of a finished restore, as ``--json`` prints them."""
    out: dict[str, Any] = {
        "generation": str(result.generation),
        "generations": [str(g) for g in result.generations],
        "path": result.path,
        "page_size": result.page_size,
        "pages": result.db_size,
        "batches_applied": result.batches_applied,
        "frames_applied": result.frames_applied,
        "checksums_verified": result.checksums_verified,
        "uncommitted_frames": result.uncommitted_frames,
        "integrity": result.integrity,
    }
    if result.figures is not None:
        out.update(result.figures.as_dict())
    return out


def summary(verb: str, db_name: str, result: RestoreResult) -> str:
    """One line: what was restored, how big, how fast, what was checked."""
    f = result.figures
    size = result.db_size * result.page_size
    speed = ""
    if f is not None:
        speed = (
            f" in {f.seconds:.2f} s ({f.as_dict()['mib_per_s']} MiB/s); fetched {mib(f.fetched)} "
            f"in {f.objects_done} objects"
        )
    return (
        f"{verb} {db_name} generation {result.generation}: {mib(size)} ({result.db_size} pages){speed}; "
        f"{result.frames_applied} WAL frames applied, {result.checksums_verified} checksums verified, "
        f"integrity {result.integrity}"
    )


def print_json(result: RestoreResult) -> None:
    click.echo(json.dumps(figures_of(result), indent=2))

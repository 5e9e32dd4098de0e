"""Requests to a running replicator, made by file in the side folder (the
replicator may run in another process): ``bottomless-cli snapshot`` asks for
a new generation by creating ``snapshot.request``; the replicator removes
it once the new generation exists."""

from __future__ import annotations

from bottomless.side_files import SideFolder


def request_snapshot(side: SideFolder) -> None:
    side.snapshot_request.touch()


def snapshot_requested(side: SideFolder) -> bool:
    return side.snapshot_request.exists()


def clear_snapshot_request(side: SideFolder) -> None:
    side.snapshot_request.unlink(missing_ok=True)

"""The marker a restore leaves in the side folder: this file now holds a
generation of the bucket on purpose, so the replicator continues from it in
a new generation whose parent is the restored one (``start_decision.py``)."""

from __future__ import annotations

import shutil

from bottomless.side_files import SideFolder


def mark_restored(db_path: str, generation: str) -> None:
    """``db_path`` now holds ``generation``: forget the spool of the database
    it replaced (it describes nothing that still exists) and let the
    replicator continue from the restored state in a new generation."""
    side = SideFolder.of(db_path)
    shutil.rmtree(side.path, ignore_errors=True)
    side.ensure()
    side.restored_from.write_text(generation)


def restored_from(db_path: str) -> str | None:
    """The generation this database was restored from, if the replicator has
    not moved on from it yet."""
    try:
        return SideFolder.of(db_path).restored_from.read_text().strip()
    except FileNotFoundError:
        return None


def forget_restore(db_path: str) -> None:
    SideFolder.of(db_path).restored_from.unlink(missing_ok=True)

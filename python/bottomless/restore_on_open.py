"""Opening a missing or empty database restores it from S3 first.

The restored file equals the bucket's newest generation, so the replicator
may then continue from it: a marker in the side folder says so
(``restore_marker.py``), and the next generation records the restored one
as its parent.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bottomless import catalog, layout
from bottomless.config import Config
from bottomless.restore import RestoreResult, restore
from bottomless.restore_marker import mark_restored
from bottomless.s3 import S3Store

log = logging.getLogger(__name__)


def needs_restore(db_path: str) -> bool:
    path = Path(db_path)
    return not path.exists() or path.stat().st_size == 0


def restore_if_missing(db_path: str, config: Config, store: S3Store) -> RestoreResult | None:
    """Restore ``db_path`` from the newest generation when it is missing or
    empty and the bucket has one; None when there was nothing to do."""
    if not needs_restore(db_path):
        return None
    db_name = config.database_id or layout.db_name_for_path(db_path)
    store.ensure_bucket()
    if not catalog.list_generations(store, db_name):
        return None
    for suffix in ("-wal", "-shm"):
        Path(db_path + suffix).unlink(missing_ok=True)
    result = restore(store, db_name, db_path, verify=config.verify_crc, cipher=config.cipher())
    mark_restored(db_path, str(result.generation))
    log.info("restored %s from generation %s (%d pages)", db_path, result.generation, result.db_size)
    return result

"""Verify a backup by restoring it into a scratch file."""

from __future__ import annotations

import tempfile
import uuid
from datetime import datetime
from pathlib import Path

from bottomless.restore import Progress, RestoreResult, Tuning, restore
from bottomless.s3 import S3Store


def verify(
    store: S3Store,
    db_name: str,
    generation: uuid.UUID | None = None,
    until: datetime | None = None,
    progress: Progress | None = None,
    tuning: Tuning | None = None,
) -> RestoreResult:
    """Restore (checksums always verified) into a temporary directory, check
    integrity, and throw the result away. Raises RestoreError on any fault."""
    with tempfile.TemporaryDirectory(prefix="bottomless-verify-") as scratch:
        target = str(Path(scratch) / "verify.db")
        return restore(
            store,
            db_name,
            target,
            generation=generation,
            until=until,
            verify=True,
            progress=progress,
            tuning=tuning,
        )

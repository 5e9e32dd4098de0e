"""What the replicator of one database has put in S3, kept beside the spool.

Written atomically after every upload and before the spool is acknowledged,
so after a crash the replicator resumes at the exact frame and checksum
where the bucket ends (a batch uploaded but not yet recorded here is
re-uploaded under the same key: batch keys are deterministic).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from bottomless.frames import Chain
from bottomless.side_files import SideFolder, adopt


@dataclass(frozen=True)
class ReplicatorState:
    db_name: str
    generation: str
    page_size: int
    next_frame: int  # frame number the next batch starts with
    chain: tuple[int, int, int, int]  # salt1, salt2, cksum1, cksum2 after the last frame shipped
    shipped_seq: int  # newest spool record in S3 (snapshot or batch)
    frames_since_snapshot: int
    bucket: str
    endpoint: str

    @property
    def generation_id(self) -> uuid.UUID:
        return uuid.UUID(self.generation)

    def chain_state(self) -> Chain:
        return Chain(*self.chain)


def state_path(spool_dir: str) -> Path:
    return SideFolder(spool_dir).state


def load_state(spool_dir: str) -> ReplicatorState | None:
    path = state_path(spool_dir)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RuntimeError(
            f"replicator state {path} is unreadable ({exc}); remove it to start a new generation"
        ) from exc
    raw["chain"] = tuple(raw["chain"])
    return ReplicatorState(**raw)


def save_state(spool_dir: str, state: ReplicatorState) -> None:
    path = state_path(spool_dir)
    tmp = path.with_suffix(".tmp")
    # One write of the whole document: json.dump() writes a file piece by
    # piece, and this runs after every batch (a fleet: hundreds a second).
    data = json.dumps(vars(state)).encode()
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    adopt(tmp, spool_dir)
    os.replace(tmp, path)

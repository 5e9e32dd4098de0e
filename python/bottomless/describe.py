"""Per-generation facts shown by ``ls -v``."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from bottomless import catalog, layout
from bottomless.crypto import KEY_VAR, Cipher, is_encrypted
from bottomless.frames import Meta, last_header
from bottomless.generation import created_at, format_created_at
from bottomless.restore import decode_object
from bottomless.s3 import S3Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationDetails:
    generation: uuid.UUID
    created_at: datetime
    change_counter: list[int] | None  # db header bytes 24..27; None without .changecounter
    consistent_frame: int  # last frame of the last batch, 0 when none
    frame_checksum: str  # last chained checksum in hex, "0" when none
    snapshot_size: int | None
    snapshot_last_modified: datetime | None
    batches: int
    parent: uuid.UUID | None
    parent_removed: bool  # .dep names a generation that is no longer in the bucket

    def to_json(self) -> dict[str, object]:
        return {
            "generation": str(self.generation),
            "created_at": self.created_at.isoformat(timespec="milliseconds"),
            "change_counter": self.change_counter,
            "consistent_wal_frame": self.consistent_frame,
            "wal_frame_checksum": self.frame_checksum,
            "snapshot": None
            if self.snapshot_size is None
            else {
                "object_size": self.snapshot_size,
                "last_modified": _iso_z(self.snapshot_last_modified),
            },
            "batches": self.batches,
            "parent": None if self.parent is None else str(self.parent),
            "parent_removed": self.parent_removed,
        }

    def to_text(self) -> str:
        counter = "none" if self.change_counter is None else str(self.change_counter)
        lines = [
            str(self.generation),
            f"\tcreated at (UTC):     {format_created_at(self.generation)}",
            f"\tchange counter:       {counter}",
            f"\tconsistent WAL frame: {self.consistent_frame}",
            f"\tWAL frame checksum:   {self.frame_checksum}",
        ]
        if self.parent is not None:
            gone = " (removed from the bucket)" if self.parent_removed else ""
            lines.append(f"\tparent generation:    {self.parent}{gone}")
        if self.snapshot_size is None:
            lines.append("\tmain database snapshot: none")
        else:
            lines += [
                "\tmain database snapshot:",
                f"\t\tobject size:   {self.snapshot_size}",
                f"\t\tlast modified: {_iso_z(self.snapshot_last_modified)}",
            ]
        return "\n".join(lines)


def _iso_z(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(
    store: S3Store,
    db_name: str,
    generation: uuid.UUID,
    cipher: Cipher | None = None,
    existing: Collection[uuid.UUID] | None = None,
) -> GenerationDetails:
    """Gather ``ls -v`` facts: one LIST, small GETs, and the last batch
    (decrypted with ``cipher`` when the generation is encrypted).
    ``existing`` is the database's generations, to tell a removed parent."""
    gen = catalog.load_generation(store, db_name, generation)
    counter = catalog.read_change_counter(store, db_name, generation)
    parent = catalog.read_dep(store, db_name, generation) if gen.has_dep else None
    checksum = "0"
    if gen.batches and gen.has_meta:
        checksum = _last_checksum(store, db_name, gen, cipher)
    return GenerationDetails(
        generation=generation,
        created_at=created_at(generation),
        change_counter=None if counter is None else list(counter),
        consistent_frame=gen.last_frame,
        frame_checksum=checksum,
        snapshot_size=gen.snapshot.size if gen.snapshot else None,
        snapshot_last_modified=gen.snapshot.last_modified if gen.snapshot else None,
        batches=len(gen.batches),
        parent=parent,
        parent_removed=parent is not None and existing is not None and parent not in existing,
    )


def _last_checksum(store: S3Store, db_name: str, gen: catalog.Generation, cipher: Cipher | None) -> str:
    meta = Meta.decode(store.get(layout.meta_key(db_name, gen.generation)))
    batch = gen.batches[-1]
    raw = store.get(batch.key)
    if is_encrypted(raw) and cipher is None:
        return f"unknown (encrypted: set {KEY_VAR} to read it)"
    data = decode_object(raw, batch.key, batch.compression, cipher, is_encrypted(raw))
    header = last_header(data, meta.page_size)
    if header is None:
        return "0"
    return format((header.cksum1 << 32) | header.cksum2, "x")

"""What a bucket holds: databases, their generations and each generation's objects."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from bottomless import layout
from bottomless.errors import LayoutError
from bottomless.generation import created_at
from bottomless.s3 import ObjectInfo, S3Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    """One batch object of WAL frames."""

    key: str
    first: int
    last: int
    unix_secs: int
    compression: str
    size: int
    merged: bool = False  # a run of batches in one object (this project's)


@dataclass(frozen=True)
class Page:
    """One page object of libSQL's 2023 per-page layout."""

    key: str
    frame: int
    pgno: int
    crc: int


@dataclass(frozen=True)
class Generation:
    """The objects of one generation, from one (paginated) listing."""

    db_name: str
    generation: uuid.UUID
    snapshot: ObjectInfo | None = None
    snapshot_compression: str | None = None
    batches: list[Batch] = field(default_factory=list)  # sorted by frame range
    has_meta: bool = False
    has_dep: bool = False
    has_change_counter: bool = False
    other_keys: list[str] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)  # 2023 layout, sorted by frame
    has_consistent: bool = False  # 2023 layout

    @property
    def per_page(self) -> bool:
        """Written in libSQL's 2023 layout (a page per object, ``.consistent``)."""
        return bool(self.pages) or (self.has_consistent and not self.batches)

    @property
    def prefix(self) -> str:
        return layout.generation_prefix(self.db_name, self.generation)

    @property
    def created_at(self) -> datetime:
        return created_at(self.generation)

    @property
    def last_frame(self) -> int:
        """Last frame number of the last batch (0 when there is none)."""
        return self.batches[-1].last if self.batches else 0

    def all_keys(self) -> list[str]:
        keys = [b.key for b in self.batches] + [p.key for p in self.pages] + list(self.other_keys)
        if self.snapshot:
            keys.append(self.snapshot.key)
        for present, name in (
            (self.has_meta, layout.META),
            (self.has_dep, layout.DEP),
            (self.has_change_counter, layout.CHANGE_COUNTER),
            (self.has_consistent, layout.CONSISTENT),
        ):
            if present:
                keys.append(self.prefix + name)
        return keys


def list_databases(store: S3Store) -> list[str]:
    """Names of the databases that have at least one generation in the bucket."""
    names: list[str] = []
    for prefix in store.list_prefixes(""):
        parsed = layout.split_generation_prefix(prefix)
        if parsed is None or parsed[0] in names:
            continue
        try:
            # Names come from the bucket and may become local file names.
            names.append(layout.validate_db_name(parsed[0]))
        except LayoutError as exc:
            log.warning("ignoring %r in the bucket: %s", prefix, exc)
    return names


def list_generations(store: S3Store, db_name: str) -> list[uuid.UUID]:
    """Generations of ``db_name``, newest first."""
    found = []
    for prefix in store.list_prefixes(layout.db_prefix(db_name)):
        generation = layout.parse_generation_prefix(db_name, prefix)
        if generation is not None:
            found.append(generation)
    found.sort(key=lambda g: g.int)  # reversed timestamps: newest sorts first
    return found


def load_generation(store: S3Store, db_name: str, generation: uuid.UUID) -> Generation:
    """List one generation's objects (one LIST per 1000 objects)."""
    prefix = layout.generation_prefix(db_name, generation)
    snapshot: ObjectInfo | None = None
    snapshot_codec: str | None = None
    batches: list[Batch] = []
    flags = {layout.META: False, layout.DEP: False, layout.CHANGE_COUNTER: False, layout.CONSISTENT: False}
    other: list[str] = []
    pages: list[Page] = []
    for obj in store.list_objects(prefix):
        name = obj.key[len(prefix) :]
        if name in flags:
            flags[name] = True
            continue
        codec = layout.parse_snapshot_name(name)
        if codec is not None:
            if snapshot is not None:
                raise LayoutError(f"generation {prefix} has two snapshots: {snapshot.key}, {obj.key}")
            snapshot, snapshot_codec = obj, codec
            continue
        parsed = layout.parse_batch_name(name)
        if parsed is not None:
            batches.append(
                Batch(
                    obj.key,
                    parsed.first,
                    parsed.last,
                    parsed.unix_secs,
                    parsed.compression,
                    obj.size,
                    parsed.merged,
                )
            )
            continue
        page = layout.parse_page_name(name)
        if page is not None:
            pages.append(Page(obj.key, page.frame, page.pgno, page.crc))
            continue
        log.debug("ignoring unknown object %s", obj.key)
        other.append(obj.key)
    batches.sort(key=lambda b: (b.first, b.last, b.unix_secs))
    pages.sort(key=lambda p: (p.frame, p.pgno))
    return Generation(
        db_name,
        generation,
        snapshot,
        snapshot_codec,
        batches,
        flags[layout.META],
        flags[layout.DEP],
        flags[layout.CHANGE_COUNTER],
        other,
        pages,
        flags[layout.CONSISTENT],
    )

"""Removal of generations (``rm``)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from bottomless import catalog, objects
from bottomless.generation import created_at
from bottomless.s3 import S3Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Removal:
    removed: list[uuid.UUID] = field(default_factory=list)
    objects: int = 0
    kept_as_parents: list[uuid.UUID] = field(default_factory=list)


def remove_generation(store: S3Store, db_name: str, generation: uuid.UUID) -> int:
    """Delete every object of one generation; returns the object count."""
    gen = catalog.load_generation(store, db_name, generation)
    count = store.delete_many(gen.all_keys())
    log.info("removed generation %s (%d objects)", generation, count)
    return count


def _needed_parents(store: S3Store, db_name: str, kept: list[uuid.UUID]) -> set[uuid.UUID]:
    """Generations a kept generation without a snapshot restores through."""
    needed: set[uuid.UUID] = set()
    for generation in kept:
        current: uuid.UUID | None = generation
        while current is not None and current not in needed:
            gen = catalog.load_generation(store, db_name, current)
            if gen.snapshot is not None or not gen.has_dep:
                break
            current = objects.read_dep(store, db_name, current)
            if current is not None:
                needed.add(current)
    return needed


def remove_older_than(store: S3Store, db_name: str, cutoff: datetime) -> Removal:
    """Delete generations created before ``cutoff``.

    The newest generation is never removed this way, nor any generation a
    kept one continues (``.dep``) without a snapshot of its own.
    """
    generations = catalog.list_generations(store, db_name)
    if not generations:
        return Removal()
    newest, older = generations[0], generations[1:]
    doomed = [g for g in older if created_at(g) < cutoff]
    kept = [newest] + [g for g in older if g not in doomed]
    needed = _needed_parents(store, db_name, kept)
    spared = [g for g in doomed if g in needed]
    for generation in spared:
        log.warning("keeping generation %s: a newer generation depends on it", generation)
    removed = [g for g in doomed if g not in needed]
    objects = sum(remove_generation(store, db_name, g) for g in removed)
    return Removal(removed, objects, spared)

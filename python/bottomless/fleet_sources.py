"""What a multi-database replicator ships: the databases a ``--config``
file names or its folders hold, or one ``--dir``, each with its
``<db-name>`` and settings, as of now.

A database named by ``path:`` is shipped as that entry says, even when a
``dir:`` entry also holds it. Two databases may not share a name in one
bucket (two folders each holding ``app.db``): the second found is skipped
with the reason, never mixed into the first one's history.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bottomless.config import Config
from bottomless.discovery import scan
from bottomless.fleet_config import DatabaseEntry, DirectoryEntry, FleetConfig
from bottomless.fleet_coverage import Coverage, Folder
from bottomless.layout import db_name_for_path


@dataclass(frozen=True)
class Wanted:
    path: str  # absolute
    name: str  # its <db-name>
    config: Config  # database_id is ``name``


@dataclass
class Plan:
    databases: dict[str, Wanted] = field(default_factory=dict)  # by path
    skipped: dict[str, str] = field(default_factory=dict)  # path -> why it is not shipped
    folders: list[str] = field(default_factory=list)  # to watch for new and deleted databases


@dataclass(frozen=True)
class Sources:
    databases: tuple[DatabaseEntry, ...] = ()
    directories: tuple[DirectoryEntry, ...] = ()

    @classmethod
    def of_config(cls, fleet: FleetConfig) -> Sources:
        return cls(fleet.databases, fleet.directories)

    @classmethod
    def of_dir(cls, folder: str, pattern: str, recursive: bool, config: Config) -> Sources:
        return cls(directories=(DirectoryEntry(Path(os.path.abspath(folder)), pattern, recursive, config, 0),))

    def coverage(self, pid: int) -> Coverage:
        return Coverage(
            pid,
            tuple(Folder(str(d.dir), d.pattern, d.recursive) for d in self.directories),
            tuple(str(db.path) for db in self.databases),
        )

    def plan(self, previous: Mapping[str, Wanted] | None = None) -> Plan:
        """The databases to ship now. Those in ``previous`` (what the last
        plan of these same sources gave) are taken as they were, not opened
        or named again: a rescan of a thousand databases stays cheap. A
        folder that cannot be listed is an OSError."""
        previous = previous or {}
        plan = Plan()
        names: dict[tuple[str, str, str], str] = {}

        def add(path: str, name: str | None, config: Config) -> None:
            wanted = previous.get(path)
            if wanted is not None:
                name, config = wanted.name, wanted.config
            assert name is not None, "a database still there was in the previous plan"
            key = (config.endpoint, config.bucket, name)
            other = names.get(key)
            if other is not None:
                plan.skipped[path] = f"its name {name!r} in bucket {config.bucket!r} is already used by {other}"
                return
            names[key] = path
            if config.database_id != name:
                config = dataclasses.replace(config, database_id=name)
            plan.databases[path] = wanted if wanted is not None else Wanted(path, name, config)

        for db in self.databases:
            path = str(db.path)
            plan.folders.append(str(db.path.parent))
            if os.path.exists(path):
                add(path, db.config.database_id or db_name_for_path(path), db.config)
            else:
                plan.skipped[path] = "it does not exist (yet): it is shipped once it does"
        for d in self.directories:
            found = scan(d.dir, d.pattern, d.recursive, previous)
            plan.folders.extend(str(f) for f in found.folders)
            if not found.folders:
                plan.folders.append(str(d.dir))  # not there yet: watched once it is (the rescan adds it)
            for file in found.still:
                if str(file) not in plan.databases:
                    add(str(file), None, d.config)
            for name, file in found.databases.items():
                if str(file) not in plan.databases:
                    add(str(file), name, d.config)
            for file, why in found.skipped.items():
                plan.skipped.setdefault(str(file), why)
        return plan

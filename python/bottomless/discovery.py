"""Which SQLite databases a replicated folder holds now
(``replicate --dir DIR [--pattern GLOB] [--recursive]``, or a ``dir:``
entry of the configuration file).

A file counts when its name matches the pattern (``fnmatch`` on the file
name, as Litestream's ``pattern``) and it starts with SQLite's header, or
is still empty while its ``-wal`` holds the first transactions. The
journal, WAL and shm files of a database, and bottomless's side folders,
are never candidates. A matching file that cannot be read, or that is not
SQLite, is listed in ``skipped`` with the reason, so the caller can say so
once instead of dropping it without a word.
"""

from __future__ import annotations

import errno
import fnmatch
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from bottomless.side_files import SUFFIX
from bottomless.snapshot_check import SQLITE_MAGIC
from bottomless.tenant_names import name_of

_COMPANIONS = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class Scan:
    """``databases`` maps each ``<db-name>`` to its file; ``skipped`` maps
    a matching file that is not (or not yet readable as) a database to why."""

    databases: dict[str, Path] = field(default_factory=dict)
    skipped: dict[Path, str] = field(default_factory=dict)
    folders: list[Path] = field(default_factory=list)  # every folder listed (to watch for changes)
    still: list[Path] = field(default_factory=list)  # the ``known`` databases still there (not named again)


def scan(folder: Path, pattern: str = "*.db", recursive: bool = False, known: Collection[str] = frozenset()) -> Scan:
    """The databases under ``folder`` now. A folder that does not exist
    holds none (it may be created later); one that cannot be listed is an
    OSError for the caller to report. A file in ``known`` (the path of a
    database at the last scan) that is still there is not opened or named
    again but listed in ``still``: a periodic rescan of a thousand
    databases costs a listing, not a thousand reads."""
    result = Scan()
    for path in _candidates(folder, pattern, recursive, result.folders):
        if str(path) in known:
            result.still.append(path)
            continue
        why = _not_a_database(path)
        if why is None:
            result.databases[name_of(path.relative_to(folder))] = path
        elif why:
            result.skipped[path] = why
    return result


def _candidates(folder: Path, pattern: str, recursive: bool, listed: list[Path]) -> list[Path]:
    found: list[Path] = []
    pending = [folder]
    while pending:
        here = pending.pop()
        try:
            entries = list(os.scandir(here))
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            raise OSError(errno.ENOTDIR, "not a folder", str(here)) from None
        listed.append(here)
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if recursive and not entry.name.endswith(SUFFIX):
                    pending.append(Path(entry.path))
            elif entry.is_file() and fnmatch.fnmatchcase(entry.name, pattern) and not entry.name.endswith(_COMPANIONS):
                found.append(Path(entry.path))
    return sorted(found)


def _not_a_database(path: Path) -> str | None:
    """None for a database, "" for a file to pass over quietly (empty and
    no WAL yet: a database being created, or any empty file), else why it
    is not one."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except PermissionError:
        return "permission denied: the replicator's user cannot read it"
    except FileNotFoundError:
        return ""  # deleted between the listing and now
    except OSError as exc:
        return exc.strerror or str(exc)
    if head == SQLITE_MAGIC:
        return None
    if not head:
        return None if os.path.exists(f"{path}-wal") and os.path.getsize(f"{path}-wal") > 0 else ""
    return "not an SQLite database (no SQLite header)"

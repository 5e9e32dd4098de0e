"""Which databases a running multi-database replicator covers, told to the
processes that would otherwise start one (``on-open``, ``daemon.py``).

Each ``bottomless-cli replicate --dir/--config`` process keeps one file,
``fleet-<pid>.json``, in a runtime folder shared by every user of the
machine (``BOTTOMLESS_RUNTIME_DIR``, else ``/tmp/bottomless-fleets``,
sticky like /tmp; a setting of the machine, not of a database, so it is
no ``LIBSQL_BOTTOMLESS_*`` variable and has no key in the config file):
its pid, the folders it scans (with their pattern and whether
recursively) and the files it names. Whoever is about to start a
replicator for a database asks ``covering(path)``; a record counts only
while its pid lives, and only when its owner is root, the asking user or
the database's owner, so another user cannot switch off someone's backups
by writing a record.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from bottomless.health import alive
from bottomless.side_files import SUFFIX

log = logging.getLogger(__name__)

RUNTIME_DIR_VAR = "BOTTOMLESS_RUNTIME_DIR"
DEFAULT_RUNTIME_DIR = "/tmp/bottomless-fleets"
_COMPANIONS = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class Folder:
    dir: str  # absolute
    pattern: str = "*.db"
    recursive: bool = False

    def covers(self, path: str) -> bool:
        parent, name = os.path.split(path)
        if name.endswith(_COMPANIONS) or not fnmatch.fnmatchcase(name, self.pattern):
            return False
        if parent == self.dir:
            return True
        if not self.recursive or not parent.startswith(self.dir.rstrip("/") + "/"):
            return False
        inside = parent[len(self.dir.rstrip("/")) + 1 :].split("/")
        return not any(part.endswith(SUFFIX) for part in inside)


@dataclass(frozen=True)
class Coverage:
    pid: int
    folders: tuple[Folder, ...] = ()
    files: tuple[str, ...] = ()  # absolute

    def covers(self, path: str) -> bool:
        path = os.path.abspath(path)
        return path in self.files or any(f.covers(path) for f in self.folders)


def runtime_dir() -> Path:
    return Path(os.environ.get(RUNTIME_DIR_VAR) or DEFAULT_RUNTIME_DIR)


def _record(pid: int) -> Path:
    return runtime_dir() / f"fleet-{pid}.json"


def publish(coverage: Coverage) -> Path | None:
    """Write (or replace) this process's record; None when the runtime
    folder cannot be written (autostart then cannot join: said once)."""
    folder = runtime_dir()
    path = _record(coverage.pid)
    try:
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o1777)  # every user's fleet keeps its record here
        tmp = path.with_name(f".{path.name}.tmp")
        data = {
            "pid": coverage.pid,
            "folders": [asdict(f) for f in coverage.folders],
            "files": list(coverage.files),
        }
        tmp.write_text(json.dumps(data))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot write %s (%s): shells opening these databases start replicators of their own", path, exc)
        return None
    return path


def withdraw(pid: int) -> None:
    try:
        _record(pid).unlink(missing_ok=True)
    except OSError:
        pass


def covering(db_path: str) -> Coverage | None:
    """The live multi-database replicator that covers ``db_path``, if any."""
    path = os.path.abspath(db_path)
    trusted = {0, os.getuid()}
    try:
        trusted.add(os.stat(path).st_uid)
    except OSError:
        try:
            trusted.add(os.stat(os.path.dirname(path)).st_uid)
        except OSError:
            pass
    try:
        records = sorted(runtime_dir().glob("fleet-*.json"))
    except OSError:
        return None
    for record in records:
        coverage = _read(record, trusted)
        if coverage is not None and coverage.pid != os.getpid() and alive(coverage.pid) and coverage.covers(path):
            return coverage
    return None


def _read(record: Path, trusted: set[int]) -> Coverage | None:
    try:
        if record.stat().st_uid not in trusted:
            return None
        raw = json.loads(record.read_text())
        folders = tuple(Folder(str(f["dir"]), str(f["pattern"]), bool(f["recursive"])) for f in raw["folders"])
        return Coverage(int(raw["pid"]), folders, tuple(str(f) for f in raw["files"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None

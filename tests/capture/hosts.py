"""The real programs that load the extension, driven the same way.

Each host opens the database through the extension, runs workload units and
reports the database's content as it sees it.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from bottomless._paths import extension_path
from bottomless.sqlite_vfs import register_apsw, register_python_sqlite

Execute = Callable[[str], Sequence[Sequence[Any]]]


def content(execute: Execute) -> list[Any]:
    """Schema and every row of every table, in a canonical order."""
    schema = [tuple(r) for r in execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")]
    out: list[Any] = list(schema)
    for kind, name, _tbl, _sql in schema:
        if kind == "table" and not str(name).startswith("sqlite_"):
            out.append((name, [tuple(r) for r in execute(f'SELECT * FROM "{name}" ORDER BY rowid')]))
    return out


class Host(Protocol):
    name: str

    def setup(self, db: Path, setup_sql: str, cache_size: int) -> None: ...
    def run(self, sql: str) -> None: ...
    def content(self) -> list[Any]: ...
    def close(self) -> None: ...


class PythonHost:
    """Python's sqlite3 module (no loadable extensions here): VFS via the C ABI.
    Two connections, picked at random per unit."""

    name = "python"

    def __init__(self, seed: int = 0) -> None:
        register_python_sqlite()
        self.rng = random.Random(seed)
        self.conns: list[sqlite3.Connection] = []

    def setup(self, db: Path, setup_sql: str, cache_size: int) -> None:
        uri = f"file:{db}?vfs=bottomless"
        first = sqlite3.connect(uri, uri=True, isolation_level=None)
        first.executescript(setup_sql)
        second = sqlite3.connect(uri, uri=True, isolation_level=None)
        self.conns = [first, second]
        for c in self.conns:
            c.execute(f"PRAGMA cache_size={cache_size}")
            c.execute("PRAGMA busy_timeout=5000")

    def run(self, sql: str) -> None:
        self.rng.choice(self.conns).executescript(sql)

    def content(self) -> list[Any]:
        return content(lambda q: self.conns[0].execute(q).fetchall())

    def close(self) -> None:
        for c in self.conns:
            c.close()


class ApswHost:
    """apsw with its bundled SQLite, loading the extension the ordinary way."""

    name = "apsw"

    def __init__(self, seed: int = 0) -> None:
        register_apsw()
        self.rng = random.Random(seed)
        self.conns: list[Any] = []

    def setup(self, db: Path, setup_sql: str, cache_size: int) -> None:
        import apsw

        flags = apsw.SQLITE_OPEN_URI | apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
        uri = f"file:{db}?vfs=bottomless"
        first = apsw.Connection(uri, flags=flags)
        first.execute(setup_sql)
        self.conns = [first, apsw.Connection(uri, flags=flags)]
        for c in self.conns:
            c.execute(f"PRAGMA cache_size={cache_size}")
            c.set_busy_timeout(5000)

    def run(self, sql: str) -> None:
        self.rng.choice(self.conns).execute(sql)

    def content(self) -> list[Any]:
        return content(lambda q: list(self.conns[0].execute(q)))

    def close(self) -> None:
        for c in self.conns:
            c.close()


class ShellHost:
    """A shell process per unit: Debian's sqlite3 (``vfs=``) or a libSQL 0.2
    shell (``wal=``). Each run opens and closes the database, so the last
    close checkpoints and deletes the WAL every time."""

    def __init__(self, binary: str, uri_param: str, name: str) -> None:
        self.binary = binary
        self.uri_param = uri_param
        self.name = name
        self.db = Path()
        self.cache_size = 2000

    def _shell(self, sql: str) -> str:
        script = (
            f".bail on\n.load {extension_path()}\n.open file:{self.db}?{self.uri_param}=bottomless\n"
            f"PRAGMA cache_size={self.cache_size};\n{sql}\n"
        )
        res = subprocess.run(
            [self.binary, "-batch"],
            input=script,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "LIBSQL_BOTTOMLESS_AUTOSTART": "0"},
        )
        if res.returncode != 0 or "Error" in res.stderr:
            raise RuntimeError(f"{self.name} failed ({res.returncode}): {res.stderr.strip()}")
        return res.stdout

    def setup(self, db: Path, setup_sql: str, cache_size: int) -> None:
        self.db = db
        self.cache_size = cache_size
        self._shell(setup_sql)

    def run(self, sql: str) -> None:
        self._shell(sql)

    def content(self) -> list[Any]:
        # Read in another process (this one never opens the file itself).
        code = (
            "import sys, sqlite3\n"
            "from bottomless.sqlite_vfs import register_python_sqlite\n"
            "from tests.capture.hosts import content\n"
            "register_python_sqlite()\n"
            "c = sqlite3.connect('file:' + sys.argv[1] + '?vfs=bottomless', uri=True)\n"
            "print(repr(content(lambda q: c.execute(q).fetchall())))\n"
        )
        root = Path(__file__).resolve().parents[2]
        res = subprocess.run(
            [sys.executable, "-c", code, str(self.db)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=root,
            env={**os.environ, "PYTHONPATH": f"{root / 'python'}:{root}"},
        )
        if res.returncode != 0:
            raise RuntimeError(f"reading {self.db} failed: {res.stderr}")
        import ast

        value: list[Any] = ast.literal_eval(res.stdout)
        return value

    def close(self) -> None:
        pass

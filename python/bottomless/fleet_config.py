"""The configuration file of a replicator that ships many databases
(``bottomless-cli replicate --config FILE``): YAML, shaped like
Litestream's::

    bucket: tenants                  # defaults for every entry below
    endpoint: https://s3.example.com
    dbs:
      - path: /var/lib/app/main.db   # one database
        database_id: main
        lease_secs: 0
      - dir: /var/lib/tenants        # every SQLite database found there
        pattern: "*.db"
        recursive: true
        compression: gz

Every setting that exists as a ``LIBSQL_BOTTOMLESS_*`` variable is a key,
spelled as the variable without its prefix, in lower case
(``LIBSQL_BOTTOMLESS_BATCH_INTERVAL_SECS`` is ``batch_interval_secs``); the
keys are the fields of ``Config``, so a new setting gets its key with no
change here. A value comes from the entry, else from the top level, else
from the variable, else the default. Relative paths are relative to the
file's folder. Any mistake is one ``ConfigError`` naming the file, the line
and the key.
"""

from __future__ import annotations

import difflib
import os
import re
import types
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from bottomless.config import ENV_PREFIX, Config, parse_bool
from bottomless.errors import ConfigError

_SETTINGS: dict[str, Any] = {f.name: f for f in fields(Config)}
_DB_KEYS = ("path",)
_DIR_KEYS = ("dir", "pattern", "recursive")
_VAR_IN_MESSAGE = re.compile(re.escape(ENV_PREFIX) + r"([A-Z_]+)")


@dataclass(frozen=True)
class DatabaseEntry:
    """One database named by its path."""

    path: Path
    config: Config
    line: int


@dataclass(frozen=True)
class DirectoryEntry:
    """Every SQLite database under ``dir`` whose name matches ``pattern``
    (in sub-folders too when ``recursive``); each one's ``<db-name>`` is
    its path relative to ``dir`` (tenant_names.py), so ``config`` has no
    ``database_id``."""

    dir: Path
    pattern: str
    recursive: bool
    config: Config
    line: int


@dataclass(frozen=True)
class FleetConfig:
    file: Path
    databases: tuple[DatabaseEntry, ...]
    directories: tuple[DirectoryEntry, ...]


def load(file: str | Path, env: Mapping[str, str] | None = None) -> FleetConfig:
    """Reads and checks ``file``; raises ConfigError on the first mistake."""
    path = Path(file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the configuration file is not UTF-8 text") from None
    return _Reader(path, env).read(text)


class _Reader:
    def __init__(self, file: Path, env: Mapping[str, str] | None) -> None:
        self.file = file
        self.env = env
        self.loader: yaml.SafeLoader | None = None

    def fail(self, node: yaml.Node | None, key: str, problem: str) -> ConfigError:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        where = f" {key}:" if key else ""
        return ConfigError(f"{self.file}{line}:{where} {problem}")

    def read(self, text: str) -> FleetConfig:
        self.loader = yaml.SafeLoader(text)
        try:
            root = self.loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            line = f":{mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{self.file}{line}: not valid YAML: {exc.problem or exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{self.file}: not valid YAML: {exc}") from None
        if root is None:
            raise ConfigError(f"{self.file}: the configuration file is empty; it needs a 'dbs:' list")
        top = self.mapping(root, "")
        dbs_node = top.pop("dbs", None)
        if dbs_node is None:
            raise self.fail(root, "dbs", "missing: list the databases (path: ...) or folders (dir: ...) to replicate")
        defaults = self.settings(top, allowed=())
        if "database_id" in defaults:
            raise self.fail(defaults["database_id"][0], "database_id", "belongs in an entry of 'dbs:', not at the top")
        if not isinstance(dbs_node[1], yaml.SequenceNode) or not dbs_node[1].value:
            raise self.fail(dbs_node[1], "dbs", "must be a list of entries, each with 'path:' or 'dir:'")
        databases: list[DatabaseEntry] = []
        directories: list[DirectoryEntry] = []
        for item in dbs_node[1].value:
            entry = self.entry(item, defaults)
            (databases if isinstance(entry, DatabaseEntry) else directories).append(entry)  # type: ignore[arg-type]
        self.refuse_overlaps(databases, directories)
        return FleetConfig(self.file, tuple(databases), tuple(directories))

    def mapping(self, node: yaml.Node, key: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, key, "must be a mapping of keys to values")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            name = self.value(key_node)
            if not isinstance(name, str):
                raise self.fail(key_node, "", f"{name!r} is not a key name")
            if name in out:
                raise self.fail(key_node, name, "given twice")
            out[name] = (key_node, value_node)
        return out

    def value(self, node: yaml.Node) -> Any:
        assert self.loader is not None
        return self.loader.construct_object(node, deep=True)

    def entry(self, node: yaml.Node, defaults: dict[str, tuple[yaml.Node, Any]]) -> DatabaseEntry | DirectoryEntry:
        keys = self.mapping(node, "dbs")
        line = node.start_mark.line + 1
        if ("path" in keys) == ("dir" in keys):
            raise self.fail(node, "dbs", "each entry needs exactly one of 'path:' (a database) or 'dir:' (a folder)")
        if "path" in keys:
            settings = self.settings(keys, allowed=_DB_KEYS)
            config = self.config({**defaults, **settings})
            return DatabaseEntry(self.file_path(keys["path"], "path"), config, line)
        settings = self.settings(keys, allowed=_DIR_KEYS)
        if "database_id" in settings:
            raise self.fail(
                keys["database_id"][0],
                "database_id",
                "not allowed with 'dir:': each database's name is its path inside the folder",
            )
        pattern = self.text(keys["pattern"], "pattern") if "pattern" in keys else "*.db"
        recursive = self.flag(keys["recursive"], "recursive") if "recursive" in keys else False
        config = self.config({k: v for k, v in {**defaults, **settings}.items() if k != "database_id"})
        return DirectoryEntry(self.file_path(keys["dir"], "dir"), pattern, recursive, config, line)

    def settings(
        self, keys: dict[str, tuple[yaml.Node, yaml.Node]], allowed: tuple[str, ...]
    ) -> dict[str, tuple[yaml.Node, Any]]:
        """The Config settings among ``keys`` (other than ``allowed``),
        each as (its value node, its value converted to the field's type)."""
        out: dict[str, tuple[yaml.Node, Any]] = {}
        for name, (key_node, value_node) in keys.items():
            if name in allowed:
                continue
            if name not in _SETTINGS:
                known = [*allowed, *_SETTINGS]
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
                raise self.fail(key_node, name, f"unknown key{hint}")
            out[name] = (value_node, self.setting(name, value_node))
        return out

    def setting(self, name: str, node: yaml.Node) -> Any:
        raw = self.value(node)
        wanted = _field_types()[name]
        if raw is None:
            if type(None) in wanted:
                return None
            raise self.fail(node, name, "needs a value")
        if bool in wanted:
            if isinstance(raw, bool):
                return raw
            try:
                return parse_bool(str(raw))
            except ValueError:
                raise self.fail(node, name, f"{raw!r} is not true or false") from None
        if isinstance(raw, bool):
            raise self.fail(
                node, name, f"{raw!r} is not a {' or '.join(t.__name__ for t in wanted if t is not type(None))}"
            )
        for kind in (int, float):
            if kind in wanted:
                if isinstance(raw, int) or (kind is float and isinstance(raw, float)):
                    return kind(raw)
                raise self.fail(node, name, f"{raw!r} is not a {'whole ' if kind is int else ''}number")
        if str in wanted:
            if isinstance(raw, (str, int, float)):
                return str(raw)
        raise self.fail(node, name, f"{raw!r} is not a text value")

    def config(self, settings: dict[str, tuple[yaml.Node, Any]]) -> Config:
        values = {name: value for name, (_, value) in settings.items()}
        if "encryption_key_file" in values and values["encryption_key_file"] is not None:
            values["encryption_key_file"] = str(self.relative(values["encryption_key_file"]))
        try:
            base = Config.from_env(self.env)
            return base.with_overrides(**values)
        except ConfigError as exc:
            match = _VAR_IN_MESSAGE.search(str(exc))
            name = match.group(1).lower() if match else ""
            node = settings[name][0] if name in settings else None
            detail = _VAR_IN_MESSAGE.sub("", str(exc), count=1).lstrip(": ") if node is not None else str(exc)
            raise self.fail(node, name if node is not None else "", detail) from None

    def text(self, pair: tuple[yaml.Node, yaml.Node], key: str) -> str:
        raw = self.value(pair[1])
        if not isinstance(raw, str) or not raw:
            raise self.fail(pair[1], key, "must be a non-empty text value")
        return raw

    def flag(self, pair: tuple[yaml.Node, yaml.Node], key: str) -> bool:
        raw = self.value(pair[1])
        if not isinstance(raw, bool):
            raise self.fail(pair[1], key, f"{raw!r} is not true or false")
        return raw

    def file_path(self, pair: tuple[yaml.Node, yaml.Node], key: str) -> Path:
        return self.relative(self.text(pair, key))

    def relative(self, value: str) -> Path:
        path = Path(os.path.expanduser(value))
        return path if path.is_absolute() else (self.file.parent / path).absolute()

    def refuse_overlaps(self, databases: list[DatabaseEntry], directories: list[DirectoryEntry]) -> None:
        seen: dict[Path, int] = {}
        for db in databases:
            if db.path in seen:
                raise ConfigError(f"{self.file}:{db.line}: path: {db.path} is already listed at line {seen[db.path]}")
            seen[db.path] = db.line
        named: dict[str, int] = {}
        for db in databases:
            key = f"{db.config.endpoint} {db.config.bucket} {db.config.database_id or db.path.name}"
            if key in named:
                raise ConfigError(
                    f"{self.file}:{db.line}: database_id: {db.config.database_id or db.path.name!r} in bucket "
                    f"{db.config.bucket!r} is already used by the entry at line {named[key]}; give each a database_id"
                )
            named[key] = db.line
        folders: dict[Path, int] = {}
        for d in directories:
            if d.dir in folders:
                raise ConfigError(f"{self.file}:{d.line}: dir: {d.dir} is already listed at line {folders[d.dir]}")
            folders[d.dir] = d.line


def _field_types() -> dict[str, tuple[type, ...]]:
    """Config's field types as plain tuples (``int | None`` is (int, NoneType))."""
    hints = get_type_hints(Config)
    out: dict[str, tuple[type, ...]] = {}
    for name in _SETTINGS:
        hint = hints[name]
        if get_origin(hint) in (Union, types.UnionType):
            out[name] = tuple(get_args(hint))
        else:
            out[name] = (hint,)
    assert all(f.default is not MISSING for f in _SETTINGS.values()), "every Config field needs a default"
    return out

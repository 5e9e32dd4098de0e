"""The many-database configuration file: every LIBSQL_BOTTOMLESS_* setting
has a key, values layer entry > top level > variable > default, and every
mistake is one error naming the file, the line and the key."""

from __future__ import annotations

import re
import textwrap
from dataclasses import fields
from pathlib import Path

import pytest

from bottomless.config import ENV_PREFIX, Config
from bottomless.errors import ConfigError
from bottomless.fleet_config import load


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bottomless.yml"
    path.write_text(textwrap.dedent(text))
    return path


def test_databases_and_folders_with_layered_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        bucket: tenants
        batch_interval_secs: 2
        dbs:
          - path: main.db
            database_id: main
            batch_interval_secs: 0.5
            verify_crc: off
          - dir: /var/lib/tenants
            pattern: "*.sqlite"
            recursive: true
            compression: gz
        """,
    )
    fleet = load(path, env={ENV_PREFIX + "ENDPOINT": "http://127.0.0.1:9999", ENV_PREFIX + "LEASE_SECS": "60"})
    (db,) = fleet.databases
    assert db.path == tmp_path / "main.db"
    assert db.line == 4
    assert (db.config.bucket, db.config.database_id, db.config.batch_interval_secs) == ("tenants", "main", 0.5)
    assert db.config.verify_crc is False
    assert (db.config.endpoint, db.config.lease_secs) == ("http://127.0.0.1:9999", 60.0)
    (folder,) = fleet.directories
    assert (folder.dir, folder.pattern, folder.recursive) == (Path("/var/lib/tenants"), "*.sqlite", True)
    assert (folder.config.compression, folder.config.batch_interval_secs, folder.config.database_id) == (
        "gz",
        2.0,
        None,
    )


def test_every_setting_has_a_key(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("A" * 43 + "=\n")
    samples = {
        "endpoint": "http://localhost:1",
        "bucket": "b-1",
        "database_id": "x",
        "batch_interval_secs": 3,
        "batch_max_frames": 7,
        "compression": "raw",
        "verify_crc": False,
        "autostart": False,
        "snapshot_frames": 9,
        "spool_warn_bytes": 11,
        "spool_max_bytes": 13,
        "wal_hold_bytes": 17,
        "shutdown_timeout_secs": 1.5,
        "encryption_key_file": str(key),
        "allow_http": True,
        "lease_secs": 0,
        "conditional_writes": False,
    }
    missing = {f.name for f in fields(Config)} - set(samples) - {"encryption_key"}
    assert not missing, f"add a sample for {missing}"
    lines = "".join(
        f"    {k}: {v!r}\n" if isinstance(v, str) else f"    {k}: {str(v).lower()}\n" for k, v in samples.items()
    )
    config = load(write(tmp_path, "dbs:\n  - path: a.db\n" + lines), env={}).databases[0].config
    for name, value in samples.items():
        assert getattr(config, name) == value, name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "dbs:\n  - path: a.db\n    batch_intervl_secs: 1\n",
            r":3: batch_intervl_secs: unknown key; did you mean 'batch_interval_secs'\?",
        ),
        ("dbs:\n  - path: a.db\n    batch_max_frames: lots\n", r":3: batch_max_frames: 'lots' is not a whole number"),
        ("dbs:\n  - path: a.db\n    batch_interval_secs: -1\n", r":3: batch_interval_secs: must be positive"),
        ("dbs:\n  - path: a.db\n    compression: lz4\n", r":3: compression: 'lz4' is not one of"),
        ("dbs:\n  - path: a.db\n    verify_crc: maybe\n", r":3: verify_crc: 'maybe' is not true or false"),
        ("dbs:\n  - path: a.db\n    bucket: Not_A/Bucket\n", r":3: bucket: .*not a valid S3 bucket name"),
        ("dbs:\n  - dir: t\n    database_id: x\n", r":3: database_id: not allowed with 'dir:'"),
        ("dbs:\n  - dir: t\n    recursive: 2\n", r":3: recursive: 2 is not true or false"),
        ("dbs:\n  - path: a.db\n    dir: t\n", r":2: dbs: each entry needs exactly one of"),
        ("dbs:\n  - path: a.db\n  - path: a.db\n", r":3: path: .* is already listed at line 2"),
        (
            "dbs:\n  - path: x/a.db\n  - path: y/a.db\n",
            r":3: database_id: 'a.db' in bucket 'bottomless' is already used",
        ),
        ("bucket: b\n", r":1: dbs: missing"),
        ("dbs: []\n", r":1: dbs: must be a list"),
        ("database_id: x\ndbs:\n  - path: a.db\n", r":1: database_id: belongs in an entry"),
        ("dbs:\n  - path: a.db\n    bucket: [1\n", r":4: not valid YAML"),
        ("dbs:\n  - path: a.db\n    bucket: b\n    bucket: c\n", r":4: bucket: given twice"),
        ("", r": the configuration file is empty"),
    ],
)
def test_mistakes_name_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="^" + re.escape(str(path)) + expected):
        load(path, env={})


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load(tmp_path / "nope.yml")

"""Config from LIBSQL_BOTTOMLESS_* variables and overrides."""

from __future__ import annotations

import pytest

from bottomless.config import Config
from bottomless.errors import ConfigError


def test_defaults() -> None:
    config = Config.from_env({})
    assert config == Config()
    assert config.endpoint == "http://localhost:9000"
    assert config.bucket == "bottomless"
    assert config.compression == "zstd"
    assert config.verify_crc and config.autostart


def test_variables_then_overrides() -> None:
    env = {
        "LIBSQL_BOTTOMLESS_ENDPOINT": "http://s3.local:9042",
        "LIBSQL_BOTTOMLESS_BUCKET": "custom-bucket",
        "LIBSQL_BOTTOMLESS_DATABASE_ID": "prod.db",
        "LIBSQL_BOTTOMLESS_BATCH_INTERVAL_SECS": "0.25",
        "LIBSQL_BOTTOMLESS_BATCH_MAX_FRAMES": "500",
        "LIBSQL_BOTTOMLESS_COMPRESSION": "gz",
        "LIBSQL_BOTTOMLESS_VERIFY_CRC": "false",
        "LIBSQL_BOTTOMLESS_AUTOSTART": "0",
    }
    config = Config.from_env(env, bucket="cli-bucket", endpoint=None)
    assert config.endpoint == "http://s3.local:9042"
    assert config.bucket == "cli-bucket"
    assert config.database_id == "prod.db"
    assert config.batch_interval_secs == 0.25
    assert config.batch_max_frames == 500
    assert config.compression == "gz"
    assert not config.verify_crc and not config.autostart


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LIBSQL_BOTTOMLESS_COMPRESSION", "lz4"),
        ("LIBSQL_BOTTOMLESS_BATCH_MAX_FRAMES", "many"),
        ("LIBSQL_BOTTOMLESS_BATCH_MAX_FRAMES", "0"),
        ("LIBSQL_BOTTOMLESS_BATCH_INTERVAL_SECS", "-1"),
        ("LIBSQL_BOTTOMLESS_VERIFY_CRC", "maybe"),
        ("LIBSQL_BOTTOMLESS_ENDPOINT", "localhost:9000"),
        ("LIBSQL_BOTTOMLESS_DATABASE_ID", "../etc"),
        ("LIBSQL_BOTTOMLESS_SPOOL_MAX_BYTES", "4MB"),
        ("LIBSQL_BOTTOMLESS_SPOOL_MAX_BYTES", "-1"),
        ("LIBSQL_BOTTOMLESS_WAL_HOLD_BYTES", "64MiB"),
        ("LIBSQL_BOTTOMLESS_WAL_HOLD_BYTES", "-1"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Config.from_env({variable: value})

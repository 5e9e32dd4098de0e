"""Unit tests of the safe-by-default pieces: chunked AES-256-GCM objects,
key parsing that never echoes the key, Config's repr, endpoint checks,
database names, the lease's rules (with an in-memory store)."""

from __future__ import annotations

import base64
import logging
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from bottomless import config as config_module
from bottomless.config import Config, is_loopback
from bottomless.crypto import CHUNK_SIZE, HEADER_SIZE, MAGIC, TAG_SIZE, Cipher, EncryptionError, is_encrypted
from bottomless.errors import ConfigError, LayoutError
from bottomless.layout import lease_key, validate_db_name
from bottomless.lease import FencedError, Lease, LeaseInfo
from bottomless.s3 import PreconditionFailed

KEY = bytes(range(32))
KEY_B64 = base64.b64encode(KEY).decode()


@pytest.fixture
def cipher() -> Cipher:
    return Cipher(KEY)


@pytest.mark.parametrize("size", [0, 1, 100, 4096, 4097, 3 * 4096])
def test_round_trip_any_size(cipher: Cipher, size: int) -> None:
    data = os.urandom(size)
    sealed = cipher.encrypt(data, "db-g/1.zstd", chunk_size=4096)
    assert is_encrypted(sealed) and sealed.startswith(MAGIC)
    chunks = max(1, -(-size // 4096))
    assert len(sealed) == HEADER_SIZE + size + chunks * TAG_SIZE
    assert cipher.decrypt(sealed, "db-g/1.zstd") == data


def test_each_object_gets_its_own_salt(cipher: Cipher) -> None:
    assert cipher.encrypt(b"same", "k") != cipher.encrypt(b"same", "k")


def test_wrong_key_moved_object_truncation_and_tampering_fail_naming_the_object(cipher: Cipher) -> None:
    data = os.urandom(3 * 4096)
    sealed = cipher.encrypt(data, "db-g/a", chunk_size=4096)
    with pytest.raises(EncryptionError, match="cannot decrypt object 'db-g/a': wrong encryption key"):
        Cipher(bytes(32)).decrypt(sealed, "db-g/a")
    with pytest.raises(EncryptionError, match="'db-g/b'"):
        cipher.decrypt(sealed, "db-g/b")  # copied under another key
    with pytest.raises(EncryptionError):
        cipher.decrypt(sealed[: HEADER_SIZE + 4096 + TAG_SIZE], "db-g/a")  # cut at a chunk boundary
    with pytest.raises(EncryptionError):
        cipher.decrypt(sealed[:-1], "db-g/a")
    flipped = bytearray(sealed)
    flipped[HEADER_SIZE + 10] ^= 1
    with pytest.raises(EncryptionError):
        cipher.decrypt(bytes(flipped), "db-g/a")
    with pytest.raises(EncryptionError, match="not a complete encrypted object"):
        cipher.decrypt(b"plain", "db-g/a")


def test_file_encryption_streams_in_bounded_memory(cipher: Cipher, tmp_path: Path) -> None:
    src = tmp_path / "big"
    with open(src, "wb") as f:
        for _ in range(24):
            f.write(os.urandom(CHUNK_SIZE))
    tracemalloc.start()
    try:
        out = cipher.encrypt_file(str(src), "db-g/db.zstd", str(tmp_path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 * CHUNK_SIZE  # a few chunks, not the 24 MiB file
    assert cipher.decrypt(Path(out).read_bytes(), "db-g/db.zstd") == src.read_bytes()


def test_key_errors_never_show_the_key(tmp_path: Path) -> None:
    for bad in ("not base64!!" + KEY_B64[:10], base64.b64encode(b"short").decode()):
        with pytest.raises(ConfigError) as info:
            Config().with_overrides(encryption_key=bad)
        assert bad not in str(info.value) and "LIBSQL_BOTTOMLESS_ENCRYPTION_KEY" in str(info.value)
    with pytest.raises(ConfigError, match="only one"):
        Config().with_overrides(encryption_key=KEY_B64, encryption_key_file="/x")
    with pytest.raises(ConfigError, match="KEY_FILE: cannot read"):
        Config().with_overrides(encryption_key_file=str(tmp_path / "missing"))
    raw = tmp_path / "raw.key"
    raw.write_bytes(KEY)
    text = tmp_path / "text.key"
    text.write_text(KEY_B64 + "\n")
    for path in (raw, text):
        key = Config().with_overrides(encryption_key_file=str(path)).cipher()
        assert key is not None and key.key == KEY


def test_config_and_cipher_repr_hide_the_key() -> None:
    config = Config.from_env({"LIBSQL_BOTTOMLESS_ENCRYPTION_KEY": KEY_B64})
    cipher = config.cipher()
    assert cipher is not None and cipher.key == KEY
    for text in (repr(config), str(config), repr(cipher)):
        assert KEY_B64 not in text and KEY.hex() not in text and repr(KEY) not in text
    assert len(cipher.key_id) == 16 and cipher.key_id not in KEY.hex()


def test_new_settings_from_the_environment() -> None:
    config = Config.from_env({"LIBSQL_BOTTOMLESS_LEASE_SECS": "30", "LIBSQL_BOTTOMLESS_ALLOW_HTTP": "1"})
    assert config.lease_secs == 30 and config.allow_http
    assert Config().lease_secs == 300 and not Config().allow_http
    with pytest.raises(ConfigError, match="LEASE_SECS"):
        Config().with_overrides(lease_secs=-1)


@pytest.mark.parametrize(
    ("endpoint", "local"),
    [
        ("http://localhost:9000", True),
        ("http://127.0.0.1:9000", True),
        ("http://127.5.0.1", True),
        ("http://[::1]:9000", True),
        ("http://s3.local:9000", False),
        ("http://10.0.0.5:9000", False),
        ("https://s3.amazonaws.com", False),
    ],
)
def test_loopback(endpoint: str, local: bool) -> None:
    assert is_loopback(endpoint) == local


def test_plain_http_to_another_machine_warns_unless_allowed(caplog: pytest.LogCaptureFixture) -> None:
    config_module.warn_plain_http.cache_clear()
    caplog.set_level(logging.WARNING, logger="bottomless.config")
    Config().with_overrides()  # the default http://localhost:9000 is fine
    Config().with_overrides(endpoint="https://s3.example.com")
    Config().with_overrides(endpoint="http://quiet.example.com", allow_http=True)
    assert not caplog.records
    Config().with_overrides(endpoint="http://s3.example.com")
    Config().with_overrides(endpoint="http://s3.example.com")
    assert len(caplog.records) == 1
    assert "plain http" in caplog.records[0].getMessage() and "ALLOW_HTTP" in caplog.records[0].getMessage()


@pytest.mark.parametrize("name", ["..", "../etc", "a/b", "a\\b", "/abs", ".", "~", "~root", "", "a\0b", "x/../y"])
def test_names_that_could_escape_are_refused(name: str) -> None:
    with pytest.raises(LayoutError):
        validate_db_name(name)


def test_lease_key_is_outside_generation_folders() -> None:
    assert lease_key("app.db") == "app.db.lease"


# ---- the lease, against an in-memory conditional store ---------------------------------


class MemoryStore:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.n = 0

    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        return self.objects.get(key)

    def put(self, key: str, data: bytes, if_none_match: bool = False, if_match: str | None = None, **_: Any) -> str:
        current = self.objects.get(key)
        if if_none_match and current is not None:
            raise PreconditionFailed(key)
        if if_match is not None and (current is None or current[1] != if_match):
            raise PreconditionFailed(key)
        self.n += 1
        etag = f'"{self.n}"'
        self.objects[key] = (data, etag)
        return etag


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def lease(store: MemoryStore, clock: Clock, path: str) -> Lease:
    return Lease(store, "app.db", path, ttl=60, clock=clock)  # type: ignore[arg-type]


def test_lease_rules() -> None:
    store, clock = MemoryStore(), Clock()
    a = lease(store, clock, "/a/app.db")
    b = lease(store, clock, "/b/app.db")
    a.acquire()
    with pytest.raises(FencedError, match="/a/app.db"):
        b.acquire()
    again = lease(store, clock, "/a/app.db")  # the same file after a restart: same owner
    again.acquire()
    a.etag = again.etag
    puts = store.n
    clock.now += 20
    a.ensure()  # two thirds left: nothing to do
    assert store.n == puts
    clock.now += 15
    a.ensure()  # less than half left: renewed
    assert store.n == puts + 1
    clock.now += 61  # expired: b may take over, a finds out at its next write
    b.acquire()
    with pytest.raises(FencedError, match="lost the lease"):
        a.renew()
    b.release()
    info = LeaseInfo.parse(store.objects["app.db.lease"][0])
    assert info is not None and info.expires_at == 0
    a.acquire()  # released: free at once

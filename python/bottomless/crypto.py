"""Client-side encryption of snapshots and batches: AES-256-GCM, chunked.

An encrypted object is::

    header   = b"BLSENC01" | salt (16 random bytes) | chunk size (u32 BE)
    chunk i  = AES-256-GCM(subkey, nonce_i, plaintext[i], aad = header | object key)

``subkey = HKDF-SHA256(master key, salt, info = "bottomless object v1" | object key)``
is fresh for every object, so nonces never repeat under one key however many
objects a bucket holds; ``nonce_i`` is the chunk number (11 bytes, big
endian) followed by 1 for the last chunk and 0 otherwise, so chunks cannot be
reordered, dropped or the object truncated at a chunk boundary. The object
key is bound in twice (HKDF info and associated data): an object copied or
renamed to another key does not decrypt. Encryption happens after
compression; the object's name keeps the codec (``db.zstd``), and the object
carries ``x-amz-meta-bottomless-encryption: aes-256-gcm``.

Files are encrypted chunk by chunk (memory: one chunk), so snapshots of any
size stream through. Decryption of an object held in memory is what restore
needs (it already holds each object whole).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bottomless.errors import BottomlessError, ConfigError

ALGORITHM = "aes-256-gcm"
METADATA_KEY = "bottomless-encryption"  # x-amz-meta-bottomless-encryption
MAGIC = b"BLSENC01"
_HEADER = struct.Struct(">8s16sI")
HEADER_SIZE = _HEADER.size
TAG_SIZE = 16
CHUNK_SIZE = 1 << 20
KEY_VAR = "LIBSQL_BOTTOMLESS_ENCRYPTION_KEY"
KEY_FILE_VAR = "LIBSQL_BOTTOMLESS_ENCRYPTION_KEY_FILE"


class EncryptionError(BottomlessError):
    """An object cannot be decrypted (no key, wrong key, altered), or the key is unusable."""


def is_encrypted(data: bytes) -> bool:
    return data[: len(MAGIC)] == MAGIC


def parse_key(text: str | bytes, source: str) -> bytes:
    """32 key bytes from base64 text (or, from a file, 32 raw bytes). The
    error names ``source`` and never shows the value."""
    raw = text.encode() if isinstance(text, str) else text
    if len(raw) == 32 and isinstance(text, bytes):
        return raw
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{source}: not base64 (expected 32 random bytes, e.g. `openssl rand -base64 32`)") from None
    if len(key) != 32:
        raise ConfigError(f"{source}: decodes to {len(key)} bytes, AES-256 needs 32 (`openssl rand -base64 32`)")
    return key


@dataclass(frozen=True)
class Cipher:
    """The master key of a bucket's databases. ``repr`` never shows it."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) != 32:
            raise ConfigError("the encryption key must be 32 bytes")

    @property
    def key_id(self) -> str:
        """A public fingerprint of the key (safe to log and store)."""
        return hmac.new(self.key, b"bottomless key id", hashlib.sha256).hexdigest()[:16]

    @classmethod
    def from_settings(cls, key: str | None, key_file: str | None) -> Cipher | None:
        """From ``LIBSQL_BOTTOMLESS_ENCRYPTION_KEY`` (base64) or ``..._KEY_FILE``; None when neither is set."""
        if key and key_file:
            raise ConfigError(f"set only one of {KEY_VAR} and {KEY_FILE_VAR}")
        if key:
            return cls(parse_key(key, KEY_VAR))
        if key_file:
            try:
                with open(key_file, "rb") as f:
                    content = f.read(4096)
            except OSError as exc:
                raise ConfigError(f"{KEY_FILE_VAR}: cannot read {key_file!r} ({exc.strerror})") from None
            return cls(parse_key(content, f"{KEY_FILE_VAR} ({key_file})"))
        return None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Cipher | None:
        env = os.environ if env is None else env
        return cls.from_settings(env.get(KEY_VAR, "").strip() or None, env.get(KEY_FILE_VAR, "").strip() or None)

    # ---- encryption --------------------------------------------------------------
    def _aead(self, salt: bytes, object_key: str) -> AESGCM:
        hkdf = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=salt, info=b"bottomless object v1\0" + object_key.encode()
        )
        return AESGCM(hkdf.derive(self.key))

    def _chunks(self, object_key: str, chunks: Iterator[tuple[bytes, bool]], chunk_size: int) -> Iterator[bytes]:
        salt = os.urandom(16)
        header = _HEADER.pack(MAGIC, salt, chunk_size)
        aead = self._aead(salt, object_key)
        aad = header + object_key.encode()
        yield header
        for index, (plain, last) in enumerate(chunks):
            yield aead.encrypt(_nonce(index, last), plain, aad)

    def encrypt(self, data: bytes, object_key: str, chunk_size: int = CHUNK_SIZE) -> bytes:
        """``data`` encrypted for the object ``object_key``."""
        return b"".join(self._chunks(object_key, _split(data, chunk_size), chunk_size))

    def encrypt_file(self, src: str, object_key: str, dest_dir: str, chunk_size: int = CHUNK_SIZE) -> str:
        """An encrypted copy of ``src`` (a new temporary file the caller
        removes), written chunk by chunk."""
        fd, out = tempfile.mkstemp(prefix=".bottomless-encrypted-", dir=dest_dir)
        try:
            with os.fdopen(fd, "wb") as dst, open(src, "rb") as source:
                for part in self._chunks(object_key, _read_chunks(source, chunk_size), chunk_size):
                    dst.write(part)
        except BaseException:
            os.unlink(out)
            raise
        return out

    # ---- decryption --------------------------------------------------------------
    def decrypt(self, data: bytes, object_key: str) -> bytes:
        """The plaintext of an encrypted object; EncryptionError naming the
        object when the key is wrong or the object was altered or moved."""
        if len(data) < HEADER_SIZE + TAG_SIZE or not is_encrypted(data):
            raise EncryptionError(f"object {object_key!r} is not a complete encrypted object")
        view = memoryview(data)
        decryptor = self.decryptor(bytes(view[:HEADER_SIZE]), object_key, len(data))
        return b"".join(decryptor.chunk(view[start:end]) for start, end in decryptor.spans())

    def decryptor(self, header: bytes, object_key: str, size: int) -> Decryptor:
        """Decryption of an object of ``size`` bytes chunk by chunk, from its
        header (its first HEADER_SIZE bytes): what a streamed restore uses."""
        if size < HEADER_SIZE + TAG_SIZE or not is_encrypted(header):
            raise EncryptionError(f"object {object_key!r} is not a complete encrypted object")
        _, salt, chunk_size = _HEADER.unpack(header[:HEADER_SIZE])
        if chunk_size < 1:
            raise EncryptionError(f"object {object_key!r} has a damaged encryption header")
        return Decryptor(
            self._aead(salt, object_key), header[:HEADER_SIZE] + object_key.encode(), chunk_size, size, object_key
        )


@dataclass
class Decryptor:
    """The chunks of one encrypted object, decrypted in order."""

    aead: AESGCM
    aad: bytes
    chunk_size: int
    size: int  # the whole object's, header included
    object_key: str
    index: int = 0

    @property
    def step(self) -> int:
        return self.chunk_size + TAG_SIZE

    def spans(self) -> Iterator[tuple[int, int]]:
        """(start, end) of every encrypted chunk in the object."""
        pos = HEADER_SIZE
        while True:
            end = min(self.size, pos + self.step)
            yield pos, end
            if end == self.size:
                return
            pos = end

    def chunk(self, data: bytes | memoryview) -> bytes:
        """The plaintext of the next chunk (the last one ends the object)."""
        start = HEADER_SIZE + self.index * self.step
        last = start + len(data) >= self.size
        try:
            plain = self.aead.decrypt(_nonce(self.index, last), data, self.aad)
        except InvalidTag:
            raise EncryptionError(
                f"cannot decrypt object {self.object_key!r}: wrong encryption key ({KEY_VAR}), "
                "or the object was altered, truncated or copied from another key"
            ) from None
        self.index += 1
        return plain


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _split(data: bytes, size: int) -> Iterator[tuple[bytes, bool]]:
    if not data:
        yield b"", True
        return
    for start in range(0, len(data), size):
        yield data[start : start + size], start + size >= len(data)


def _read_chunks(source: object, size: int) -> Iterator[tuple[bytes, bool]]:
    read = source.read  # type: ignore[attr-defined]
    current: bytes = read(size)
    while True:
        following: bytes = read(size) if current else b""
        last = not following
        yield current, last
        if last:
            return
        current = following


def encryption_metadata(cipher: Cipher | None) -> dict[str, str]:
    """Object metadata announcing how an object is encrypted ({} when it is not)."""
    return {METADATA_KEY: ALGORITHM} if cipher is not None else {}

"""Bodies of a generation's objects: the one place that knows how they are
encoded and read back.

Snapshots and batches are compressed with the codec their name announces
and then, with a key, encrypted (``crypto.py``); decoding undoes both in
the other order. ``.meta``, ``.dep`` and ``.changecounter`` are small
plaintext objects in libSQL's encoding (``frames.Meta``, 16 raw UUID bytes,
4 bytes of the database header); libSQL's 2023 layout adds ``.consistent``.
"""

from __future__ import annotations

import os
import struct
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from bottomless import layout
from bottomless.compression import Decompressor, compress, compress_file, decompress
from bottomless.crypto import HEADER_SIZE, KEY_FILE_VAR, KEY_VAR, Cipher, Decryptor, EncryptionError, is_encrypted
from bottomless.errors import CompressionError, LayoutError
from bottomless.frames import Meta
from bottomless.s3 import S3Store

T = TypeVar("T")


class ObjectError(LayoutError):
    """An object's body cannot be decoded (damaged, encrypted without a key, wrong key)."""


def encode_body(data: bytes | bytearray | memoryview, codec: str, key: str, cipher: Cipher | None) -> bytes:
    """The body stored under ``key``: ``data`` compressed, then encrypted with a key."""
    body = compress(data, codec)
    return cipher.encrypt(body, key) if cipher is not None else body


def encode_file(src: str, codec: str, key: str, cipher: Cipher | None, dest_dir: str) -> str:
    """The body of ``key`` for the file ``src``, as a new temporary file in
    ``dest_dir`` (the caller removes it), made in bounded memory."""
    packed = compress_file(src, codec, dest_dir)
    if cipher is None:
        return packed
    try:
        return cipher.encrypt_file(packed, key, dest_dir)
    finally:
        os.unlink(packed)


def decode_body(data: bytes, key: str, codec: str, cipher: Cipher | None) -> bytes:
    """The content of the object ``key``: decrypted when it is encrypted,
    then decompressed. ObjectError naming the object when either fails."""
    if is_encrypted(data):
        if cipher is None:
            raise ObjectError(
                f"object {key!r} is encrypted (aes-256-gcm): set {KEY_VAR} "
                f"(base64 of the 32-byte key) or {KEY_FILE_VAR}"
            )
        try:
            data = cipher.decrypt(data, key)
        except EncryptionError as exc:
            raise ObjectError(str(exc)) from None
    try:
        return decompress(data, codec, key)
    except CompressionError as exc:
        raise ObjectError(str(exc)) from None


def generation_objects(
    db_name: str, generation: uuid.UUID, parent: uuid.UUID | None, change_counter: bytes, meta: Meta
) -> list[tuple[str, bytes]]:
    """The small objects that finish a new generation after its snapshot, as
    (key, body) in the order they must be written: ``.dep`` (with a parent),
    ``.changecounter``, and ``.meta`` last, since a generation without it was
    never finished."""
    found: list[tuple[str, bytes]] = []
    if parent is not None:
        found.append((layout.dep_key(db_name, generation), layout.encode_dep(parent)))
    found.append((layout.change_counter_key(db_name, generation), change_counter))
    found.append((layout.meta_key(db_name, generation), meta.encode()))
    return found


def _read(store: S3Store, key: str, decode: Callable[[bytes], T]) -> T | None:
    """A small object decoded, None when it does not exist; ObjectError
    naming it when ``decode`` finds it malformed (ValueError)."""
    data = store.get_or_none(key)
    if data is None:
        return None
    try:
        return decode(data)
    except ValueError as exc:
        raise ObjectError(f"object {key!r} is malformed: {exc}") from None


def read_meta(store: S3Store, db_name: str, generation: uuid.UUID) -> Meta | None:
    """The generation's ``.meta`` (page size and checksum seed), None when
    it has none (libSQL writes none for a generation without frames)."""
    return _read(store, layout.meta_key(db_name, generation), Meta.decode)


def read_dep(store: S3Store, db_name: str, generation: uuid.UUID) -> uuid.UUID | None:
    """The parent generation named by ``.dep``, or None when there is none."""
    return _read(store, layout.dep_key(db_name, generation), layout.decode_dep)


def read_change_counter(store: S3Store, db_name: str, generation: uuid.UUID) -> bytes | None:
    """``.changecounter``: bytes 24..27 of the snapshot's database header."""
    return store.get_or_none(layout.change_counter_key(db_name, generation))


@dataclass(frozen=True)
class Consistent:
    """``.consistent`` of libSQL's 2023 layout: the last committed frame and
    SQLite's WAL checksum after it (u32 + 2 x u32, big-endian)."""

    frame: int
    cksum1: int
    cksum2: int

    def checksum_hex(self) -> str:
        return format((self.cksum1 << 32) | self.cksum2, "x")

    @classmethod
    def decode(cls, data: bytes) -> Consistent:
        if len(data) != 12:
            raise ValueError(f".consistent must be 12 bytes, got {len(data)}")
        return cls(*struct.unpack(">3I", data))


def read_consistent(store: S3Store, db_name: str, generation: uuid.UUID) -> Consistent | None:
    return _read(store, layout.generation_prefix(db_name, generation) + layout.CONSISTENT, Consistent.decode)


class BodyStream:
    """The content of one object whose body arrives in pieces, in order:
    decrypted chunk by chunk when it is encrypted, then decompressed, with
    bounded memory (a snapshot of any size streams through). ObjectError
    naming the object as soon as a piece fails, or at ``finish`` when the
    body stops short."""

    def __init__(self, key: str, codec: str, cipher: Cipher | None, size: int) -> None:
        self.key, self.cipher, self.size = key, cipher, size
        self.decompressor = Decompressor(codec, key)
        self.pending = bytearray()
        self.decryptor: Decryptor | None = None
        self.encrypted: bool | None = None
        self.received = 0

    def feed(self, piece: bytes) -> Iterator[bytes]:
        self.received += len(piece)
        if self.encrypted is None:
            self.pending += piece
            if len(self.pending) < min(self.size, HEADER_SIZE):
                return
            self.encrypted = is_encrypted(bytes(self.pending[:HEADER_SIZE]))
            if self.encrypted:
                self._start_decryption()
            piece, self.pending = bytes(self.pending), bytearray()
            if self.encrypted:
                piece = piece[HEADER_SIZE:]
        if not self.encrypted:
            yield from self._decompress(piece)
            return
        assert self.decryptor is not None
        self.pending += piece
        step = self.decryptor.step
        while len(self.pending) >= step:
            chunk = bytes(self.pending[:step])
            del self.pending[:step]
            yield from self._decompress(self._decrypt(chunk))

    def _start_decryption(self) -> None:
        if self.cipher is None:
            raise ObjectError(
                f"object {self.key!r} is encrypted (aes-256-gcm): set {KEY_VAR} "
                f"(base64 of the 32-byte key) or {KEY_FILE_VAR}"
            )
        try:
            self.decryptor = self.cipher.decryptor(bytes(self.pending[:HEADER_SIZE]), self.key, self.size)
        except EncryptionError as exc:
            raise ObjectError(str(exc)) from None

    def _decrypt(self, chunk: bytes) -> bytes:
        assert self.decryptor is not None
        try:
            return self.decryptor.chunk(chunk)
        except EncryptionError as exc:
            raise ObjectError(str(exc)) from None

    def _decompress(self, data: bytes) -> Iterator[bytes]:
        try:
            yield from self.decompressor.feed(data)
        except CompressionError as exc:
            raise ObjectError(str(exc)) from None

    def finish(self) -> Iterator[bytes]:
        """What is left; ObjectError when the body is incomplete or damaged."""
        if self.received != self.size:
            raise ObjectError(f"object {self.key!r} arrived with {self.received} of its {self.size} bytes")
        if self.encrypted is None:  # shorter than an encryption header
            self.encrypted = False
            piece, self.pending = bytes(self.pending), bytearray()
            yield from self._decompress(piece)
        elif self.encrypted and self.pending:
            chunk, self.pending = bytes(self.pending), bytearray()
            yield from self._decompress(self._decrypt(chunk))
        try:
            yield from self.decompressor.finish()
        except CompressionError as exc:
            raise ObjectError(str(exc)) from None

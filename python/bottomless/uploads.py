"""Large-object transfers: compress (then, with a key, encrypt chunk by
chunk) a file to a temporary file in bounded memory and upload it: one
conditional PUT (write once) up to s3.SINGLE_PUT_LIMIT, else boto3's managed
(multipart, parallel) transfer."""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile

import zstandard
from boto3.s3.transfer import TransferConfig

from bottomless.crypto import Cipher, encryption_metadata
from bottomless.s3 import S3Store

CHUNK = 1 << 20
TRANSFER = TransferConfig(multipart_threshold=16 * CHUNK, multipart_chunksize=16 * CHUNK, max_concurrency=8)


def compress_file(src: str, codec: str, dest_dir: str) -> str:
    """Compressed copy of ``src`` (a new temporary file the caller removes)."""
    fd, out = tempfile.mkstemp(prefix=".bottomless-upload-", dir=dest_dir)
    with os.fdopen(fd, "wb") as dst, open(src, "rb") as source:
        if codec == "zstd":
            zstandard.ZstdCompressor(level=3, threads=-1).copy_stream(source, dst, read_size=CHUNK, write_size=CHUNK)
        elif codec == "gz":
            with gzip.GzipFile(fileobj=dst, mode="wb", compresslevel=6, mtime=0) as gz:
                shutil.copyfileobj(source, gz, CHUNK)
        else:
            shutil.copyfileobj(source, dst, CHUNK)
    return out


def upload_file(
    store: S3Store, key: str, path: str, codec: str, cipher: Cipher | None = None, write_once: bool = True
) -> int:
    """Upload ``path`` compressed with ``codec`` (and encrypted when
    ``cipher`` is given) to ``key``, written once (``If-None-Match``) unless
    ``write_once`` is off; returns its size in S3."""
    folder = os.path.dirname(path)
    packed = compress_file(path, codec, folder)
    try:
        if cipher is not None:
            sealed = cipher.encrypt_file(packed, key, folder)
            os.unlink(packed)
            packed = sealed
        size = os.path.getsize(packed)
        store.put_file(key, packed, TRANSFER, metadata=encryption_metadata(cipher), if_none_match=write_once)
        return size
    finally:
        os.unlink(packed)

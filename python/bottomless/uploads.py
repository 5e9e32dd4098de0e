"""Large-object transfers: compress a file to a temporary file in bounded
memory and upload it with boto3's managed (multipart, parallel) transfer."""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile

import zstandard
from boto3.s3.transfer import TransferConfig

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


def upload_file(store: S3Store, key: str, path: str, codec: str) -> int:
    """Upload ``path`` compressed with ``codec`` to ``key``; returns its size in S3."""
    packed = compress_file(path, codec, os.path.dirname(path))
    try:
        size = os.path.getsize(packed)
        store.put_file(key, packed, TRANSFER)
        return size
    finally:
        os.unlink(packed)

"""Large-object transfers: encode a file (``objects.encode_file``: compress,
then with a key encrypt chunk by chunk) to a temporary file in bounded
memory and upload it: one conditional PUT (write once) up to
s3.SINGLE_PUT_LIMIT, else boto3's managed (multipart, parallel) transfer."""

from __future__ import annotations

import os

from boto3.s3.transfer import TransferConfig

from bottomless.crypto import Cipher, encryption_metadata
from bottomless.objects import encode_file
from bottomless.s3 import S3Store

CHUNK = 1 << 20
TRANSFER = TransferConfig(multipart_threshold=16 * CHUNK, multipart_chunksize=16 * CHUNK, max_concurrency=8)


def upload_file(
    store: S3Store, key: str, path: str, codec: str, cipher: Cipher | None = None, write_once: bool = True
) -> int:
    """Upload ``path`` compressed with ``codec`` (and encrypted when
    ``cipher`` is given) to ``key``, written once (``If-None-Match``) unless
    ``write_once`` is off; returns its size in S3."""
    packed = encode_file(path, codec, key, cipher, os.path.dirname(path))
    try:
        size = os.path.getsize(packed)
        store.put_file(key, packed, TRANSFER, metadata=encryption_metadata(cipher), if_none_match=write_once)
        return size
    finally:
        os.unlink(packed)

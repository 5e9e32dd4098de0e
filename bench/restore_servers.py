"""The S3 servers bench/restore.py restores from, and what each costs.

moto (``s3bench.S3Server``, where everything is replicated) logs its
requests, so its busy seconds are the union of their intervals. s3rver
(npm, ``integration/s3rver.py``) is a second, independent server that
serves a ranged GET by reading only that range; the replicated objects are
copied into it. For both, the server process's CPU seconds during a
restore are read from ``/proc`` (a server-bound run shows as such).
"""

# mypy: disable-error-code="import-untyped"

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.config

HERE = Path(__file__).resolve().parent
S3RVER_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "S3RVER",
    "AWS_SECRET_ACCESS_KEY": "S3RVER",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class Server:
    name: str
    endpoint: str
    credentials: dict[str, str]
    pid: int

    def env(self) -> dict[str, str]:
        return {**{k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}, **self.credentials}

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the server process so far."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client(server: Server) -> object:
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=server.credentials["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
        config=botocore.config.Config(s3={"addressing_style": "path"}),
    )


def copy_bucket(src: Server, dst: Server, bucket: str) -> int:
    """Copies every object of ``bucket`` from ``src`` to ``dst``; their bytes."""
    source, dest = client(src), client(dst)
    dest.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    total = 0
    for page in source.get_paginator("list_objects_v2").paginate(Bucket=bucket):  # type: ignore[attr-defined]
        for obj in page.get("Contents", []):
            body = source.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()  # type: ignore[attr-defined]
            dest.put_object(Bucket=bucket, Key=obj["Key"], Body=body)  # type: ignore[attr-defined]
            total += len(body)
    return total


def _pid_listening_on(port: int) -> int:
    """The process whose command line names ``port`` (s3rver's node)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            args = (entry / "cmdline").read_bytes().split(b"\0")
            if b"-p" in args and str(port).encode() in args and any(b"s3rver" in a for a in args):
                return int(entry.name)
    raise RuntimeError(f"no s3rver process found for port {port}")


@contextlib.contextmanager
def s3rver() -> Iterator[Server]:
    sys.path.insert(0, str(HERE.parent / "integration"))
    import s3rver as s3rver_module

    with s3rver_module.running() as endpoint:
        port = int(endpoint.rsplit(":", 1)[1])
        yield Server("s3rver", endpoint, S3RVER_CREDENTIALS, _pid_listening_on(port))

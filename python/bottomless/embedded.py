"""An S3 server in this process (moto), for demos and tests without MinIO."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

# moto accepts any credentials; boto3 still needs some to sign requests.
DEMO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bottomless", "AWS_SECRET_ACCESS_KEY": "bottomless"}


class EmbeddedServerMissing(RuntimeError):
    """moto, which the embedded server runs, is not installed."""


@contextmanager
def embedded_s3(host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run moto's S3 server on ``host`` (a free port by default); yields its
    endpoint URL and stops the server on exit. Sets demo credentials in the
    environment when none are configured."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise EmbeddedServerMissing(
            "the embedded S3 server needs moto: install it with "
            "`python -m pip install 'bottomless[demo]'`, or set LIBSQL_BOTTOMLESS_ENDPOINT to your S3 server"
        ) from exc

    for name, value in DEMO_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    endpoint = f"http://{bound_host}:{bound_port}"
    log.info("embedded S3 server listening at %s", endpoint)
    try:
        yield endpoint
    finally:
        server.stop()

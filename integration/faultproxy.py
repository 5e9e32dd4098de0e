"""A fault-injecting HTTP proxy for S3 tests.

Listens on 127.0.0.1 (a free port), forwards every request to an upstream
S3 endpoint and, at configurable rates, instead:

- answers 503 SlowDown (an S3 error document) without forwarding;
- delays the response (``slow_secs``) after forwarding;
- forwards the request (so it takes effect upstream), then sends the
  response headers and only half of the body and drops the connection (or,
  for an answer without a body, drops the connection without answering);
- during an outage (``outage = True``) closes every connection at once
  without an answer, as an unreachable server would.

Rates and the outage switch may be changed while the proxy runs.
"""

from __future__ import annotations

import http.client
import random
import socket
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade", "trailer"}

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate (injected by faultproxy).</Message></Error>"
)


@dataclass
class Faults:
    error_rate: float = 0.0
    slow_rate: float = 0.0
    slow_secs: float = 0.3
    drop_rate: float = 0.0
    outage: bool = False
    # Drop the first GET of every object key mid-body (then serve it normally).
    drop_first_gets: bool = False
    seed: int | None = None
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def pick(self) -> str:
        if self.outage:
            return "refused"
        r = self.rng.random()
        for kind, rate in (("error", self.error_rate), ("slow", self.slow_rate), ("drop", self.drop_rate)):
            if r < rate:
                return kind
            r -= rate
        return "ok"


class FaultProxy:
    def __init__(self, upstream: str, faults: Faults | None = None) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme != "http" or parsed.hostname is None:
            raise ValueError(f"faultproxy forwards to plain http endpoints, not {upstream!r}")
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port or 80
        self.faults = faults or Faults()
        self.counts: Counter[str] = Counter()
        self._gets_seen: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def count(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] += 1

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, name="faultproxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts: list[bytes] = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(parts)
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _abort(self) -> None:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def _handle(self) -> None:
                kind = proxy.faults.pick()
                body = self._body()
                if kind == "ok" and proxy.faults.drop_first_gets and self.command == "GET" and "?" not in self.path:
                    with proxy._lock:
                        if self.path not in proxy._gets_seen:
                            proxy._gets_seen.add(self.path)
                            kind = "drop"
                proxy.count(kind)
                if kind == "refused":
                    self._abort()
                    return
                if kind == "error":
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(SLOW_DOWN)))
                    self.end_headers()
                    self.wfile.write(SLOW_DOWN)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    headers["Content-Length"] = str(len(body))
                upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    resp = upstream.getresponse()
                    payload = resp.read()
                    status, reason, resp_headers = resp.status, resp.reason, resp.getheaders()
                finally:
                    upstream.close()
                if kind == "slow":
                    time.sleep(proxy.faults.slow_secs)
                if kind == "drop" and (self.command == "HEAD" or not payload):
                    # Nothing to cut in half: the request took effect, the answer is lost.
                    self._abort()
                    return
                self.send_response(status, reason)
                for name, value in resp_headers:
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                if self.command == "HEAD":
                    length = next((v for k, v in resp_headers if k.lower() == "content-length"), "0")
                    self.send_header("Content-Length", length)
                else:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if kind == "drop":
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self._abort()
                    return
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        return Handler

"""A fault-injecting HTTP proxy for S3 tests.

Listens on 127.0.0.1 (a free port), forwards every request to an upstream
S3 endpoint and, at configurable rates, instead:

- answers 503 SlowDown (an S3 error document) without forwarding;
- delays the response (``slow_secs``) after forwarding;
- forwards the request (so it takes effect upstream), then sends the
  response headers and only half of the body and drops the connection (or,
  for an answer without a body, drops the connection without answering);
- forwards the next ``lose_answers`` PUTs and drops each connection
  without an answer: the write took effect, its client never hears it;
- during an outage (``outage = True``) closes every connection at once
  without an answer, as an unreachable server would.

And, every time, it can play an S3-compatible server that lacks a feature:

- ``conditional``: what a PUT carrying ``If-None-Match``/``If-Match`` (those
  named in ``conditional_headers``) gets: ``"pass"`` (forwarded), ``"ignore"``
  (the headers are stripped and the PUT forwarded: the server overwrites and
  accepts stale ETags), ``"501"`` (NotImplemented) or ``"400"``
  (InvalidRequest), answered without forwarding. Stripping a signed header
  works against moto, which does not check signatures.
- ``multi_delete``: ``"pass"``, ``"501"`` (DeleteObjects NotImplemented), or
  ``"md5"`` (400 MissingContentMD5 unless the request carries Content-MD5).
- ``ranged_get``: ``"pass"`` or ``"ignore"`` (Range stripped: the whole object).

Rates, modes and the outage switch may be changed while the proxy runs.
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



def error_document(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message} (injected by faultproxy).</Message></Error>"
    ).encode()


SLOW_DOWN = error_document("SlowDown", "Please reduce your request rate")
_REFUSALS = {
    "501": (501, "NotImplemented", "A header you provided implies functionality that is not implemented"),
    "400": (400, "InvalidRequest", "Conditional headers are not supported"),
    "md5": (400, "MissingContentMD5", "Missing required header for this request: Content-MD5"),
}


@dataclass
class Faults:
    error_rate: float = 0.0
    slow_rate: float = 0.0
    slow_secs: float = 0.3
    drop_rate: float = 0.0
    outage: bool = False
    # Drop the first GET of every object key mid-body (then serve it normally).
    drop_first_gets: bool = False
    lose_answers: int = 0  # the next PUTs to forward without answering
    conditional: str = "pass"
    conditional_headers: tuple[str, ...] = ("if-none-match", "if-match")
    multi_delete: str = "pass"
    ranged_get: str = "pass"
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

            def _answer(self, status: int, document: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(document)))
                self.end_headers()
                self.wfile.write(document)

            def _feature_refusal(self) -> str | None:
                """Play a server without a feature: strip the headers it
                would ignore; the mode key of a refusal, or None."""
                faults = proxy.faults
                if self.command == "PUT" and faults.conditional != "pass":
                    present = [h for h in faults.conditional_headers if h in self.headers]
                    if present and faults.conditional == "ignore":
                        for name in present:
                            del self.headers[name]
                        proxy.count("conditional-ignored")
                    elif present:
                        return faults.conditional
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)
                if self.command == "POST" and "delete" in query and faults.multi_delete != "pass":
                    if faults.multi_delete == "501" or "Content-MD5" not in self.headers:
                        return faults.multi_delete
                if self.command == "GET" and faults.ranged_get == "ignore" and "Range" in self.headers:
                    del self.headers["Range"]
                    proxy.count("range-ignored")
                return None

            def _handle(self) -> None:
                kind = proxy.faults.pick()
                body = self._body()
                refusal = self._feature_refusal() if kind != "refused" else None
                if refusal is not None:
                    status, code, message = _REFUSALS[refusal]
                    proxy.count(f"refused-{refusal}")
                    self._answer(status, error_document(code, message))
                    return
                if kind == "ok" and proxy.faults.drop_first_gets and self.command == "GET" and "?" not in self.path:
                    with proxy._lock:
                        if self.path not in proxy._gets_seen:
                            proxy._gets_seen.add(self.path)
                            kind = "drop"
                if kind == "ok" and self.command == "PUT":
                    with proxy._lock:
                        if proxy.faults.lose_answers > 0:
                            proxy.faults.lose_answers -= 1
                            kind = "drop"
                proxy.count(kind)
                if kind == "refused":
                    self._abort()
                    return
                if kind == "error":
                    self._answer(503, SLOW_DOWN)
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

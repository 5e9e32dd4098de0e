"""Prometheus metrics of a replicator process (``--metrics-addr HOST:PORT``).

Per database (label ``database``, its ``<db-name>`` or path): lag in
seconds and unshipped bytes, read when scraped (a stalled replicator must
not leave a stale, reassuring value behind), batches, bytes shipped by
kind, S3 requests by kind, errors by kind. Each count is also kept for the
whole process without the label, so a dashboard of a thousand databases
need not sum a thousand series.

The metrics live in a registry of their own, never prometheus_client's
global one, so several replicators in one process (tests, an application
with its own metrics) do not collide.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from bottomless.errors import ConfigError

_DB = ("database",)


@dataclass
class _Families:
    lag: Gauge
    unshipped: Gauge
    batches: Counter
    shipped: Counter
    requests: Counter
    errors: Counter
    databases: Gauge
    skipped: Gauge
    all_batches: Counter
    all_shipped: Counter
    all_requests: Counter
    all_errors: Counter


class Metrics:
    """The metrics of one replicator process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._f = _Families(
            lag=Gauge(
                "bottomless_db_lag_seconds", "Age of the oldest committed transaction not yet in S3", _DB, registry=r
            ),
            unshipped=Gauge("bottomless_db_unshipped_bytes", "Bytes in the spool not yet in S3", _DB, registry=r),
            batches=Counter("bottomless_db_batches", "Batches shipped", _DB, registry=r),
            shipped=Counter("bottomless_db_shipped_bytes", "Bytes uploaded, by kind", (*_DB, "kind"), registry=r),
            requests=Counter("bottomless_db_requests", "S3 requests, by kind", (*_DB, "kind"), registry=r),
            errors=Counter("bottomless_db_errors", "Errors, by kind", (*_DB, "kind"), registry=r),
            databases=Gauge("bottomless_databases", "Databases this process replicates", registry=r),
            skipped=Gauge(
                "bottomless_skipped_files",
                "Files its folders and config name that it does not replicate (not SQLite, unreadable, a name "
                "taken, missing); the log says why",
                registry=r,
            ),
            all_batches=Counter("bottomless_batches", "Batches shipped by this process", registry=r),
            all_shipped=Counter(
                "bottomless_shipped_bytes", "Bytes uploaded by this process, by kind", ("kind",), registry=r
            ),
            all_requests=Counter("bottomless_requests", "S3 requests of this process, by kind", ("kind",), registry=r),
            all_errors=Counter("bottomless_errors", "Errors in this process, by kind", ("kind",), registry=r),
        )
        self._dbs: dict[str, DatabaseMetrics] = {}

    def database(
        self, name: str, lag_seconds: Callable[[], float], unshipped_bytes: Callable[[], float]
    ) -> DatabaseMetrics:
        """Starts reporting ``name``; ``lag_seconds`` and ``unshipped_bytes``
        are called at each scrape and must be cheap and never raise."""
        self._f.lag.labels(name).set_function(lag_seconds)
        self._f.unshipped.labels(name).set_function(unshipped_bytes)
        db = self._dbs[name] = DatabaseMetrics(self._f, name)
        self._f.databases.set(len(self._dbs))
        return db

    def forget(self, name: str) -> None:
        """Stops reporting a database that is no longer replicated."""
        for family in (self._f.lag, self._f.unshipped, self._f.batches):
            try:
                family.remove(name)
            except KeyError:
                pass
        db = self._dbs.pop(name, None)
        for family, kind in db.kinds if db is not None else ():
            family.remove(name, kind)
        self._f.databases.set(len(self._dbs))

    def skipped(self, files: int) -> None:
        """How many files the sources name that are not replicated now."""
        self._f.skipped.set(files)

    def serve(self, addr: str) -> MetricsServer:
        """Serves ``/metrics`` on ``addr`` (``HOST:PORT``, ``[::1]:PORT``,
        or ``:PORT`` for every interface) in a background thread."""
        host, port = parse_addr(addr)
        try:
            server, _thread = start_http_server(port, host, registry=self.registry)
        except OSError as exc:
            why = "the port is in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise ConfigError(f"--metrics-addr {addr}: cannot listen: {why}") from None
        return MetricsServer(server)


@dataclass
class DatabaseMetrics:
    """What one database's replicator records."""

    _f: _Families
    name: str
    # The (family, kind) label pairs used, so forget() can remove them all.
    kinds: set[tuple[Counter, str]] = field(default_factory=set)

    def batch(self, nbytes: int) -> None:
        self._f.batches.labels(self.name).inc()
        self._f.all_batches.inc()
        self.shipped("batch", nbytes)

    def shipped(self, kind: str, nbytes: int) -> None:
        self.kinds.add((self._f.shipped, kind))
        self._f.shipped.labels(self.name, kind).inc(nbytes)
        self._f.all_shipped.labels(kind).inc(nbytes)

    def request(self, kind: str) -> None:
        self.kinds.add((self._f.requests, kind))
        self._f.requests.labels(self.name, kind).inc()
        self._f.all_requests.labels(kind).inc()

    def error(self, kind: str) -> None:
        self.kinds.add((self._f.errors, kind))
        self._f.errors.labels(self.name, kind).inc()
        self._f.all_errors.labels(kind).inc()


@dataclass
class MetricsServer:
    server: WSGIServer

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def parse_addr(addr: str) -> tuple[str, int]:
    host, sep, port_text = addr.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"--metrics-addr {addr!r}: give HOST:PORT, e.g. 127.0.0.1:9090 or :9090 for every interface")
    host = host.strip("[]") or "0.0.0.0"
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror:
        raise ConfigError(f"--metrics-addr {addr!r}: unknown host {host!r}") from None
    return host, int(port_text)

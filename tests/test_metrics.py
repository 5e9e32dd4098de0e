"""The replicator's Prometheus endpoint, scraped over HTTP as Prometheus
would: per-database and process series, live lag, forgotten databases gone,
clear errors for a bad or busy address."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bottomless.errors import ConfigError
from bottomless.metrics import Metrics, MetricsServer


@pytest.fixture
def served() -> Iterator[tuple[Metrics, MetricsServer]]:
    metrics = Metrics()
    server = metrics.serve("127.0.0.1:0")
    yield metrics, server
    server.close()


def scrape(server: MetricsServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_scrape_shows_each_database_and_the_process(served: tuple[Metrics, MetricsServer]) -> None:
    metrics, server = served
    lag = [2.5]
    a = metrics.database("a.db", lambda: lag[0], lambda: 4096)
    b = metrics.database("tenants%2Fb.db", lambda: 0.0, lambda: 0)
    a.batch(1000)
    a.batch(500)
    a.request("PUT")
    b.request("PUT")
    b.error("throttled")
    got = scrape(server)
    assert got[("bottomless_db_lag_seconds", (("database", "a.db"),))] == 2.5
    assert got[("bottomless_db_unshipped_bytes", (("database", "a.db"),))] == 4096
    assert got[("bottomless_db_batches_total", (("database", "a.db"),))] == 2
    assert got[("bottomless_db_shipped_bytes_total", (("database", "a.db"), ("kind", "batch")))] == 1500
    assert got[("bottomless_requests_total", (("kind", "PUT"),))] == 2
    assert got[("bottomless_db_errors_total", (("database", "tenants%2Fb.db"), ("kind", "throttled")))] == 1
    assert got[("bottomless_databases", ())] == 2
    lag[0] = 9.0
    assert scrape(server)[("bottomless_db_lag_seconds", (("database", "a.db"),))] == 9.0


def test_forgotten_database_leaves_no_series(served: tuple[Metrics, MetricsServer]) -> None:
    metrics, server = served
    gone = metrics.database("gone.db", lambda: 1.0, lambda: 1)
    gone.batch(10)
    gone.request("PUT")
    metrics.forget("gone.db")
    got = scrape(server)
    assert not [key for key in got if ("database", "gone.db") in key[1]]
    assert got[("bottomless_batches_total", ())] == 1  # the process total keeps its history
    assert got[("bottomless_databases", ())] == 0


@pytest.mark.parametrize("addr", ["9090", "host:port", "127.0.0.1:99999", "no-such-host.invalid:9090"])
def test_bad_address_is_a_clear_error(addr: str) -> None:
    with pytest.raises(ConfigError, match="--metrics-addr"):
        Metrics().serve(addr)


def test_busy_port_is_a_clear_error(served: tuple[Metrics, MetricsServer]) -> None:
    _, server = served
    with pytest.raises(ConfigError, match="the port is in use"):
        Metrics().serve(f"127.0.0.1:{server.port}")

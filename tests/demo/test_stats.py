"""The metrics panel's arithmetic and its scraper.

Table-driven checks of the quantile interpolation and of rates between two samples; parsing
a real exposition produced by prometheus_client; the panel's window driven by an injected
clock and fetch; and ``fetch_text`` against real loopback servers (a good one, an error, a
non-HTTP answer, a refused port, a silent one).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

from forkloop.demo.stats import (
    MetricsUnavailable,
    Sample,
    StatsPanel,
    fetch_text,
    parse_sample,
    quantile,
    summarize,
)

INF = math.inf


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, {}, None),
        (0.5, {0.1: 0.0, INF: 0.0}, None),
        # 10 requests, all in (0, 0.1]: the median interpolates to the middle of the bucket.
        (0.5, {0.1: 10.0, 0.2: 10.0, INF: 10.0}, 0.05),
        # 5 in (0, 0.1], 5 in (0.1, 0.2]: p50 is the first bucket's bound, p99 near 0.2.
        (0.5, {0.1: 5.0, 0.2: 10.0, INF: 10.0}, 0.1),
        (0.99, {0.1: 5.0, 0.2: 10.0, INF: 10.0}, 0.198),
        (0.75, {0.1: 5.0, 0.2: 10.0, INF: 10.0}, 0.15),
        # Beyond the last finite bound: that bound is all a histogram can say.
        (0.99, {0.1: 1.0, 0.2: 1.0, INF: 10.0}, 0.2),
        # No +Inf bucket given: the largest count is the total.
        (0.5, {0.1: 2.0, 0.2: 4.0}, 0.1),
    ],
)
def test_quantile(q: float, buckets: dict[float, float], expected: float | None) -> None:
    got = quantile(q, buckets)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


def sample(at: float, count: float, total_s: float, buckets: dict[float, float]) -> Sample:
    return Sample(at=at, count=count, total_s=total_s, buckets=buckets, per_worker={"0": count})


def test_summarize_counts_only_the_requests_in_between() -> None:
    old = sample(10.0, 100, 5.0, {0.01: 90, 0.1: 100, INF: 100})
    # 40 new requests: 20 under 10 ms, 20 between 10 and 100 ms, 2 s of time in all.
    new = sample(12.0, 140, 7.0, {0.01: 110, 0.1: 140, INF: 140})
    new.per_worker = {"0": 120, "1": 20, "retired": 0}
    old.per_worker = {"0": 100}
    out = summarize(old, new)
    assert out["requests"] == 40
    assert out["rate_rps"] == 20.0
    assert out["window_s"] == 2.0
    assert out["p50_ms"] == pytest.approx(10.0)
    assert out["p99_ms"] == pytest.approx(10 + 90 * (39.6 - 20) / 20, rel=1e-3)
    assert out["mean_ms"] == pytest.approx(50.0)
    assert out["per_worker_rps"] == {"0": 10.0, "1": 10.0}


def test_summarize_without_requests_has_a_zero_rate_and_no_latency() -> None:
    old = sample(1.0, 5, 0.5, {0.1: 5, INF: 5})
    out = summarize(old, sample(3.0, 5, 0.5, {0.1: 5, INF: 5}))
    assert out["rate_rps"] == 0.0
    assert out["p50_ms"] is None
    assert out["mean_ms"] is None


def test_summarize_after_a_counter_reset_says_unknown() -> None:
    out = summarize(sample(1.0, 50, 1, {}), sample(2.0, 3, 0.1, {}))
    assert out["rate_rps"] is None


def exposition() -> tuple[CollectorRegistry, Histogram, Gauge]:
    registry = CollectorRegistry()
    hist = Histogram(
        "http_server_request_duration",
        "Duration.",
        ["http_route", "worker"],
        unit="seconds",
        buckets=(0.005, 0.05, 0.5),
        registry=registry,
    )
    ws = Gauge("forkloop_websocket_open_connections", "Open.", ["worker"], registry=registry)
    return registry, hist, ws


def test_parse_sample_sums_over_labels_including_retired() -> None:
    registry, hist, ws = exposition()
    hist.labels("/", "0").observe(0.001)
    hist.labels("/", "0").observe(0.2)
    hist.labels("/api", "1").observe(0.01)
    hist.labels("/", "retired").observe(0.001)
    ws.labels("0").set(2)
    ws.labels("1").set(1)
    got = parse_sample(generate_latest(registry).decode(), at=5.0)
    assert got.at == 5.0
    assert got.count == 4
    assert got.total_s == pytest.approx(0.212)
    assert got.buckets == {0.005: 2, 0.05: 3, 0.5: 4, INF: 4}
    assert got.per_worker == {"0": 2, "1": 1, "retired": 1}
    assert got.ws_open == 3


def test_parse_sample_of_an_empty_exposition() -> None:
    got = parse_sample("", at=1.0)
    assert (got.count, got.buckets, got.ws_open) == (0, {}, 0)


class FakeSource:
    """An injected clock and fetch: each fetch returns the exposition for ``count``."""

    def __init__(self) -> None:
        self.now = 100.0
        self.count = 0
        self.fetches = 0
        self.fail: Exception | None = None

    def clock(self) -> float:
        return self.now

    async def fetch(self, url: str) -> str:
        self.fetches += 1
        if self.fail is not None:
            raise self.fail
        c = self.count
        name = "http_server_request_duration_seconds"
        return (
            f"# TYPE {name} histogram\n"
            f'{name}_bucket{{le="0.01",worker="0"}} {c}\n'
            f'{name}_bucket{{le="+Inf",worker="0"}} {c}\n'
            f'{name}_count{{worker="0"}} {c}\n'
            f'{name}_sum{{worker="0"}} {c * 0.002}\n'
        )


async def test_panel_warms_up_then_reports_rate_over_its_window() -> None:
    src = FakeSource()
    panel = StatsPanel("http://127.0.0.1:9/metrics", window_s=10, clock=src.clock, fetch=src.fetch)
    first = await panel.poll()
    assert first["available"] is False
    assert first["warming_up"] is True
    assert first["error"] is None
    # Within min_interval_s a poll reuses the last scrape.
    src.now += 0.5
    await panel.poll()
    assert src.fetches == 1
    for _ in range(12):
        src.now += 1.0
        src.count += 5
        out = await panel.poll()
    assert out["available"] is True
    assert out["rate_rps"] == pytest.approx(5.0 * 12 / 12.5, rel=0.25)
    assert out["window_s"] <= 11
    assert out["p50_ms"] == pytest.approx(5.0)
    assert out["total_requests"] == 60
    assert len(list(panel.samples)) <= 12


async def test_panel_reports_errors_and_recovers() -> None:
    src = FakeSource()
    panel = StatsPanel("http://127.0.0.1:9/metrics", clock=src.clock, fetch=src.fetch)
    src.fail = MetricsUnavailable("http://127.0.0.1:9/metrics: Connection refused")
    out = await panel.poll()
    assert out["available"] is False
    assert out["warming_up"] is False
    assert "Connection refused" in out["error"]
    src.fail = None
    src.now += 2
    await panel.poll()
    src.now += 2
    src.count = 4
    out = await panel.poll()
    assert out["error"] is None
    assert out["rate_rps"] == 2.0


async def test_panel_reports_a_malformed_exposition() -> None:
    async def garbage(url: str) -> str:
        return "this is { not prometheus\n"

    out = await StatsPanel("http://127.0.0.1:9/m", fetch=garbage).poll()
    assert "malformed exposition" in out["error"]


@pytest.mark.parametrize("url", ["https://127.0.0.1/metrics", "127.0.0.1:9100", "http:///x"])
def test_panel_refuses_a_bad_url_at_once(url: str) -> None:
    with pytest.raises(ValueError, match="metrics URL must be"):
        StatsPanel(url)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def tcp_server() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    """Start asyncio servers on loopback; teardown closes them and every connection."""
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []
    tasks: set[asyncio.Task[None]] = set()

    async def start(handler: Handler) -> int:
        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)  # type: ignore[arg-type]
            await handler(reader, writer)

        server = await asyncio.start_server(tracked, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for writer in writers:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    for server in servers:
        await server.wait_closed()


def answering(raw: bytes) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(raw)
        await writer.drain()
        writer.close()

    return handle


async def test_fetch_text_reads_a_200_body(tcp_server: Callable[[Handler], Awaitable[int]]) -> None:
    body = b"# HELP x y\nx 1\n" * 5000  # larger than one read
    head = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"
    port = await tcp_server(answering(head + body))
    assert await fetch_text(f"http://127.0.0.1:{port}/metrics") == body.decode()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"HTTP/1.0 503 Service Unavailable\r\n\r\nbusy", "HTTP 503 Service Unavailable"),
        (b"SSH-2.0-OpenSSH\r\n", "not an HTTP response"),
        (b"", "not an HTTP response"),
    ],
)
async def test_fetch_text_errors(
    tcp_server: Callable[[Handler], Awaitable[int]], raw: bytes, message: str
) -> None:
    port = await tcp_server(answering(raw))
    with pytest.raises(MetricsUnavailable, match=message):
        await fetch_text(f"http://127.0.0.1:{port}/metrics")


async def test_fetch_text_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(MetricsUnavailable, match=f"127.0.0.1:{port}/metrics: "):
            await fetch_text(f"http://127.0.0.1:{port}/metrics")


async def test_fetch_text_times_out(tcp_server: Callable[[Handler], Awaitable[int]]) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    port = await tcp_server(silent)
    with pytest.raises(MetricsUnavailable, match=r"no answer within 0\.2s"):
        await fetch_text(f"http://127.0.0.1:{port}/metrics", timeout_s=0.2)

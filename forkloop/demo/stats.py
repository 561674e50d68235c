"""The live panel's numbers: this server's request rate and latency, from its own /metrics.

Owns: fetching the supervisor's Prometheus exposition over plain HTTP (a few lines of
asyncio; the demo has no HTTP client dependency), reducing one scrape to a :class:`Sample`
(totals summed over every label, ``worker="retired"`` included, so the sum never goes
backwards when workers are replaced), and computing, between two samples, the request rate
and the p50/p99 latency of the requests completed in between -- Prometheus's
``histogram_quantile`` over bucket increases, with linear interpolation inside a bucket.

:class:`StatsPanel` keeps a short window of samples per worker process: a poll scrapes when
the newest sample is older than ``min_interval_s`` (the master refreshes a worker's series on
every heartbeat, about once a second), so any number of viewers cost one scrape a second.

Imports: stdlib, ``prometheus_client.parser``, ``yarl``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from yarl import URL

__all__ = [
    "DURATION",
    "MetricsUnavailable",
    "Sample",
    "StatsPanel",
    "fetch_text",
    "parse_sample",
    "quantile",
    "summarize",
]

DURATION = "http_server_request_duration_seconds"
WS_OPEN = "forkloop_websocket_open_connections"
RETIRED = "retired"
MAX_EXPOSITION_BYTES = 16 * 1024 * 1024


class MetricsUnavailable(Exception):
    """The metrics endpoint could not be read; ``str`` says why, in one line."""


@dataclass
class Sample:
    """One scrape, reduced: totals over all series of the duration histogram."""

    at: float  # monotonic seconds
    count: float = 0.0
    total_s: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count
    per_worker: dict[str, float] = field(default_factory=dict)  # worker label -> count
    ws_open: float = 0.0


def parse_sample(text: str, at: float) -> Sample:
    """Reduce a text exposition to a :class:`Sample`. Raises ValueError on a malformed one."""
    sample = Sample(at=at)
    for family in text_string_to_metric_families(text):
        if family.name == DURATION:
            for s in family.samples:
                if s.name == DURATION + "_bucket":
                    bound = float(s.labels["le"])
                    sample.buckets[bound] = sample.buckets.get(bound, 0.0) + s.value
                elif s.name == DURATION + "_count":
                    sample.count += s.value
                    worker = s.labels.get("worker", "")
                    sample.per_worker[worker] = sample.per_worker.get(worker, 0.0) + s.value
                elif s.name == DURATION + "_sum":
                    sample.total_s += s.value
        elif family.name == WS_OPEN:
            sample.ws_open += sum(s.value for s in family.samples)
    return sample


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The ``q`` quantile of a cumulative histogram ``le -> count`` (None when empty)."""
    bounds = sorted(buckets)
    if not bounds:
        return None
    total = buckets[bounds[-1]] if math.isinf(bounds[-1]) else max(buckets.values())
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower  # beyond the last finite bucket: its bound is all we know
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def _increase(new: Mapping[Any, float], old: Mapping[Any, float]) -> dict[Any, float]:
    return {key: max(0.0, value - old.get(key, 0.0)) for key, value in new.items()}


def summarize(old: Sample, new: Sample) -> dict[str, Any]:
    """Rate, mean and p50/p99 (milliseconds) of the requests completed between two samples."""
    elapsed = new.at - old.at
    done = new.count - old.count
    if elapsed <= 0 or done < 0:  # the master restarted: its counters began again
        return {"window_s": max(0.0, elapsed), "rate_rps": None, "requests": 0}
    buckets = _increase(new.buckets, old.buckets)
    p50 = quantile(0.5, buckets) if done else None
    p99 = quantile(0.99, buckets) if done else None
    mean = (new.total_s - old.total_s) / done if done else None
    workers = {
        name: round(max(0.0, count - old.per_worker.get(name, 0.0)) / elapsed, 3)
        for name, count in sorted(new.per_worker.items())
        if name != RETIRED
    }
    return {
        "window_s": round(elapsed, 3),
        "requests": int(done),
        "rate_rps": round(done / elapsed, 3),
        "p50_ms": None if p50 is None else round(p50 * 1000, 3),
        "p99_ms": None if p99 is None else round(p99 * 1000, 3),
        "mean_ms": None if mean is None else round(mean * 1000, 3),
        "per_worker_rps": workers,
    }


def _split_url(url: str) -> tuple[str, int, str]:
    parsed = URL(url)
    if parsed.scheme != "http" or not parsed.host:
        raise ValueError(f"metrics URL must be http://HOST:PORT/PATH, got {url!r}")
    port = parsed.port or 80
    target = parsed.raw_path_qs or "/"
    return parsed.raw_host or parsed.host, port, target


async def fetch_text(url: str, timeout_s: float = 2.0) -> str:
    """GET ``url`` (HTTP/1.0, identity coding) and return the body of a 200 response."""
    host, port, target = _split_url(url)
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                head = (
                    f"GET {target} HTTP/1.0\r\nHost: {host}:{port}\r\n"
                    "Accept: text/plain\r\nUser-Agent: forkloop-demo\r\n\r\n"
                )
                writer.write(head.encode("latin-1"))
                chunks: list[bytes] = []
                size = 0
                while data := await reader.read(65536):
                    chunks.append(data)
                    size += len(data)
                    if size > MAX_EXPOSITION_BYTES:
                        raise MetricsUnavailable(f"{url}: exposition larger than 16 MiB")
            finally:
                writer.close()
    except TimeoutError:
        raise MetricsUnavailable(f"{url}: no answer within {timeout_s:g}s") from None
    except OSError as exc:
        raise MetricsUnavailable(f"{url}: {exc.strerror or exc}") from None
    raw = b"".join(chunks)
    head_bytes, sep, body = raw.partition(b"\r\n\r\n")
    status_line = head_bytes.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split()
    if not sep or len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise MetricsUnavailable(f"{url}: not an HTTP response")
    if parts[1] != "200":
        raise MetricsUnavailable(f"{url}: HTTP {' '.join(parts[1:])}")
    return body.decode("utf-8", errors="replace")


Fetch = Callable[[str], Any]  # async (url) -> str


class StatsPanel:
    """Successive scrapes of one metrics URL, shared by every poll in this process."""

    def __init__(
        self,
        url: str,
        *,
        window_s: float = 10.0,
        min_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        fetch: Fetch | None = None,
    ) -> None:
        _split_url(url)  # a bad URL fails at startup, not on the first poll
        self.url = url
        self.window_s = window_s
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._fetch: Fetch = fetch if fetch is not None else fetch_text
        self._samples: deque[Sample] = deque()
        self._lock = asyncio.Lock()
        self._error: str | None = None

    @property
    def samples(self) -> Iterable[Sample]:
        return tuple(self._samples)

    async def _scrape(self) -> None:
        now = self._clock()
        try:
            text = await self._fetch(self.url)
            sample = parse_sample(text, now)
        except MetricsUnavailable as exc:
            self._error = str(exc)
            return
        except ValueError as exc:
            self._error = f"{self.url}: malformed exposition ({exc})"
            return
        self._error = None
        self._samples.append(sample)
        # Keep the window, but always the oldest sample inside it plus the newest.
        while len(self._samples) > 2 and now - self._samples[1].at >= self.window_s:
            self._samples.popleft()

    async def poll(self) -> dict[str, Any]:
        """The panel's JSON: scrape if due, then summarize the window."""
        async with self._lock:
            newest = self._samples[-1].at if self._samples else None
            if newest is None or self._clock() - newest >= self.min_interval_s:
                await self._scrape()
        result: dict[str, Any] = {"metrics_url": self.url, "error": self._error}
        if len(self._samples) < 2:
            result.update(available=False, rate_rps=None, p50_ms=None, p99_ms=None, requests=0)
            result["warming_up"] = self._error is None
            return result
        oldest, latest = self._samples[0], self._samples[-1]
        result.update(summarize(oldest, latest))
        result["available"] = result.get("rate_rps") is not None
        result["warming_up"] = False
        result["ws_open"] = int(latest.ws_open)
        result["total_requests"] = int(latest.count)
        return result

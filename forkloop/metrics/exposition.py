"""Prometheus exposition: metric families from worker values and the supervisor's snapshot.

Owns the exported names, help texts and label names, and the collectors that
prometheus_client's registry scrapes (it negotiates the text or OpenMetrics format from the
``Accept`` header). The HTTP server of the supervised case runs in a thread of the master.
Imports prometheus_client and ``forkloop.metrics``; never the web core.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .listenq import listen_queues
from .series import ACTIVE_LABELS, REQUEST_LABELS, Histogram, WorkerValues

__all__ = ["HttpCollector", "SupervisorCollector"]

log = logging.getLogger("forkloop.metrics")

Rows = Callable[[], Sequence[tuple[str, WorkerValues]]]


def _buckets(histogram: Histogram) -> list[tuple[str, float]]:
    cumulative = 0
    out: list[tuple[str, float]] = []
    for bound, count in zip(histogram.bounds, histogram.counts, strict=False):
        cumulative += count
        out.append((repr(float(bound)), cumulative))
    out.append(("+Inf", cumulative + histogram.counts[-1]))
    return out


class HttpCollector(Collector):
    """The HTTP server metrics of every worker, labelled ``worker``."""

    def __init__(self, rows: Rows) -> None:
        self._rows = rows

    def collect(self) -> Iterator[Metric]:
        rows = self._rows()
        labels = [*REQUEST_LABELS, "worker"]
        duration = HistogramMetricFamily(
            "http_server_request_duration_seconds",
            "Duration of HTTP server requests.",
            labels=labels,
            unit="seconds",
        )
        request_size = HistogramMetricFamily(
            "http_server_request_body_size_bytes",
            "Size of HTTP server request bodies.",
            labels=labels,
            unit="bytes",
        )
        response_size = HistogramMetricFamily(
            "http_server_response_body_size_bytes",
            "Size of HTTP server response bodies.",
            labels=labels,
            unit="bytes",
        )
        active = GaugeMetricFamily(
            "http_server_active_requests",
            "Number of active HTTP server requests.",
            labels=[*ACTIVE_LABELS, "worker"],
        )
        ws_open = GaugeMetricFamily(
            "forkloop_websocket_open_connections",
            "Open WebSocket connections.",
            labels=["worker"],
        )
        ws_messages = CounterMetricFamily(
            "forkloop_websocket_messages",
            "WebSocket messages by direction.",
            labels=["direction", "worker"],
        )
        ws_sessions = HistogramMetricFamily(
            "forkloop_websocket_session_duration_seconds",
            "Lifetime of closed WebSocket sessions, from the 101 response to the close.",
            labels=["worker"],
            unit="seconds",
        )
        parse_errors = CounterMetricFamily(
            "forkloop_http_server_refused_requests",
            "Requests refused by the HTTP parser, by the status of the reply.",
            labels=["http_response_status_code", "worker"],
        )
        fd_exhausted = CounterMetricFamily(
            "forkloop_http_server_fd_exhausted",
            "Times the server ran short of file descriptors (EMFILE/ENFILE at accept, or its "
            "connection budget below RLIMIT_NOFILE).",
            labels=["worker"],
        )
        fd_closed = CounterMetricFamily(
            "forkloop_http_server_idle_connections_closed_for_room",
            "Idle connections closed to make room when file descriptors ran short.",
            labels=["worker"],
        )
        shed = CounterMetricFamily(
            "http_server_requests_shed",
            "Requests answered 503 by overload protection without running the app, by reason "
            "(concurrency: --max-concurrency; queue_time: --max-queue-time).",
            labels=["reason", "worker"],
        )
        queue = HistogramMetricFamily(
            "http_server_request_queue_duration_seconds",
            "Time admitted requests waited between their head being read (or the trusted "
            "X-Request-Start) and their handler starting; measured under --max-queue-time.",
            labels=["worker"],
            unit="seconds",
        )
        for worker, values in rows:
            for reason, count in sorted(values.shed.items()):
                shed.add_metric([reason, worker], count)
            if values.queue.count:
                queue.add_metric([worker], _buckets(values.queue), values.queue.total)
            for key, (dur, req, resp) in sorted(values.requests.items()):
                label_values = [*key, worker]
                duration.add_metric(label_values, _buckets(dur), dur.total)
                request_size.add_metric(label_values, _buckets(req), req.total)
                response_size.add_metric(label_values, _buckets(resp), resp.total)
            if worker != "retired":  # gauges of departed workers are gone with them
                for key, value in sorted(values.active.items()):
                    active.add_metric([*key, worker], value)
                ws_open.add_metric([worker], values.ws_open)
            sessions = values.ws_sessions
            ws_sessions.add_metric([worker], _buckets(sessions), sessions.total)
            for direction, count in sorted(values.ws_messages.items()):
                ws_messages.add_metric([direction, worker], count)
            for status, count in sorted(values.parse_errors.items()):
                parse_errors.add_metric([status, worker], count)
            if values.fd_pressure:
                fd_exhausted.add_metric([worker], values.fd_pressure.get("exhausted", 0))
                fd_closed.add_metric([worker], values.fd_pressure.get("closed", 0))
        yield from (duration, request_size, response_size, active)
        yield from (ws_open, ws_messages, ws_sessions, parse_errors, fd_exhausted, fd_closed)
        yield from (shed, queue)


class SupervisorCollector(Collector):
    """The master's own metrics: workers, restarts, reloads, memory, loop lag, accept queues."""

    def __init__(
        self,
        snapshot: Callable[[], Any],
        rows: Rows,
        ports: Callable[[], Iterable[tuple[str, int]]],
    ) -> None:
        self._snapshot = snapshot
        self._rows = rows
        self._ports = ports

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        workers = GaugeMetricFamily(
            "forkloop_supervisor_workers", "Worker processes by state.", labels=["state"]
        )
        for state, count in sorted(snap.workers_by_phase.items()):
            workers.add_metric([state], count)
        yield workers
        target = GaugeMetricFamily(
            "forkloop_supervisor_target_workers", "Worker processes the supervisor aims for."
        )
        target.add_metric([], snap.target)
        yield target
        restarts = CounterMetricFamily(
            "forkloop_supervisor_worker_restarts",
            "Workers replaced, by cause.",
            labels=["cause"],
        )
        for cause, count in sorted(snap.restarts_by_cause.items()):
            restarts.add_metric([cause], count)
        yield restarts
        reloads = CounterMetricFamily("forkloop_supervisor_reloads", "Rolling reloads started.")
        reloads.add_metric([], snap.reloads)
        yield reloads
        rss = GaugeMetricFamily(
            "forkloop_worker_resident_memory_bytes",
            "Resident memory of each worker.",
            labels=["worker"],
            unit="bytes",
        )
        for worker in snap.workers:
            rss.add_metric([str(worker.slot)], worker.rss_bytes)
        yield rss
        lag = HistogramMetricFamily(
            "forkloop_worker_event_loop_lag_seconds",
            "How late each worker's event loop ran its heartbeat timer.",
            labels=["worker"],
            unit="seconds",
        )
        for label, values in self._rows():
            lag.add_metric([label], _buckets(values.lag), values.lag.total)
        yield lag
        depth = GaugeMetricFamily(
            "forkloop_listen_queue_depth",
            "Connections waiting in a listening socket's accept queue (Linux).",
            labels=["listener"],
        )
        for name, queued, _maximum in listen_queues(self._ports()):
            depth.add_metric([name], queued)
        yield depth

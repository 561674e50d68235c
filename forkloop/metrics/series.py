"""The metric data model shared by workers and the master: series, their values, their wire form.

Owns the metric names and label sets (OpenTelemetry HTTP semantic conventions as exported to
Prometheus), the histogram buckets, the per-process :class:`Store` that request observers
increment, and the compact form in which a store's changed series travel to the master.
Imports nothing but the standard library: no prometheus_client, no web core.

Values are cumulative: a worker sends the whole current value of every series that changed
since its last successful send. The master keeps the latest value per worker, so a lost
message only delays an update, and a resend never counts twice.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "DURATION_BUCKETS",
    "HTTP_METHODS",
    "QUEUE_BUCKETS",
    "SIZE_BUCKETS",
    "WS_SESSION_BUCKETS",
    "Histogram",
    "Store",
    "merge_into",
]

# OpenTelemetry's advised boundaries for http.server.request.duration (seconds).
DURATION_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
# Body sizes (bytes): decades from 100 B to 100 MB.
SIZE_BUCKETS: Final = (100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8)
FIRST_DURATION: Final = DURATION_BUCKETS[0]
# The same bounds as ints, compared with int body sizes (int comparisons are the fast ones).
_SIZE_BOUNDS: Final = tuple(int(bound) for bound in SIZE_BUCKETS)
_FIRST_SIZE: Final = _SIZE_BOUNDS[0]
# How often (seconds) an observer folds its store's pending observations (series.py's fold).
FOLD_INTERVAL_S: Final = 0.5
# Event-loop lag (seconds) reported by worker heartbeats.
LAG_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# WebSocket session lifetimes (seconds): from a second to a working day.
WS_SESSION_BUCKETS: Final = (
    1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0,
)  # fmt: skip
# Request queue time (seconds), from the head read (or a proxy's X-Request-Start) to the start
# of its handler: fine below 10 ms, where an admitted request's wait should stay.
QUEUE_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# http.request.method values kept as they are; anything else is "_OTHER" (OTel semconv).
HTTP_METHODS: Final = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
)
UNMATCHED_ROUTE: Final = "_unmatched"

# Label names, in the order the keys below hold their values.
REQUEST_LABELS: Final = (
    "http_request_method",
    "http_route",
    "http_response_status_code",
    "url_scheme",
    "network_protocol_version",
)
ACTIVE_LABELS: Final = ("http_request_method", "url_scheme")


@dataclass
class Histogram:
    """Cumulative bucket counts (the last one is +Inf), the sum and the count."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        # Counts are kept per bucket (not cumulative) here; exposition accumulates them.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def add(self, other: Histogram) -> None:
        for index, value in enumerate(other.counts):
            self.counts[index] += value
        self.total += other.total

    def copy(self) -> Histogram:
        return Histogram(self.bounds, list(self.counts), self.total)

    def wire(self) -> list[Any]:
        return [*self.counts, round(self.total, 9)]

    @classmethod
    def from_wire(cls, bounds: tuple[float, ...], data: list[Any]) -> Histogram:
        if len(data) != len(bounds) + 2:
            raise ValueError("histogram of the wrong shape")
        return cls(bounds, [int(v) for v in data[:-1]], float(data[-1]))


def _fold_sizes(sizes: list[int], counts: list[int]) -> None:
    """Add the ``sizes`` above the first bound to ``counts`` (per bucket; index 0 is left out).

    A sort (in C, near linear for sizes that repeat) and one bisection per bound: no Python
    work per value.
    """
    sizes.sort()
    below = bisect_right(sizes, _FIRST_SIZE)
    if below == len(sizes):
        return
    for index in range(1, len(_SIZE_BOUNDS)):
        upto = bisect_right(sizes, _SIZE_BOUNDS[index], below)
        counts[index] += upto - below
        below = upto
    counts[-1] += len(sizes) - below


class _RequestSeries:
    """The three histograms of one request label set, fed in bulk.

    Requests arrive in batches (:meth:`add`, from the core's tally): the durations' sum is
    added, the durations beyond the first bucket and the body sizes are appended to pending
    lists (zero request bodies are left out). :meth:`fold` turns the pending values into the
    count, the size sums and the bucket counts in bulk (C-level ``sum`` and ``sort``, then a
    bisection per bound). Whatever reads the values folds first (:meth:`wire`, the properties,
    :meth:`Store.changed`), and the observers fold their store every ``FOLD_INTERVAL_S``,
    which bounds the pending lists. Bucket counts are per bucket, and the first buckets (fast
    requests, small bodies: most of them) are derived as the count less the others. The count
    is also the series' version: it changes with every request.
    """

    __slots__ = (
        "count",
        "dcounts",
        "dslow",
        "dsum",
        "labels",
        "qcounts",
        "qpending",
        "qsum",
        "scounts",
        "spending",
        "ssum",
    )

    def __init__(self, labels: tuple[str, str, str, str, str]) -> None:
        self.labels = labels
        self.count = 0
        self.dcounts = [0] * (len(DURATION_BUCKETS) + 1)
        self.qcounts = [0] * (len(SIZE_BUCKETS) + 1)
        self.scounts = [0] * (len(SIZE_BUCKETS) + 1)
        self.dsum = 0.0
        self.qsum = 0
        self.ssum = 0
        self.dslow: list[float] = []  # pending durations beyond the first bucket
        self.qpending: list[int] = []  # pending request body sizes, zeros left out
        self.spending: list[int] = []  # pending response body sizes: one per request

    def add(
        self,
        duration_sum: float,
        slow: list[float],
        request_sizes: list[int],
        response_sizes: list[int],
    ) -> None:
        """A batch of requests: their durations' sum, the durations beyond the first bucket,
        the nonzero request body sizes and every response body size (one per request)."""
        self.dsum += duration_sum
        self.dslow.extend(slow)
        self.qpending.extend(request_sizes)
        self.spending.extend(response_sizes)

    def fold(self) -> None:
        """Move the pending observations into the count, sums and buckets."""
        sizes = self.spending
        if sizes:
            self.count += len(sizes)
            self.ssum += sum(sizes)
            _fold_sizes(sizes, self.scounts)
            self.spending = []
        sizes = self.qpending
        if sizes:
            self.qsum += sum(sizes)
            _fold_sizes(sizes, self.qcounts)
            self.qpending = []
        if self.dslow:
            counts = self.dcounts
            for duration in self.dslow:
                counts[bisect_left(DURATION_BUCKETS, duration)] += 1
            self.dslow = []

    def _counts(self, counts: list[int]) -> list[int]:
        """Per-bucket counts with the first bucket filled in (call after :meth:`fold`)."""
        out = list(counts)
        out[0] = self.count - sum(counts)
        return out

    def wire(self) -> list[Any]:
        """The three histograms in their wire form (see :meth:`Histogram.wire`)."""
        self.fold()
        return [
            [*self._counts(self.dcounts), round(self.dsum, 9)],
            [*self._counts(self.qcounts), self.qsum],
            [*self._counts(self.scounts), self.ssum],
        ]

    @property
    def duration(self) -> Histogram:
        self.fold()
        return Histogram(DURATION_BUCKETS, self._counts(self.dcounts), self.dsum)

    @property
    def request_size(self) -> Histogram:
        self.fold()
        return Histogram(SIZE_BUCKETS, self._counts(self.qcounts), float(self.qsum))

    @property
    def response_size(self) -> Histogram:
        self.fold()
        return Histogram(SIZE_BUCKETS, self._counts(self.scounts), float(self.ssum))


class Store:
    """One process's metrics. Only the event loop's thread writes to it.

    Request series are found by a key of raw values (whatever the observer finds cheapest to
    build per request); their label strings are computed once, when the series is created.
    """

    def __init__(self) -> None:
        self.requests: dict[object, _RequestSeries] = {}
        self._by_labels: dict[tuple[str, ...], _RequestSeries] = {}
        self.active: dict[tuple[str, str], int] = {}
        self.ws_open = 0
        self.ws_messages: dict[str, int] = {"received": 0, "sent": 0}
        self.parse_errors: dict[str, int] = {}
        self.ws_sessions = Histogram(WS_SESSION_BUCKETS)  # closed sessions' lifetimes
        # Descriptor shortage (issue 15): {"exhausted": times, "closed": idle connections closed}
        self.fd_pressure: dict[str, int] = {}
        # Overload protection (core/server/admission.py): requests shed by reason, and the
        # queue time of admitted requests when it is measured.
        self.shed: dict[str, int] = {}
        self.queue = Histogram(QUEUE_BUCKETS)
        self.version = 0  # bumped on every change to the scalars above
        self._sent: dict[object, int] = {}  # labels (or "s") -> version last sent
        # Called before every read (fold, changed, series): observers that keep requests
        # elsewhere between reads (the core's tally) move them into the series here.
        self.sources: list[Callable[[], None]] = []

    # -- recording ------------------------------------------------------------------------

    def series_for(
        self, key: object, labels: Callable[[Any], tuple[str, str, str, str, str]]
    ) -> _RequestSeries:
        """The series of a raw key, created on first use; ``labels(key)`` is called only for
        a key not seen before."""
        series = self.requests.get(key)
        if series is None:
            label_values = labels(key)
            series = self._by_labels.get(label_values)
            if series is None:
                series = self._by_labels[label_values] = _RequestSeries(label_values)
            if len(self.requests) < 100_000:
                self.requests[key] = series
        return series

    def pull(self) -> None:
        """Bring in what the sources hold (see ``sources``)."""
        for source in self.sources:
            source()

    def fold(self) -> None:
        """Fold every series' pending observations (see ``_RequestSeries``)."""
        self.pull()
        for series in self._by_labels.values():
            series.fold()

    def set_active(self, active: dict[tuple[str, str], int]) -> None:
        if active != self.active:
            self.active = active
            self.scalar_changed()

    def scalar_changed(self) -> None:
        self.version += 1

    def series(self) -> dict[tuple[str, ...], _RequestSeries]:
        """Request series by label values."""
        self.pull()
        return self._by_labels

    # -- the wire form ----------------------------------------------------------------------

    def changed(self) -> Iterator[list[Any]]:
        """Records of the series changed since the last :meth:`mark_sent` of them.

        A record is ``["r", method, route, status, scheme, version, duration, req, resp]``
        for request histograms, or ``["s", scalars]`` for the gauges and small counters.
        """
        self.pull()
        sent = self._sent
        for labels, series in self._by_labels.items():
            series.fold()
            if sent.get(labels) != series.count:
                yield ["r", *labels, *series.wire()]
        if sent.get("s") != self.version:
            yield [
                "s",
                {
                    "active": [[*k, v] for k, v in self.active.items()],
                    "ws_open": self.ws_open,
                    "ws_messages": self.ws_messages,
                    "parse_errors": self.parse_errors,
                    "ws_sessions": self.ws_sessions.wire(),
                    "fd_pressure": self.fd_pressure,
                    "shed": self.shed,
                    "queue": self.queue.wire(),
                },
            ]

    def mark_sent(self, records: list[list[Any]]) -> None:
        for record in records:
            if record[0] == "r":
                labels = tuple(record[1:6])
                series = self._by_labels.get(labels)
                if series is not None:
                    self._sent[labels] = series.count
            else:
                self._sent["s"] = self.version

    def snapshot(self) -> WorkerValues:
        """This store's current values in the master's form (single-process exposition)."""
        values = WorkerValues()
        for record in self.changed_all():
            values.apply(record)
        return values

    def changed_all(self) -> Iterator[list[Any]]:
        saved, self._sent = self._sent, {}
        try:
            yield from self.changed()
        finally:
            self._sent = saved


@dataclass
class WorkerValues:
    """The latest values received from one worker (or the sum of retired ones)."""

    requests: dict[tuple[str, ...], tuple[Histogram, Histogram, Histogram]] = field(
        default_factory=dict
    )
    active: dict[tuple[str, ...], int] = field(default_factory=dict)
    ws_open: int = 0
    ws_messages: dict[str, int] = field(default_factory=dict)
    parse_errors: dict[str, int] = field(default_factory=dict)
    fd_pressure: dict[str, int] = field(default_factory=dict)
    lag: Histogram = field(default_factory=lambda: Histogram(LAG_BUCKETS))
    ws_sessions: Histogram = field(default_factory=lambda: Histogram(WS_SESSION_BUCKETS))
    shed: dict[str, int] = field(default_factory=dict)
    queue: Histogram = field(default_factory=lambda: Histogram(QUEUE_BUCKETS))

    def apply(self, record: list[Any]) -> None:
        """Take one wire record (the newest value of its series). Raises ValueError if bad."""
        if not isinstance(record, list) or not record:
            raise ValueError("not a metrics record")
        if record[0] == "r" and len(record) == 9:
            key = tuple(str(part) for part in record[1:6])
            self.requests[key] = (
                Histogram.from_wire(DURATION_BUCKETS, record[6]),
                Histogram.from_wire(SIZE_BUCKETS, record[7]),
                Histogram.from_wire(SIZE_BUCKETS, record[8]),
            )
        elif record[0] == "s" and len(record) == 2 and isinstance(record[1], dict):
            scalars = record[1]
            self.active = {
                tuple(str(part) for part in item[:-1]): int(item[-1])
                for item in scalars.get("active", ())
            }
            self.ws_open = int(scalars.get("ws_open", 0))
            self.ws_messages = {str(k): int(v) for k, v in scalars.get("ws_messages", {}).items()}
            self.parse_errors = {str(k): int(v) for k, v in scalars.get("parse_errors", {}).items()}
            self.fd_pressure = {str(k): int(v) for k, v in scalars.get("fd_pressure", {}).items()}
            sessions = scalars.get("ws_sessions")
            if sessions is not None:
                self.ws_sessions = Histogram.from_wire(WS_SESSION_BUCKETS, sessions)
            self.shed = {str(k): int(v) for k, v in scalars.get("shed", {}).items()}
            queue = scalars.get("queue")
            if queue is not None:
                self.queue = Histogram.from_wire(QUEUE_BUCKETS, queue)
        elif record[0] == "l" and len(record) == 2:
            self.lag = Histogram.from_wire(LAG_BUCKETS, record[1])
        else:
            raise ValueError(f"unknown metrics record {record[0]!r}")

    def records(self) -> list[list[Any]]:
        """These values as wire records (:meth:`apply` takes them back; ``"l"``: the lag)."""
        out: list[list[Any]] = [
            ["r", *key, duration.wire(), request_size.wire(), response_size.wire()]
            for key, (duration, request_size, response_size) in self.requests.items()
        ]
        scalars = {
            "active": [[*k, v] for k, v in self.active.items()],
            "ws_open": self.ws_open,
            "ws_messages": self.ws_messages,
            "parse_errors": self.parse_errors,
            "ws_sessions": self.ws_sessions.wire(),
            "fd_pressure": self.fd_pressure,
            "shed": self.shed,
            "queue": self.queue.wire(),
        }
        out.append(["s", scalars])
        out.append(["l", self.lag.wire()])
        return out


def merge_into(retired: WorkerValues, gone: WorkerValues) -> None:
    """Fold a departed worker's counters into the retired totals (gauges are dropped)."""
    for key, (duration, request_size, response_size) in gone.requests.items():
        mine = retired.requests.get(key)
        if mine is None:
            retired.requests[key] = (duration.copy(), request_size.copy(), response_size.copy())
        else:
            mine[0].add(duration)
            mine[1].add(request_size)
            mine[2].add(response_size)
    for direction, count in gone.ws_messages.items():
        retired.ws_messages[direction] = retired.ws_messages.get(direction, 0) + count
    for status, count in gone.parse_errors.items():
        retired.parse_errors[status] = retired.parse_errors.get(status, 0) + count
    for event, count in gone.fd_pressure.items():
        retired.fd_pressure[event] = retired.fd_pressure.get(event, 0) + count
    for reason, count in gone.shed.items():
        retired.shed[reason] = retired.shed.get(reason, 0) + count
    retired.queue.add(gone.queue)
    retired.lag.add(gone.lag)
    retired.ws_sessions.add(gone.ws_sessions)

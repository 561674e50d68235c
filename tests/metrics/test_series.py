"""The metric data model: histograms, the wire form, retired folding, the listen-queue table."""

from __future__ import annotations

import json
import socket
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forkloop.metrics.aggregate import Aggregator
from forkloop.metrics.listenq import listen_queues, parse_proc_net_tcp
from forkloop.metrics.series import (
    DURATION_BUCKETS,
    FIRST_DURATION,
    SIZE_BUCKETS,
    Histogram,
    Store,
    WorkerValues,
)

KEY = ("GET", "/users/{id}", "200", "http", "1.1")
ACTIVE = ("GET", "http")


def _finish_with(
    store: Store,
    duration: float,
    request_bytes: int,
    response_bytes: int,
    key: tuple[str, ...] = KEY,
) -> None:
    """One request, as a batch of one (what the observer's tally take does in bulk)."""
    store.series_for(key, lambda k: k).add(
        duration,
        [duration] if duration > FIRST_DURATION else [],
        [request_bytes] if request_bytes else [],
        [response_bytes],
    )


def _finish(store: Store, duration: float = 0.01, key: tuple[str, ...] = KEY) -> None:
    _finish_with(store, duration, 10, 20, key)


def test_histogram_buckets_by_upper_bound() -> None:
    histogram = Histogram(DURATION_BUCKETS)
    for value in (0.001, 0.005, 0.0051, 10.0, 11.0):
        histogram.observe(value)
    # le=0.005 holds 0.001 and 0.005 (bounds are inclusive); 11 s lands in +Inf.
    assert histogram.counts[0] == 2
    assert histogram.counts[1] == 1
    assert histogram.counts[len(DURATION_BUCKETS) - 1] == 1
    assert histogram.counts[-1] == 1
    assert histogram.count == 5
    assert histogram.total == pytest.approx(21.0111)


_DURATIONS = st.one_of(
    st.floats(0, 20, allow_nan=False), st.sampled_from(DURATION_BUCKETS), st.just(0.0)
)
_SIZES = st.one_of(
    st.integers(0, 2 * 10**8),
    st.sampled_from([0, 1, 100, 101, 1000, 1001, 10**7, 10**8, 10**8 + 1]),
)


@given(st.lists(st.one_of(st.tuples(_DURATIONS, _SIZES, _SIZES), st.none()), max_size=80))
def test_pending_values_fold_into_exact_histograms(
    steps: list[tuple[float, int, int] | None],
) -> None:
    # Requests leave values pending; any read (None: a scrape or a send) folds them. At every
    # read the three histograms equal ones that bucketed each value as it came.
    store = Store()
    expected = (Histogram(DURATION_BUCKETS), Histogram(SIZE_BUCKETS), Histogram(SIZE_BUCKETS))

    def check() -> None:
        got = store.snapshot().requests.get(KEY)
        if got is None:
            assert expected[0].count == 0
            return
        for histogram, reference in zip(got, expected, strict=True):
            assert histogram.counts == reference.counts
            assert histogram.total == pytest.approx(reference.total, rel=1e-9, abs=1e-9)

    for step in steps:
        if step is None:
            check()
        else:
            duration, request_bytes, response_bytes = step
            _finish_with(store, duration, request_bytes, response_bytes)
            for histogram, value in zip(expected, step, strict=True):
                histogram.observe(value)
    check()


def test_a_read_in_between_sees_every_request() -> None:
    store = Store()
    for _ in range(3):
        _finish_with(store, 0.001, 0, 13)
    (series,) = store.series().values()
    assert series.duration.count == 3  # folded by the read
    _finish_with(store, 0.2, 5000, 13)
    records = list(store.changed())
    values = WorkerValues()
    for record in records:
        values.apply(record)
    duration, request_size, response_size = values.requests[KEY]
    assert duration.count == 4
    assert duration.counts[0] == 3
    assert duration.counts[DURATION_BUCKETS.index(0.25)] == 1
    assert request_size.counts[0] == 3
    assert request_size.counts[SIZE_BUCKETS.index(1e4)] == 1
    assert request_size.total == 5000
    assert response_size.counts[0] == 4
    assert response_size.total == 52


def test_changed_sends_each_series_once_until_it_changes() -> None:
    store = Store()
    _finish(store)
    records = list(store.changed())
    assert [r[0] for r in records] == ["r", "s"]
    store.mark_sent(records)
    assert list(store.changed()) == []
    store.set_active({})  # unchanged: nothing new to send
    assert list(store.changed()) == []
    _finish(store)
    again = list(store.changed())
    assert [r[0] for r in again] == ["r"]  # only the request series changed
    values = WorkerValues()
    for record in json.loads(json.dumps(again)):  # what the pipe carries
        values.apply(record)
    assert values.requests[KEY][0].count == 2  # cumulative: the newest value wins
    store.mark_sent(again)
    store.set_active({ACTIVE: 3})
    assert [r[0] for r in store.changed()] == ["s"]


def test_unsent_changes_are_resent() -> None:
    store = Store()
    _finish(store)
    list(store.changed())  # built but never marked sent (the pipe was full)
    assert [r[0] for r in store.changed()] == ["r", "s"]
    store.mark_sent(list(store.changed()))
    assert list(store.changed()) == []


@given(
    st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["a", "b"]), st.booleans()), max_size=60)
)
def test_server_total_is_exact_through_replacements(steps: list[tuple[int, str, bool]]) -> None:
    # Model: per slot a live worker (pid, store). A step may replace the slot's worker (its
    # last values were sent), then serves one request there and sends the changes. After
    # every step the scrape's total equals the requests served, and never goes down.
    aggregator = Aggregator()
    workers: dict[int, tuple[int, Store]] = {}
    next_pid = 1000
    for served, (slot, route, replace) in enumerate(steps, start=1):
        if replace or slot not in workers:
            next_pid += 1
            workers[slot] = (next_pid, Store())
        pid, store = workers[slot]
        _finish(store, key=("GET", route, "200", "http", "1.1"))
        records = list(store.changed())
        aggregator.on_metrics(slot, pid, records)
        store.mark_sent(records)
        rows = aggregator.view((s, p) for s, (p, _) in workers.items())
        total = sum(h[0].count for _, values in rows for h in values.requests.values())
        assert total == served
        assert len(rows) <= 5  # live slots plus "retired", whatever the number of pids


def test_replacement_folds_into_retired() -> None:
    aggregator = Aggregator()
    store = Store()
    for _ in range(5):
        _finish(store)
    aggregator.on_metrics(0, 111, list(store.changed()))
    assert aggregator.view([(0, 111)])[0][1].requests[KEY][0].count == 5
    rows = dict(aggregator.view([(0, 222)]))  # pid 111 is gone
    assert "0" not in rows
    assert rows["retired"].requests[KEY][0].count == 5
    fresh = Store()
    _finish(fresh)
    aggregator.on_metrics(0, 222, list(fresh.changed()))
    rows = dict(aggregator.view([(0, 222)]))
    assert rows["0"].requests[KEY][0].count == 1
    assert rows["retired"].requests[KEY][0].count == 5


def test_bad_records_are_counted_not_fatal() -> None:
    aggregator = Aggregator()
    aggregator.on_metrics(0, 1, [["r", "too", "short"], ["zz"], "nope"])
    aggregator.on_metrics(0, 1, {"not": "a list"})
    assert aggregator.bad_records == 4


TABLE = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid
   0: 0100007F:1F90 00000000:0000 0A 00000080:00000005 00:00000000 00000000     0
   1: 0100007F:1F90 0100007F:D0F2 01 00000000:00000000 00:00000000 00000000     0
   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0
"""


def test_proc_net_tcp_listeners_only() -> None:
    assert list(parse_proc_net_tcp(TABLE)) == [(8080, 5, 128), (80, 0, 0)]


@pytest.mark.skipif(not __import__("os").path.exists("/proc/net/tcp"), reason="needs Linux /proc")
def test_listen_queue_depth_of_a_real_socket() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        try:
            time.sleep(0.05)
            assert [(name, queued) for name, queued, _ in listen_queues([("l", port)])] == [
                ("l", 3)
            ]
        finally:
            for client in clients:
                client.close()


def test_shed_counts_and_queue_time_travel_and_retire() -> None:
    store = Store()
    store.shed = {"concurrency": 7, "queue_time": 2}
    store.queue.observe(0.003)
    store.queue.observe(0.2)
    store.scalar_changed()
    aggregator = Aggregator()
    aggregator.on_metrics(0, 111, list(store.changed()))
    (row,) = [values for label, values in aggregator.view([(0, 111)]) if label == "0"]
    assert row.shed == {"concurrency": 7, "queue_time": 2}
    assert row.queue.count == 2
    assert row.queue.total == pytest.approx(0.203)
    rows = dict(aggregator.view([(0, 222)]))  # the worker is gone: its counts are retired
    assert rows["retired"].shed == {"concurrency": 7, "queue_time": 2}
    assert rows["retired"].queue.count == 2
    again = WorkerValues()
    for record in rows["retired"].records():
        again.apply(record)
    assert again.shed == rows["retired"].shed
    assert again.queue.counts == rows["retired"].queue.counts

"""What an old master hands a new one on USR2: its totals as wire records, taken back whole
(``WorkerValues.records`` / ``apply``), WebSocket session lifetimes and loop lag included."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from forkloop.metrics.series import (
    DURATION_BUCKETS,
    LAG_BUCKETS,
    SIZE_BUCKETS,
    WS_SESSION_BUCKETS,
    Histogram,
    WorkerValues,
    merge_into,
)

seconds = st.floats(min_value=0.0, max_value=1e5, allow_nan=False)
sizes = st.integers(min_value=0, max_value=10**9)


def _histogram(bounds: tuple[float, ...], values: list[float]) -> Histogram:
    histogram = Histogram(bounds)
    for value in values:
        histogram.observe(value)
    return histogram


@given(
    durations=st.lists(seconds, max_size=20),
    bodies=st.lists(sizes, max_size=20),
    sessions=st.lists(seconds, max_size=20),
    lags=st.lists(st.floats(min_value=0, max_value=10), max_size=20),
    sent=st.integers(min_value=0, max_value=10**6),
)
def test_records_round_trip_through_json(
    durations: list[float],
    bodies: list[int],
    sessions: list[float],
    lags: list[float],
    sent: int,
) -> None:
    values = WorkerValues()
    values.requests[("GET", "/chat", "101", "http", "1.1")] = (
        _histogram(DURATION_BUCKETS, durations),
        _histogram(SIZE_BUCKETS, [float(b) for b in bodies]),
        _histogram(SIZE_BUCKETS, [float(b) for b in bodies]),
    )
    values.ws_messages = {"received": sent, "sent": sent + 1}
    values.parse_errors = {"400": 3}
    values.ws_sessions = _histogram(WS_SESSION_BUCKETS, sessions)
    values.lag = _histogram(LAG_BUCKETS, lags)
    back = WorkerValues()
    for record in json.loads(json.dumps(values.records())):
        back.apply(record)
    for mine, theirs in zip(
        back.requests[("GET", "/chat", "101", "http", "1.1")],
        values.requests[("GET", "/chat", "101", "http", "1.1")],
        strict=True,
    ):
        assert mine.counts == theirs.counts
        assert abs(mine.total - theirs.total) <= 1e-6 * max(1.0, theirs.total)
    assert back.ws_messages == values.ws_messages
    assert back.parse_errors == values.parse_errors
    assert back.ws_sessions.counts == values.ws_sessions.counts
    assert back.lag.counts == values.lag.counts


def test_carried_totals_add_to_the_new_masters_retired_series() -> None:
    old = WorkerValues()
    old.ws_sessions = _histogram(WS_SESSION_BUCKETS, [2.5, 90.0])
    old.ws_messages = {"received": 5}
    retired = WorkerValues()
    retired.ws_sessions = _histogram(WS_SESSION_BUCKETS, [0.5])
    retired.ws_messages = {"received": 1}
    carried = WorkerValues()
    for record in old.records():
        carried.apply(record)
    merge_into(retired, carried)
    assert retired.ws_sessions.count == 3
    assert retired.ws_messages == {"received": 6}

"""``Tally``: what the server adds per request comes out of ``take()`` exactly, grouped by
(route, status, method, version, scheme) and confirmed by identity, with bounded tables."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from forkloop.core.http.parser import HTTP10, HTTP11
from forkloop.core.web.tally import Tally


class Route:
    """A route as the tally sees one: hashable, with a ``resource`` (None: the router's 404)."""

    def __init__(self, resource: object) -> None:
        self.resource = resource


ROUTES = [Route(f"resource-{i}") for i in range(3)]


def _totals(taken: list[Any]) -> dict[tuple[Any, ...], list[Any]]:
    out: dict[tuple[Any, ...], list[Any]] = {}
    for e in taken:
        key = (e.route, e.status, e.method, e.version, e.scheme)
        assert key not in out  # one entry per key and take
        out[key] = [
            len(e.response_sizes),
            e.duration_sum,
            e.slow,
            e.request_sizes,
            e.response_sizes,
        ]
    return out


def test_one_entry_per_key_confirmed_by_every_field() -> None:
    tally = Tally(0.005)
    route = ROUTES[0]
    for status, method, version, scheme in [
        (200, "GET", HTTP11, "http"),
        (200, "GET", HTTP11, "http"),
        (404, "GET", HTTP11, "http"),  # same route, other status
        (200, "POST", HTTP11, "http"),
        (200, "GET", HTTP10, "http"),
        (200, "GET", HTTP11, "https"),
        (200, "GET", HTTP11, "http"),  # back to the first: the same entry again
    ]:
        tally.add(route, status, method, version, scheme, 0.001, 0, 5)
    got = _totals(tally.take())
    assert got[(route, 200, "GET", HTTP11, "http")][0] == 3
    assert sorted(v[0] for v in got.values()) == [1, 1, 1, 1, 3]
    assert tally.take() == []  # taken: the tally starts again empty


def test_values_durations_and_sizes() -> None:
    tally = Tally(0.005)
    route = ROUTES[1]
    tally.add(route, 200, "GET", HTTP11, "http", 0.001, 0, 13)
    tally.add(route, 200, "GET", HTTP11, "http", 0.25, 7, 0)
    ((count, total, slow, request_sizes, response_sizes),) = _totals(tally.take()).values()
    assert (count, slow, request_sizes, response_sizes) == (2, [0.25], [7], [13, 0])
    assert abs(total - 0.251) < 1e-12


def test_routes_without_a_resource_count_under_none() -> None:
    # The router's 404 route is made per request: without this, one entry per request.
    tally = Tally(0.005)
    for _ in range(100):
        tally.add(Route(None), 404, "GET", HTTP11, "http", 0.001, 0, 9)
    tally.add(None, 404, "GET", HTTP11, "http", 0.001, 0, 9)
    got = _totals(tally.take())
    assert list(got) == [(None, 404, "GET", HTTP11, "http")]
    assert got[(None, 404, "GET", HTTP11, "http")][0] == 101


def test_the_latest_table_is_bounded() -> None:
    tally = Tally(0.005, max_routes=2)
    routes = [Route(i) for i in range(5)]
    for route in routes * 2:
        tally.add(route, 200, "GET", HTTP11, "http", 0.001, 0, 1)
    assert len(tally._latest) == 2
    assert [v[0] for v in _totals(tally.take()).values()] == [2] * 5  # all still counted


_REQUESTS = st.lists(
    st.tuples(
        st.sampled_from([*ROUTES, None]),
        st.sampled_from([200, 404, 500]),
        st.sampled_from(["GET", "POST"]),
        st.sampled_from([HTTP10, HTTP11]),
        st.sampled_from(["http", "https"]),
        st.floats(min_value=0, max_value=2, allow_nan=False),
        st.integers(min_value=0, max_value=10**6),
        st.integers(min_value=0, max_value=10**6),
        st.booleans(),  # take after this one
    ),
    max_size=60,
)


@given(_REQUESTS)
def test_takes_add_up_to_every_request(requests: list[tuple[Any, ...]]) -> None:
    tally = Tally(0.005)
    expected: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0.0, [], [], []])
    got: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0.0, [], [], []])

    def take() -> None:
        for key, (count, total, slow, qs, ss) in _totals(tally.take()).items():
            into = got[key]
            into[0] += count
            into[1] += total
            into[2] += slow
            into[3] += qs
            into[4] += ss

    for route, status, method, version, scheme, duration, qbytes, sbytes, then_take in requests:
        tally.add(route, status, method, version, scheme, duration, qbytes, sbytes)
        into = expected[(route, status, method, version, scheme)]
        into[0] += 1
        into[1] += duration
        into[2] += [duration] if duration > 0.005 else []
        into[3] += [qbytes] if qbytes else []
        into[4] += [sbytes]
        if then_take:
            take()
    take()
    assert got.keys() == expected.keys()
    for key, (count, total, slow, qs, ss) in expected.items():
        assert got[key][0] == count
        assert abs(got[key][1] - total) < 1e-9
        assert got[key][2:] == [slow, qs, ss]

"""Overload protection (core/server/admission.py): the X-Request-Start parser (table-driven,
byte by byte, hypothesis, a hostile megabyte), the policy with a fake clock, and the server over
real sockets: 503 with Retry-After and Connection: close, without running the handler, the
probes never shed, queue time from the moment a pipelined head was read, upgrades let go."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rawhttp import parse_all, request_bytes

from forkloop.core.http.parser import RequestParser
from forkloop.core.server.admission import (
    MAX_REQUEST_START_BYTES,
    Admission,
    ServiceUnavailable,
    parse_request_start,
)
from forkloop.core.web.response import Response

NOW = 1_764_000_000.0  # an epoch second in 2025

# (value, epoch seconds or None)
START_CASES = [
    (b"t=1764000000", NOW),
    (b"t=1764000000.250", NOW + 0.25),  # nginx t=${msec}
    (b"1764000000250", NOW + 0.25),  # bare milliseconds (Heroku)
    (b"t=1764000000250", NOW + 0.25),
    (b"t=1764000000250000", NOW + 0.25),  # microseconds (Apache %t)
    (b"t=1764000000250000000", NOW + 0.25),  # nanoseconds
    (b"  t=1764000000  ", NOW),
    (b"T=1764000000", NOW),
    (b"", None),
    (b"t=", None),
    (b".", None),
    (b"t=-1764000000", None),
    (b"t=1e9", None),
    (b"t=1764000000.1.2", None),
    (b"t=0", None),
    (b"t=nan", None),
    (b"t=inf", None),
    (b"t=0x1234", None),
    (b"t=1764000000 ms", None),
    (b"t=\xd9\xa1\xd9\xa2", None),  # Arabic-Indic digits: float() would take them as text
    (b"1" * 21, None),  # beyond nanoseconds
    (b"1" * (MAX_REQUEST_START_BYTES + 1), None),
]


@pytest.mark.parametrize(("value", "expected"), START_CASES)
def test_parse_request_start_table(value: bytes, expected: float | None) -> None:
    got = parse_request_start(value)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-6)


@given(st.binary(max_size=64))
def test_parse_request_start_never_raises(value: bytes) -> None:
    got = parse_request_start(value)
    assert got is None or got > 0


@given(st.floats(min_value=1e9, max_value=4e9), st.sampled_from([1, 1e3, 1e6]))
def test_parse_request_start_units_by_magnitude(seconds: float, unit: float) -> None:
    text = f"t={int(seconds * unit)}".encode()
    got = parse_request_start(text)
    assert got == pytest.approx(seconds, abs=1.0)


def test_parse_request_start_hostile_megabyte_is_ignored_at_once() -> None:
    # Bounded before it is scanned: a megabyte of digits is not a timestamp.
    assert parse_request_start(b"t=" + b"9" * 1_000_000) is None
    assert parse_request_start(b"." * 1_000_000) is None


def _head(target: str = "/", headers: bytes = b"") -> Any:
    parser = RequestParser()
    (head,) = parser.feed(
        b"GET " + target.encode() + b" HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n"
    )[:1]
    return head


def test_head_read_byte_by_byte_gives_the_same_start() -> None:
    data = b"GET / HTTP/1.1\r\nHost: t\r\nX-Request-Start: t=1764000000250\r\n\r\n"
    parser = RequestParser()
    events: list[Any] = []
    for index in range(len(data)):
        events += parser.feed(data[index : index + 1])
    admission = Admission(max_queue_time_s=1.0, trust_request_start=True, wall=lambda: NOW + 5)
    assert isinstance(admission.admit(object(), events[0], 0.0, 0.0), ServiceUnavailable)
    admission = Admission(max_queue_time_s=10.0, trust_request_start=True, wall=lambda: NOW + 5)
    waited: list[float] = []
    admission.queue_time_listeners.append(waited.append)
    assert admission.admit(object(), events[0], 0.0, 0.0) is None
    assert waited == [pytest.approx(4.75)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_concurrency": 0},
        {"max_concurrency": -1},
        {"max_concurrency": True},
        {"max_concurrency": 1.5},
        {"max_queue_time_s": 0},
        {"max_queue_time_s": -0.5},
        {"max_queue_time_s": float("nan")},
        {"max_queue_time_s": float("inf")},
        {"max_queue_time_s": "1"},
    ],
)
def test_bad_options_raise(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be a positive"):
        Admission(**kwargs)


def test_off_is_none() -> None:
    assert Admission.from_options() is None
    assert Admission.from_options(None, None, True) is None
    assert Admission.from_options(3) is not None


def test_concurrency_bound_counts_holders_and_lets_go_once() -> None:
    admission = Admission(max_concurrency=2)
    a, b, c = object(), object(), object()
    assert admission.admit(a, _head(), 0, 0) is None
    assert admission.admit(b, _head(), 0, 0) is None
    refusal = admission.admit(c, _head(), 0, 0)
    assert isinstance(refusal, ServiceUnavailable)
    assert refusal.status == 503
    assert refusal.headers == (("Retry-After", "1"),)
    assert admission.shed == {"concurrency": 1, "queue_time": 0}
    admission.release(a)
    admission.release(a)  # twice: still one let go
    assert admission.in_flight == 1
    assert admission.admit(c, _head(), 0, 0) is None
    assert admission.in_flight == 2


@pytest.mark.parametrize("target", ["/-/healthz", "/-/readyz", "/-/readyz?full=1"])
def test_probes_are_never_shed_nor_counted(target: str) -> None:
    admission = Admission(max_concurrency=1, max_queue_time_s=0.1)
    busy = object()
    assert admission.admit(busy, _head(), 0, 0) is None
    probe = object()
    assert admission.admit(probe, _head(target), arrived=0.0, now=100.0) is None
    assert admission.in_flight == 1
    assert admission.shed == {"concurrency": 0, "queue_time": 0}


# (max queue time, waited from the head read, trusted, X-Request-Start age or None, shed?)
QUEUE_CASES = [
    (0.5, 0.1, False, None, False),
    (0.5, 0.6, False, None, True),
    (0.5, 0.1, False, 10.0, False),  # untrusted header: ignored
    (0.5, 0.1, True, 10.0, True),  # trusted: the proxy's start counts
    (0.5, 0.6, True, 0.1, False),  # trusted and fresh: the header wins over the read time
    (0.5, 0.1, True, 7200.0, False),  # beyond the clock-skew bound: ignored
    (0.5, 0.1, True, -30.0, False),  # a start in the future: no wait
]


@pytest.mark.parametrize(("limit", "waited", "trusted", "age", "shed"), QUEUE_CASES)
def test_queue_time_rule(
    limit: float, waited: float, trusted: bool, age: float | None, shed: bool
) -> None:
    admission = Admission(max_queue_time_s=limit, trust_request_start=trusted, wall=lambda: NOW)
    headers = b"" if age is None else b"X-Request-Start: t=%d\r\n" % int((NOW - age) * 1000)
    seen: list[float] = []
    admission.queue_time_listeners.append(seen.append)
    refusal = admission.admit(object(), _head("/", headers), arrived=10.0, now=10.0 + waited)
    assert (refusal is not None) is shed
    assert admission.shed["queue_time"] == int(shed)
    assert len(seen) == int(not shed)  # only admitted requests are observed


@settings(max_examples=200)
@given(
    st.lists(st.sampled_from(["admit", "release"]), max_size=60),
    st.integers(min_value=1, max_value=5),
)
def test_in_flight_never_exceeds_the_bound(ops: list[str], bound: int) -> None:
    admission = Admission(max_concurrency=bound)
    holders: list[object] = []
    for op in ops:
        if op == "admit":
            holder = object()
            if admission.admit(holder, _head(), 0, 0) is None:
                holders.append(holder)
        elif holders:
            admission.release(holders.pop(0))
        assert admission.in_flight == len(holders) <= bound


# -- over real sockets ------------------------------------------------------------------------


class Gate:
    """A handler that counts its calls and waits for ``open`` before answering."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.open = asyncio.Event()

    async def __call__(self, request: Any) -> Response:
        self.calls.append(request.path)
        if request.path == "/wait":
            await self.open.wait()
        return Response(text="done")


async def test_the_request_beyond_the_bound_gets_503_without_the_handler(serve: Any) -> None:
    gate = Gate()
    served = await serve(gate, max_concurrency=2)
    first, second, third = [await served.client() for _ in range(3)]
    for client in (first, second):
        await client.send(request_bytes("/wait"))
    while len(gate.calls) < 2:  # noqa: ASYNC110 - bounded by the test timeout
        await asyncio.sleep(0.01)
    await third.send(request_bytes("/wait") + request_bytes("/pipelined"))
    refused = await third.response()
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "1"
    assert refused.closes
    assert await third.is_closed()
    assert gate.calls == ["/wait", "/wait"]  # neither the refused nor the pipelined one ran
    assert served.server.admission.shed["concurrency"] == 1
    gate.open.set()
    for client in (first, second):
        assert (await client.response()).status == 200
    assert served.server.admission.in_flight == 0
    fourth = await served.client()
    await fourth.send(request_bytes("/again"))
    assert (await fourth.response()).status == 200


async def test_probes_pass_when_saturated(serve: Any) -> None:
    gate = Gate()

    def intercept(request: Any) -> Response | None:
        return Response(text="ok") if request.path.startswith("/-/") else None

    served = await serve(gate, max_concurrency=1, intercept=intercept)
    busy = await served.client()
    await busy.send(request_bytes("/wait"))
    while not gate.calls:  # noqa: ASYNC110 - bounded by the test timeout
        await asyncio.sleep(0.01)
    probe = await served.client()
    for path in ("/-/healthz", "/-/readyz"):
        await probe.send(request_bytes(path))
        assert (await probe.response()).status == 200
    other = await served.client()
    await other.send(request_bytes("/x"))
    assert (await other.response()).status == 503
    gate.open.set()
    assert (await busy.response()).status == 200


async def test_a_pipelined_request_that_waited_too_long_is_shed(serve: Any) -> None:
    calls: list[str] = []

    async def handler(request: Any) -> Response:
        calls.append(request.path)
        if request.path == "/block":
            time.sleep(0.3)  # noqa: ASYNC251 - the loop is busy: the pipelined request waits
        return Response(text="done")

    served = await serve(handler, max_queue_time=0.1)
    client = await served.client()
    await client.send(request_bytes("/block") + request_bytes("/late"))
    data = await client.read_until_closed()
    responses = parse_all(data)
    assert [r.status for r in responses] == [200, 503]
    assert responses[1].closes
    assert calls == ["/block"]
    assert served.server.admission.shed == {"concurrency": 0, "queue_time": 1}


async def test_queue_time_is_observed_for_admitted_requests(serve: Any) -> None:
    served = await serve(Gate(), max_queue_time=5)
    seen: list[float] = []
    served.server.admission.queue_time_listeners.append(seen.append)
    client = await served.client()
    await client.send(request_bytes("/a") + request_bytes("/b"))
    assert (await client.response()).status == 200
    assert (await client.response()).status == 200
    assert len(seen) == 2
    assert all(0 <= value < 5 for value in seen)


async def test_off_by_default(serve: Any) -> None:
    served = await serve(Gate())
    assert served.server.admission is None


async def test_a_websocket_session_does_not_hold_a_slot() -> None:
    # The HTTP request of an upgrade ends with its 101: the session after it is not in flight.
    import aiohttp

    from forkloop import web

    async def socket(request: Any) -> Any:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await ws.send_str(message.data)
        return ws

    async def plain(request: Any) -> Any:
        return web.Response(text="plain")

    app = web.Application()
    app.router.add_get("/ws", socket)
    app.router.add_get("/plain", plain)
    runner = web.AppRunner(app, access_log=None, max_concurrency=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws,
        ):
            await ws.send_str("ping")
            assert (await ws.receive()).data == "ping"
            assert runner.server is not None
            assert runner.server.admission is not None
            assert runner.server.admission.in_flight == 0
            async with session.get(f"http://127.0.0.1:{port}/plain") as r:
                assert r.status == 200
    finally:
        await runner.cleanup()


async def test_a_cancelled_or_failing_handler_lets_its_slot_go(serve: Any) -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    async def handler(request: Any) -> Response:
        if request.path == "/boom":
            raise RuntimeError("boom")
        if request.path == "/hang":
            started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.append(request.path)
                raise
        return Response(text="ok")

    served = await serve(handler, max_concurrency=1, handler_cancellation=True)
    admission = served.server.admission
    client = await served.client()
    await client.send(request_bytes("/boom"))
    assert (await client.response()).status == 500
    assert admission.in_flight == 0
    hanging = await served.client()
    await hanging.send(request_bytes("/hang"))
    await asyncio.wait_for(started.wait(), 5)
    assert admission.in_flight == 1
    await hanging.close()  # the client leaves: the handler is cancelled
    for _ in range(200):
        if admission.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert cancelled == ["/hang"]
    assert admission.in_flight == 0
    after = await served.client()
    await after.send(request_bytes("/ok"))
    assert (await after.response()).status == 200

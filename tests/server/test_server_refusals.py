"""Each limit and each ambiguous-framing case over a real socket: the exact status line, a
complete response with ``Connection: close``, then the connection closed, and a request
pipelined after the bad one never reaches the handler."""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

import pytest
from rawhttp import parse_all, request_bytes

from forkloop.core.http.limits import Limits
from forkloop.core.web.response import Response

CHUNKED_HEAD = b"POST /bad HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"


def _fields(count: int, size: int = 1) -> bytes:
    return b"".join(b"X-%03d: %s\r\n" % (i, b"v" * size) for i in range(count))


def _get(extra: bytes) -> bytes:
    return b"GET /bad HTTP/1.1\r\nHost: test\r\n" + extra + b"\r\n"


def _post(extra: bytes, body: bytes) -> bytes:
    return b"POST /bad HTTP/1.1\r\nHost: test\r\n" + extra + b"\r\n" + body


# (id, request bytes, status, error found in the head (True) or the body (False))
CASES = [
    (
        "request-line-too-long",
        b"GET /" + b"a" * 8200 + b" HTTP/1.1\r\nHost: test\r\n\r\n",
        414,
        True,
    ),
    (
        "header-field-too-long",
        _get(b"X-Big: " + b"a" * 8200 + b"\r\n"),
        431,
        True,
    ),
    (
        "header-section-too-large",
        _get(_fields(70, 1000)),
        431,
        True,
    ),
    (
        "too-many-headers",
        _get(_fields(129)),
        431,
        True,
    ),
    (
        "cl-and-te",
        _post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
        400,
        True,
    ),
    (
        "cl-differing-duplicate",
        _post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"),
        400,
        True,
    ),
    (
        "cl-identical-duplicate",
        _post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"),
        400,
        True,
    ),
    (
        "cl-non-numeric",
        _post(b"Content-Length: five\r\n", b"hello"),
        400,
        True,
    ),
    ("cl-signed-plus", _post(b"Content-Length: +5\r\n", b"hello"), 400, True),
    ("cl-signed-minus", _post(b"Content-Length: -5\r\n", b"hello"), 400, True),
    (
        "bad-chunk-size",
        CHUNKED_HEAD + b"zz\r\nhello\r\n0\r\n\r\n",
        400,
        False,
    ),
    (
        "negative-chunk-size",
        CHUNKED_HEAD + b"-5\r\nhello\r\n0\r\n\r\n",
        400,
        False,
    ),
    (
        "overflowing-chunk-size",
        CHUNKED_HEAD + b"fffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        400,
        False,
    ),
    (
        "chunk-longer-than-size",
        CHUNKED_HEAD + b"2\r\nhello\r\n0\r\n\r\n",
        400,
        False,
    ),
    ("obs-fold", _get(b"X-Folded: a\r\n b\r\n"), 400, True),
    ("nul-in-value", _get(b"X-Nul: a\x00b\r\n"), 400, True),
    ("cr-in-value", _get(b"X-Cr: a\rb\r\n"), 400, True),
    (
        "te-gzip",
        _post(b"Transfer-Encoding: gzip\r\n", b"abc"),
        400,
        True,
    ),
    (
        "te-gzip-chunked",
        _post(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n"),
        400,
        True,
    ),
    (
        "te-chunked-gzip",
        _post(b"Transfer-Encoding: chunked, gzip\r\n", b"0\r\n\r\n"),
        400,
        True,
    ),
    (
        "te-on-http10",
        b"POST /bad HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        True,
    ),
    ("http09", b"GET /bad\r\n\r\n", 505, True),
    (
        "http2-request-line",
        b"GET /bad HTTP/2.0\r\nHost: test\r\n\r\n",
        505,
        True,
    ),
    ("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, True),
    (
        "unknown-method",
        b"BREW /bad HTTP/1.1\r\nHost: test\r\n\r\n",
        400,
        True,
    ),
]
IDS = [case[0] for case in CASES]
PARAMS = [case[1:] for case in CASES]
NEXT = request_bytes("/after")
SAMPLE = {"request-line-too-long", "too-many-headers", "cl-and-te", "bad-chunk-size", "http09"}


def _check_error_reply(data: bytes, status: int) -> None:
    responses = parse_all(data)
    assert len(responses) == 1, data[:500]
    reply = responses[0]
    # The exact status line; the reason phrase is the standard library's for the code.
    assert reply.status_line == f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode()
    assert reply.headers["Connection"] == "close"
    assert reply.framing == "length"  # complete: a declared length, all of it sent
    assert int(reply.headers["Content-Length"]) == len(reply.body)
    assert "Date" in reply.headers


@pytest.mark.parametrize(("data", "status", "in_head"), PARAMS, ids=IDS)
async def test_refused_then_closed_and_next_not_processed(
    serve: Any, recorder: Any, data: bytes, status: int, in_head: bool
) -> None:
    served = await serve(recorder)
    client = await served.client()
    await client.send(data + NEXT)
    _check_error_reply(await client.read_until_closed(), status)
    assert "/after" not in recorder.calls
    if in_head:
        assert recorder.calls == []
    await client.close()


@pytest.mark.parametrize(("data", "status", "in_head"), PARAMS, ids=IDS)
async def test_good_request_before_the_bad_one_is_answered_first(
    serve: Any, recorder: Any, data: bytes, status: int, in_head: bool
) -> None:
    served = await serve(recorder)
    client = await served.client()
    await client.send(request_bytes("/before") + data + NEXT)
    first = await client.response()
    assert first.status == 200
    assert first.text() == "GET /before 0"
    _check_error_reply(await client.read_until_closed(), status)
    assert recorder.calls[0] == "/before"
    assert "/after" not in recorder.calls
    await client.close()


async def test_small_limits_from_config(serve: Any, recorder: Any) -> None:
    limits = Limits(max_request_line_bytes=64, max_header_field_bytes=64, max_header_count=4)
    served = await serve(recorder, limits=limits)
    for data, status in [
        (request_bytes("/" + "a" * 70), 414),
        (request_bytes("/", headers={"X-A": "b" * 70}), 431),
        (
            request_bytes("/", headers={f"X-{i}": "v" for i in range(5)}),
            431,
        ),
    ]:
        client = await served.client()
        await client.send(data + NEXT)
        _check_error_reply(await client.read_until_closed(), status)
        await client.close()
    assert recorder.calls == []
    # Within the limits, served.
    client = await served.client()
    await client.send(request_bytes("/" + "a" * 40, headers={f"X-{i}": "v" for i in range(3)}))
    assert (await client.response()).status == 200
    await client.close()


async def test_aiohttp_style_limit_keywords(serve: Any, recorder: Any) -> None:
    served = await serve(recorder, max_line_size=64, max_field_size=64, max_headers=4)
    assert served.server.limits.max_request_line_bytes == 64
    assert served.server.limits.max_header_field_bytes == 64
    assert served.server.limits.max_header_count == 4
    client = await served.client()
    await client.send(request_bytes("/" + "a" * 70))
    _check_error_reply(await client.read_until_closed(), 414)


async def test_header_bytes_trickled_never_ending_is_431(serve: Any, recorder: Any) -> None:
    # A header line that never ends, sent in many writes: refused once over the limits,
    # without waiting for the header timeout.
    served = await serve(recorder)
    client = await served.client()
    await client.send(b"GET / HTTP/1.1\r\nHost: test\r\nX-Endless: ")
    for _ in range(100):
        await asyncio.sleep(0.005)  # separate reads on the server
        try:
            await client.send(b"a" * 1024)
        except ConnectionError:
            break
    data = await client.read_until_closed(timeout_s=5)
    _check_error_reply(data, 431)
    assert recorder.calls == []


async def test_header_bytes_in_one_burst_never_ending_is_431(serve: Any, recorder: Any) -> None:
    served = await serve(recorder)
    client = await served.client()
    await client.send(b"GET / HTTP/1.1\r\nHost: test\r\nX-Endless: " + b"a" * 150_000)
    data = await client.read_until_closed(timeout_s=5)
    _check_error_reply(data, 431)


async def test_refused_client_still_sending_reads_the_reply(serve: Any, recorder: Any) -> None:
    # Lingering close: a client that keeps sending after a refusal still gets the reply
    # instead of a reset.
    served = await serve(recorder)
    client = await served.client()
    await client.send(
        b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
    )
    for _ in range(20):
        try:
            await client.send(b"x" * 4096)
        except ConnectionError:
            break
    _check_error_reply(await client.read_until_closed(), 400)


async def test_parse_errors_reach_observers(serve: Any, recorder: Any) -> None:
    class Seen:
        def __init__(self) -> None:
            self.statuses: list[int] = []

        def parse_error(self, status: int) -> None:
            self.statuses.append(status)

    seen = Seen()
    served = await serve(recorder, observers=[seen])
    client = await served.client()
    await client.send(b"BREW / HTTP/1.1\r\n\r\n")
    await client.read_until_closed()
    assert seen.statuses == [400]


async def _behind_slow_request(
    serve: Any, data: bytes, *, read_body: bool
) -> tuple[Any, list[str]]:
    """A client whose ``/slow`` request is in its handler when ``data`` arrives; the handler is
    released 0.1 s later. Returns the client and the paths that reached the handler."""
    calls: list[str] = []
    release = asyncio.Event()
    entered = asyncio.Event()

    async def handler(request: Any) -> Response:
        calls.append(request.path)
        if request.path == "/slow":
            entered.set()
            await release.wait()
        if read_body:
            await request.read()
        return Response(text="slow done")

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/slow"))
    await asyncio.wait_for(entered.wait(), 5)
    await client.send(data)
    await asyncio.sleep(0.1)
    release.set()
    return client, calls


@pytest.mark.parametrize(
    ("data", "status", "in_head"),
    [p for p, i in zip(PARAMS, IDS, strict=True) if i in SAMPLE],
    ids=[i for i in IDS if i in SAMPLE],
)
async def test_error_queued_behind_request_in_flight(
    serve: Any, data: bytes, status: int, in_head: bool
) -> None:
    # The bad bytes arrive while an earlier request is being handled: its response goes out
    # first and complete, then the error reply, then the close.
    client, calls = await _behind_slow_request(serve, data + NEXT, read_body=True)
    first = await client.response()
    assert first.status == 200
    assert first.text() == "slow done"
    _check_error_reply(await client.read_until_closed(), status)
    assert calls[0] == "/slow"
    assert "/after" not in calls


async def test_request_in_flight_completes_when_bad_bytes_follow(serve: Any) -> None:
    bad = b"GET /bad HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
    client, calls = await _behind_slow_request(serve, bad + NEXT, read_body=False)
    first = await client.response()
    assert first.status == 200
    assert first.text() == "slow done"
    await client.read_until_closed()
    assert calls == ["/slow"]


async def test_body_broken_mid_read_raises_request_payload_error(serve: Any) -> None:
    # The head is fine, so the handler runs; the chunked body then breaks. aiohttp's name for
    # that is web.RequestPayloadError; escaping the handler, it answers 400 and closes.
    from forkloop import web

    seen: list[BaseException] = []
    started = asyncio.Event()

    async def handler(request: Any) -> Response:
        started.set()
        try:
            await request.read()
        except web.RequestPayloadError as exc:
            seen.append(exc)
            raise
        return Response(text="unreachable")

    served = await serve(handler)
    client = await served.client()
    await client.send(CHUNKED_HEAD + b"5\r\nhello\r\n")
    await asyncio.wait_for(started.wait(), 5)
    await client.send(b"zz\r\n" + NEXT)
    _check_error_reply(await client.read_until_closed(), 400)
    assert len(seen) == 1
    assert "malformed request body" in str(seen[0])

"""Request cycles over real sockets: bodiless responses, request bodies, Expect, size limits,
errors, streaming, compression, cookies, flow control both ways, handler cancellation."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import socket
import struct
import zlib
from typing import Any

import pytest
from rawhttp import parse_all, request_bytes

from forkloop.core.http.limits import Limits
from forkloop.core.web.response import Response, StreamResponse, json_response

# -- no body for HEAD, 1xx, 204, 304 ------------------------------------------------------


async def test_head_has_headers_but_no_body(serve: Any) -> None:
    async def handler(request: Any) -> Response:
        return Response(text="hello body")

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/", "HEAD") + request_bytes("/next"))
    head = await client.response("HEAD")
    assert head.status == 200
    assert head.headers["Content-Length"] == "10"  # what a GET would have carried
    # The next response starts right after the head: no body bytes were sent.
    following = await client.response()
    assert following.status_line == b"HTTP/1.1 200 OK"
    assert following.body == b"hello body"


async def test_head_of_stream_response_has_no_body(serve: Any) -> None:
    async def handler(request: Any) -> StreamResponse:
        response = StreamResponse()
        await response.prepare(request)
        await response.write(b"streamed")
        await response.write_eof()
        return response

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/", "HEAD") + request_bytes("/", "GET"))
    await client.response("HEAD")
    assert (await client.response()).body == b"streamed"


@pytest.mark.parametrize("status", [204, 304])
async def test_204_and_304_carry_no_body(serve: Any, status: int) -> None:
    async def handler(request: Any) -> Response:
        return Response(status=status, text="must not be sent")

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/a") + request_bytes("/b"))
    first = await client.response()
    assert first.status == status
    assert "Transfer-Encoding" not in first.headers
    if status == 204:
        assert "Content-Length" not in first.headers  # RFC 9110 §8.6
    second = await client.response()
    assert second.status == status
    assert client.buffer == b""


async def test_1xx_final_response_carries_no_body(serve: Any) -> None:
    async def handler(request: Any) -> Response:
        return Response(status=103, text="must not be sent", headers={"Link": "</a>; rel=preload"})

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/", headers={"Connection": "close"}))
    data = await client.read_until_closed()
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 103 ")
    assert b"Content-Length" not in head
    assert b"Transfer-Encoding" not in head
    assert rest == b""


# -- request bodies -----------------------------------------------------------------------


async def _echo(request: Any) -> Response:
    body = await request.read()
    return Response(
        text=f"{len(body)} {hashlib.sha256(body).hexdigest()}",
        headers={"X-Chunked": str(request.headers.get("Transfer-Encoding", ""))},
    )


def _digest(body: bytes) -> str:
    return f"{len(body)} {hashlib.sha256(body).hexdigest()}"


async def test_chunked_request_body_in_pieces(serve: Any) -> None:
    served = await serve(_echo)
    client = await served.client()
    payload = bytes(range(256)) * 40
    await client.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    for start in range(0, len(payload), 1000):
        piece = payload[start : start + 1000]
        await client.send(b"%x;ext=1\r\n" % len(piece) + piece + b"\r\n")
        await asyncio.sleep(0.001)
    await client.send(b"0\r\nX-Trailer: dropped\r\n\r\n")
    response = await client.response()
    assert response.status == 200
    assert response.text() == _digest(payload)


async def test_content_length_body_byte_by_byte(serve: Any) -> None:
    served = await serve(_echo)
    client = await served.client()
    body = b"0123456789abcdef"
    for byte in request_bytes("/", "POST", body=body):
        await client.send(bytes([byte]))
    assert (await client.response()).text() == _digest(body)


async def test_stream_reader_methods_over_socket(serve: Any) -> None:
    async def handler(request: Any) -> Response:
        content = request.content
        line = await content.readline()
        exact = await content.readexactly(4)
        chunks = [chunk async for chunk in content.iter_chunked(3)]
        return json_response(
            {"line": line.decode(), "exact": exact.decode(), "chunks": [c.decode() for c in chunks]}
        )

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/", "POST", body=b"first line\nABCDrest-of-it"))
    response = await client.response()
    import json

    data = json.loads(response.body)
    assert data["line"] == "first line\n"
    assert data["exact"] == "ABCD"
    assert "".join(data["chunks"]) == "rest-of-it"
    assert all(len(c) <= 3 for c in data["chunks"])


async def test_unread_body_is_skipped_and_connection_kept(serve: Any) -> None:
    async def handler(request: Any) -> Response:
        return Response(text=request.path)

    served = await serve(handler)
    client = await served.client()
    await client.send(
        request_bytes("/one", "POST", body=b"x" * 5000)
        + request_bytes(
            "/two", "POST", headers={"Transfer-Encoding": "chunked"}, body=b"3\r\nabc\r\n0\r\n\r\n"
        )
        + request_bytes("/three")
    )
    assert [(await client.response()).text() for _ in range(3)] == ["/one", "/two", "/three"]


# -- Expect: 100-continue -----------------------------------------------------------------

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


async def test_100_continue_sent_when_handler_reads(serve: Any) -> None:
    served = await serve(_echo)
    client = await served.client()
    body = b"payload after continue"
    head = request_bytes("/", "POST", headers={"Expect": "100-continue"}, body=body)
    await client.send(head[: -len(body)])
    assert await client.read_exactly_buffered(len(CONTINUE), timeout_s=5) == CONTINUE
    await client.send(body)
    response = await client.response()
    assert response.status == 200
    assert response.text() == _digest(body)


async def test_100_continue_not_sent_when_handler_does_not_read(serve: Any) -> None:
    async def handler(request: Any) -> Response:
        return Response(status=401, text="no")

    served = await serve(handler)
    client = await served.client()
    await client.send(
        b"PUT / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 1000000\r\n\r\n"
    )
    response = await client.response(timeout_s=5)
    assert response.status == 401
    assert b"100 Continue" not in response.status_line
    # Nothing else came, in particular no late 100 Continue.
    data = b""
    if response.closes:
        data = await client.read_until_closed()
    else:
        await asyncio.sleep(0.2)
        data = client.buffer
    assert b"100 Continue" not in data


async def test_100_continue_with_body_already_sent(serve: Any) -> None:
    # The client sent the body without waiting: a 100 is optional (RFC 9110 §10.1.1), but if
    # sent it comes once, before the final response, and nothing follows that response.
    served = await serve(_echo)
    client = await served.client()
    body = b"abc"
    await client.send(
        request_bytes(
            "/", "POST", headers={"Expect": "100-continue", "Connection": "close"}, body=body
        )
    )
    data = await client.read_until_closed()
    data = data.removeprefix(CONTINUE)
    (response,) = parse_all(data)
    assert response.status == 200
    assert response.text() == _digest(body)


async def test_no_100_continue_for_http10(serve: Any) -> None:
    served = await serve(_echo)
    client = await served.client()
    body = b"abc"
    data = request_bytes("/", "POST", version="1.0", headers={"Expect": "100-continue"}, body=body)
    await client.send(data[: -len(body)])
    await asyncio.sleep(0.3)
    await client.send(body)
    data = await client.read_until_closed()
    assert b"100 Continue" not in data
    (response,) = parse_all(data)
    assert response.text() == _digest(body)


async def test_unknown_expectation_is_417(serve: Any, recorder: Any) -> None:
    served = await serve(recorder)
    client = await served.client()
    await client.send(request_bytes("/", "POST", headers={"Expect": "teapot"}, body=b"abc"))
    data = await client.read_until_closed()
    (response,) = parse_all(data)
    assert response.status_line == b"HTTP/1.1 417 Expectation Failed"
    assert response.closes
    assert recorder.calls == []


# -- size limit, errors -------------------------------------------------------------------


async def test_client_max_size_413_on_read(serve: Any) -> None:
    served = await serve(_echo, limits=Limits(client_max_size=1000))
    client = await served.client()
    await client.send(request_bytes("/", "POST", body=b"y" * 1000))
    assert (await client.response()).status == 200  # exactly the limit is fine
    await client.send(request_bytes("/", "POST", body=b"y" * 1001))
    response = await client.response()
    assert response.status == 413
    assert response.reason == "Request Entity Too Large" or response.reason == "Content Too Large"


async def test_client_max_size_413_chunked_without_length(serve: Any) -> None:
    served = await serve(_echo, limits=Limits(client_max_size=1000))
    client = await served.client()
    chunk = b"z" * 600
    body = b"%x\r\n%s\r\n" % (len(chunk), chunk) * 2 + b"0\r\n\r\n"
    await client.send(
        request_bytes("/", "POST", headers={"Transfer-Encoding": "chunked"}, body=body)
    )
    assert (await client.response()).status == 413


async def test_default_client_max_size_is_1_mib(serve: Any) -> None:
    served = await serve(_echo)
    client = await served.client()
    await client.send(request_bytes("/", "POST", body=b"m" * (1024 * 1024 + 1)))
    assert (await client.response()).status == 413


async def test_unhandled_exception_is_500_without_traceback(serve: Any) -> None:
    async def handler(request: Any) -> Response:
        raise RuntimeError("secret detail of the failure")

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/") + request_bytes("/again"))
    response = await client.response()
    assert response.status_line == b"HTTP/1.1 500 Internal Server Error"
    assert b"secret detail" not in response.body
    assert b"Traceback" not in response.body
    # As aiohttp: the connection closes after the 500; the request behind it is not served.
    assert response.closes
    assert await client.is_closed(wait=2)


async def test_unhandled_exception_has_traceback_in_debug(serve: Any) -> None:
    async def handler(request: Any) -> Response:
        raise RuntimeError("secret detail of the failure")

    served = await serve(handler, debug=True)
    client = await served.client()
    await client.send(request_bytes("/"))
    response = await client.response()
    assert response.status == 500
    assert b"Traceback" in response.body
    assert b"secret detail of the failure" in response.body


async def test_timeout_error_is_504(serve: Any) -> None:
    async def handler(request: Any) -> Response:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(1)
        return Response(text="unreachable")

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/"))
    response = await client.response()
    assert response.status_line == b"HTTP/1.1 504 Gateway Timeout"


async def test_http_exception_raised_is_the_response(serve: Any) -> None:
    from forkloop.core.web.exceptions import HTTPForbidden

    async def handler(request: Any) -> Response:
        raise HTTPForbidden(text="go away")

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/"))
    response = await client.response()
    assert response.status == 403
    assert response.body == b"go away"


async def test_handler_returning_none_is_500(serve: Any) -> None:
    async def handler(request: Any) -> Any:
        return None

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/"))
    assert (await client.response()).status == 500


async def test_failure_after_prepare_closes_connection(serve: Any) -> None:
    async def handler(request: Any) -> StreamResponse:
        response = StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"partial")
        raise RuntimeError("boom")

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/") + request_bytes("/next"))
    data = await client.read_until_closed(timeout_s=3)
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b"partial" in data
    assert not data.endswith(b"0\r\n\r\n")  # never completed: the close tells the client
    assert data.count(b"HTTP/1.1") == 1


async def test_body_idle_timeout_is_408_and_close(serve: Any) -> None:
    served = await serve(_echo, limits=Limits(body_idle_timeout_s=0.3))
    client = await served.client()
    await client.send(request_bytes("/", "POST", body=b"0123456789")[:-8])  # 2 of 10 bytes
    data = await client.read_until_closed(timeout_s=5)
    (response,) = parse_all(data)
    assert response.status == 408
    assert response.closes


async def test_intercept_answers_before_the_handler(serve: Any, recorder: Any) -> None:
    def intercept(request: Any) -> Response | None:
        if request.path == "/-/healthz":
            return Response(text="healthy")
        return None

    served = await serve(recorder, intercept=intercept)
    client = await served.client()
    await client.send(request_bytes("/-/healthz") + request_bytes("/app"))
    assert (await client.response()).text() == "healthy"
    assert (await client.response()).text() == "GET /app 0"
    assert recorder.calls == ["/app"]


# -- streaming ----------------------------------------------------------------------------


async def test_chunked_stream_response(serve: Any) -> None:
    async def handler(request: Any) -> StreamResponse:
        response = StreamResponse(headers={"X-Stream": "yes"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(5):
            await response.write(b"part%d;" % i)
        await response.write_eof()
        return response

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/") + request_bytes("/"))
    for _ in range(2):
        response = await client.response()
        assert response.framing == "chunked"
        assert response.body == b"part0;part1;part2;part3;part4;"
        assert response.headers["X-Stream"] == "yes"


async def test_stream_response_without_length_is_chunked_on_11(serve: Any) -> None:
    async def handler(request: Any) -> StreamResponse:
        response = StreamResponse()
        await response.prepare(request)
        await response.write(b"a" * 100)
        await response.write_eof(b"end")
        return response

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/"))
    response = await client.response()
    assert response.framing == "chunked"
    assert response.body == b"a" * 100 + b"end"


async def test_stream_response_on_http10_is_close_delimited(serve: Any) -> None:
    async def handler(request: Any) -> StreamResponse:
        response = StreamResponse()
        await response.prepare(request)
        for i in range(3):
            await response.write(b"line %d\n" % i)
        await response.write_eof()
        return response

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/", version="1.0", headers={"Connection": "keep-alive"}))
    data = await client.read_until_closed()
    (response,) = parse_all(data)
    assert response.framing == "close"
    assert "Transfer-Encoding" not in response.headers
    assert response.closes
    assert response.body == b"line 0\nline 1\nline 2\n"


async def test_stream_response_with_content_length(serve: Any) -> None:
    async def handler(request: Any) -> StreamResponse:
        response = StreamResponse()
        response.content_length = 6
        await response.prepare(request)
        await response.write(b"abc")
        await response.write(b"def")
        await response.write_eof()
        return response

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/") + request_bytes("/"))
    for _ in range(2):
        response = await client.response()
        assert response.framing == "length"
        assert response.body == b"abcdef"


async def _declared_ten(request: Any) -> StreamResponse:
    response = StreamResponse()
    response.content_length = 10
    await response.prepare(request)
    size = {"/more": 15, "/less": 5}.get(request.path, 10)
    await response.write(b"b" * size)
    await response.write_eof()
    return response


async def test_body_longer_than_content_length_is_not_sent(serve: Any) -> None:
    served = await serve(_declared_ten)
    client = await served.client()
    await client.send(request_bytes("/more") + request_bytes("/next"))
    first = await client.response()
    assert first.body == b"b" * 10
    second = await client.response(timeout_s=3)  # a clean response follows, or nothing
    assert second.status_line == b"HTTP/1.1 200 OK"


async def test_body_shorter_than_content_length_closes(serve: Any) -> None:
    served = await serve(_declared_ten)
    client = await served.client()
    await client.send(request_bytes("/less") + request_bytes("/next"))
    data = await client.read_until_closed(timeout_s=1.5)
    assert data.count(b"HTTP/1.1 200 OK") == 1
    assert data.endswith(b"b" * 5)


async def test_body_matching_content_length_keeps_connection(serve: Any) -> None:
    served = await serve(_declared_ten)
    client = await served.client()
    await client.send(request_bytes("/exact") + request_bytes("/exact"))
    for _ in range(2):
        assert (await client.response()).body == b"b" * 10


# -- compression, cookies -----------------------------------------------------------------

TEXT = "compress me please " * 200


async def _compressible(request: Any) -> Response:
    response = Response(text=TEXT)
    response.enable_compression()
    return response


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("gzip, deflate", None),  # either is fine; checked below
        ("identity", None),
        (None, None),
    ],
)
async def test_compression_by_accept_encoding(
    serve: Any, accept: str | None, coding: str | None
) -> None:
    served = await serve(_compressible)
    client = await served.client()
    headers = {"Accept-Encoding": accept} if accept else {}
    await client.send(request_bytes("/", headers=headers))
    response = await client.response()
    used = response.headers.get("Content-Encoding")
    if accept == "gzip, deflate":
        assert used in ("gzip", "deflate")
    else:
        assert used == coding
    if used == "gzip":
        assert gzip.decompress(response.body).decode() == TEXT
    elif used == "deflate":
        assert zlib.decompress(response.body).decode() == TEXT
    else:
        assert response.text() == TEXT
    if used:
        assert len(response.body) < len(TEXT)
        assert "Accept-Encoding" in response.headers.get("Vary", "")


async def test_compressed_stream_response(serve: Any) -> None:
    async def handler(request: Any) -> StreamResponse:
        response = StreamResponse()
        response.enable_compression()
        await response.prepare(request)
        for _ in range(10):
            await response.write(TEXT.encode())
        await response.write_eof()
        return response

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/", headers={"Accept-Encoding": "gzip"}))
    response = await client.response()
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.body).decode() == TEXT * 10


async def test_cookies_both_ways(serve: Any) -> None:
    async def handler(request: Any) -> Response:
        response = Response(text=",".join(f"{k}={v}" for k, v in sorted(request.cookies.items())))
        response.set_cookie("session", "abc123", httponly=True, max_age=60, samesite="Lax")
        response.del_cookie("old")
        return response

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/", headers={"Cookie": "a=1; b=two"}))
    response = await client.response()
    assert response.text() == "a=1,b=two"
    cookies = response.headers.getall("Set-Cookie")
    session = next(c for c in cookies if c.startswith("session="))
    assert "session=abc123" in session
    assert "HttpOnly" in session
    assert "Max-Age=60" in session
    assert "SameSite=Lax" in session
    assert "Path=/" in session
    old = next(c for c in cookies if c.startswith("old="))
    assert 'old=""' in old
    assert "Max-Age=0" in old
    assert "01 Jan 1970" in old


# -- flow control -------------------------------------------------------------------------


async def test_large_response_to_slow_reader_is_bounded_by_drain(serve: Any) -> None:
    total = 32 * 1024 * 1024
    piece = b"r" * 65536
    max_buffer = 0
    written = 0
    done = asyncio.Event()

    async def handler(request: Any) -> StreamResponse:
        nonlocal max_buffer, written
        response = StreamResponse()
        response.content_length = total
        await response.prepare(request)
        transport = request.transport
        while written < total:
            await response.write(piece)
            written += len(piece)
            max_buffer = max(max_buffer, transport.get_write_buffer_size())
        await response.write_eof()
        done.set()
        return response

    limits = Limits(write_buffer_high_bytes=128 * 1024, write_buffer_low_bytes=32 * 1024)
    served = await serve(handler, limits=limits)
    reader, writer = await asyncio.open_connection(served.host, served.port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    writer.write(request_bytes("/"))
    await writer.drain()
    await asyncio.sleep(0.5)  # the client reads nothing yet
    assert not done.is_set()
    assert written < total  # the handler waits in drain()
    assert max_buffer <= 128 * 1024 + len(piece)
    # Now read it all, slowly at first.
    received = 0
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    while received < total:
        chunk = await asyncio.wait_for(reader.read(1 << 20), 10)
        assert chunk
        received += len(chunk)
    assert received == total
    await asyncio.wait_for(done.wait(), 10)
    assert max_buffer <= 128 * 1024 + len(piece)
    writer.close()


async def test_large_request_body_read_slowly_is_flow_controlled(serve: Any) -> None:
    total = 32 * 1024 * 1024
    high = 256 * 1024
    buffered_while_paused = -1
    result: dict[str, Any] = {}

    async def handler(request: Any) -> Response:
        nonlocal buffered_while_paused
        await asyncio.sleep(0.5)  # not reading: the server must stop reading the socket
        # What the server buffered for us meanwhile is bounded by the high-water mark plus
        # one socket read.
        first = request.content.read_nowait()
        buffered_while_paused = len(first)
        digest = hashlib.sha256(first)
        size = len(first)
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            size += len(chunk)
        result["size"] = size
        return Response(text=f"{size} {digest.hexdigest()}")

    served = await serve(handler, limits=Limits(read_buffer_high_bytes=high))
    reader, writer = await asyncio.open_connection(served.host, served.port)
    body = bytes(range(256)) * (total // 256)
    head = request_bytes("/", "POST", body=body)[: -len(body)]
    writer.write(head)
    sent = 0
    step = 1 << 20
    # Push until the socket stops taking bytes: with the handler not reading, the server must
    # stop reading too, so the client gets stuck well short of the whole body (kernel buffers
    # hold a few MiB at most). Without flow control it would send all of it.
    while sent < total:
        writer.write(body[sent : sent + step])
        sent += step
        try:
            await asyncio.wait_for(writer.drain(), 0.25)
        except TimeoutError:
            break
    stuck_at = sent
    writer.write(body[sent:])
    await asyncio.wait_for(writer.drain(), 30)
    data = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    assert data.startswith(b"HTTP/1.1 200")
    text = await asyncio.wait_for(reader.read(200), 10)
    assert text.decode().endswith(f"{total} {hashlib.sha256(body).hexdigest()}")
    assert stuck_at < total
    assert 0 < buffered_while_paused <= high + 256 * 1024
    writer.close()


# -- handler cancellation -----------------------------------------------------------------


async def _run_disconnect(serve: Any, *, reset: bool = False, **kwargs: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"started": asyncio.Event(), "outcome": None}

    async def handler(request: Any) -> Response:
        state["started"].set()
        try:
            await asyncio.sleep(0.5)
        except asyncio.CancelledError:
            state["outcome"] = "cancelled"
            raise
        state["outcome"] = "completed"
        return Response(text="late")

    served = await serve(handler, **kwargs)
    client = await served.client()
    await client.send(request_bytes("/"))
    await asyncio.wait_for(state["started"].wait(), 5)
    if reset:  # SO_LINGER 0: close() sends RST
        sock = client.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await client.close()
    for _ in range(100):
        if state["outcome"] is not None:
            break
        await asyncio.sleep(0.02)
    return state


async def test_handler_not_cancelled_on_disconnect_by_default(serve: Any) -> None:
    state = await _run_disconnect(serve)
    assert state["outcome"] == "completed"


async def test_handler_cancelled_on_disconnect_when_enabled(serve: Any) -> None:
    state = await _run_disconnect(serve, handler_cancellation=True)
    assert state["outcome"] == "cancelled"


async def test_handler_cancelled_on_connection_reset_when_enabled(serve: Any) -> None:
    state = await _run_disconnect(serve, handler_cancellation=True, reset=True)
    assert state["outcome"] == "cancelled"


async def test_handler_not_cancelled_on_connection_reset_by_default(serve: Any) -> None:
    state = await _run_disconnect(serve, reset=True)
    assert state["outcome"] == "completed"


async def test_observers_see_requests(serve: Any) -> None:
    events: list[tuple[Any, ...]] = []

    class Observer:
        def connection_made(self) -> None:
            events.append(("made",))

        def request_started(self, request: Any) -> None:
            events.append(("started", request.path))

        def request_finished(
            self, request: Any, response: Any, duration_s: float, exc: BaseException | None
        ) -> None:
            events.append(("finished", request.path, response.status, duration_s >= 0, exc))

        def connection_lost(self) -> None:
            events.append(("lost",))

    async def handler(request: Any) -> Response:
        return Response(text="ok")

    served = await serve(handler, observers=[Observer()])
    client = await served.client()
    await client.send(request_bytes("/o", headers={"Connection": "close"}))
    await client.read_until_closed()
    for _ in range(50):
        if ("lost",) in events:
            break
        await asyncio.sleep(0.02)
    assert events == [("made",), ("started", "/o"), ("finished", "/o", 200, True, None), ("lost",)]


async def test_observer_sees_no_response_when_client_reset(serve: Any) -> None:
    finished: list[tuple[Any, Any]] = []
    done = asyncio.Event()

    class Observer:
        def request_finished(
            self, request: Any, response: Any, duration_s: float, exc: BaseException | None
        ) -> None:
            finished.append((response, exc))
            done.set()

    async def handler(request: Any) -> Response:
        await asyncio.sleep(0.3)
        return Response(text="too late")

    served = await serve(handler, observers=[Observer()])
    client = await served.client()
    await client.send(request_bytes("/"))
    await asyncio.sleep(0.1)
    sock = client.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await client.close()
    await asyncio.wait_for(done.wait(), 5)
    ((response, exc),) = finished
    assert response is None
    assert isinstance(exc, ConnectionError)

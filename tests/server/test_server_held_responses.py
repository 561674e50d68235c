"""A whole keep-alive response is held to the end of the loop's pass, and never overtaken.

``HttpProtocol.write_response`` (the one-write path of ``Response``) holds the response and
the loop's outbox writes every held response together once the pass has read and answered
what came. These tests pin both halves: that it is held (a client reads nothing until the
pass ends), and that nothing reaches the socket before it or loses it: a pipelined burst of
every kind of response, a close, a graceful stop, the peer's EOF, a response over the bound.

The deterministic tests feed the request with ``data_received`` from a plain loop callback,
as the loop itself does, and look at a real client socket in the same callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rawhttp import (
    Incomplete,
    RawClient,
    RawResponse,
    parse_all,
    parse_response,
    request_bytes,
)

from forkloop import web
from forkloop.core.server.protocol import MAX_HELD_RESPONSE_BYTES, MAX_HELD_RESPONSES, HttpProtocol
from forkloop.core.web.response import Response, StreamResponse

BIG = b"b" * (MAX_HELD_RESPONSE_BYTES + 1)


async def _handler(request: Any, file: Path | None = None) -> Any:
    path = request.path
    if path == "/big":
        return Response(body=BIG)
    if path == "/stream":
        response = StreamResponse()
        await response.prepare(request)
        await response.write(b"one,")
        await response.write(b"two")
        await response.write_eof()
        return response
    if path == "/file" and file is not None:
        return web.FileResponse(file)
    if path == "/echo":
        return Response(body=await request.read())
    if path == "/raw":  # bytes straight to the transport, as some apps write them, then close
        transport = request.transport
        transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nraw")
        transport.close()
        return Response(text="never sent")
    if path == "/ws":
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await ws.send_str("echo " + message.data)
        return ws
    return Response(text=f"plain {path}")


def _file_handler(file: Path) -> Callable[[Any], Any]:
    async def handler(request: Any) -> Any:
        return await _handler(request, file)

    return handler


# -- a client socket the test can look at from inside a loop callback ----------------------


@contextlib.contextmanager
def _sockets(host: str, port: int, count: int) -> Iterator[list[socket.socket]]:
    socks = [socket.create_connection((host, port), timeout=5) for _ in range(count)]
    try:
        yield socks
    finally:
        for sock in socks:
            sock.close()


def _peek(sock: socket.socket) -> bytes | None:
    """What has arrived so far, without waiting (None: nothing yet)."""
    timeout = sock.gettimeout()
    sock.setblocking(False)  # with a timeout set, recv would first wait that long for data
    try:
        return sock.recv(65536, socket.MSG_PEEK)
    except BlockingIOError:
        return None
    finally:
        sock.settimeout(timeout)


async def _read_responses(sock: socket.socket, count: int, *, until_eof: bool = False) -> list[Any]:
    """``count`` responses from a blocking socket, read in a thread (bounded by its timeout)."""

    def read() -> list[Any]:
        data = b""
        responses: list[Any] = []
        while True:
            while len(responses) < count:
                try:
                    response, data = parse_response(data)
                except Incomplete:
                    break
                responses.append(response)
            if len(responses) == count and not until_eof:
                return responses
            chunk = sock.recv(65536)
            if not chunk:
                assert len(responses) == count, (responses, data[:200])
                assert data == b"", data[:200]
                return responses
            data += chunk

    return await asyncio.to_thread(read)


async def _read_until_closed(sock: socket.socket) -> bytes:
    """Every byte until the server closes or resets (bounded by the socket's timeout)."""

    def read() -> bytes:
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                data += chunk
        return data

    return await asyncio.to_thread(read)


async def _protocols(socks: list[socket.socket], server: Any) -> list[HttpProtocol]:
    """The server's side of ``socks``, in their order, each past a first request: its task
    now waits for the next, so a request fed from a loop callback is answered right there
    (``_run_eagerly``), as a keep-alive request is (the first one of a connection starts its
    task instead)."""
    for sock in socks:
        sock.sendall(_get("/warm-up"))
        assert (await _read_responses(sock, 1))[0].text() == "plain /warm-up"
    for _ in range(200):
        by_peer = {protocol.peername: protocol for protocol in server.connections}
        if len(by_peer) == len(socks) and all(p._waiter is not None for p in by_peer.values()):
            return [by_peer[sock.getsockname()] for sock in socks]
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(server.connections)} connections, expected {len(socks)}")


async def _in_callback(action: Callable[[], Any]) -> Any:
    """Run ``action`` as a plain loop callback (not inside a task), as the loop runs
    ``data_received``; return what it returned."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def run() -> None:
        try:
            done.set_result(action())
        except BaseException as exc:
            done.set_exception(exc)

    loop.call_soon(run)
    return await done


def _get(path: str, **headers: str) -> bytes:
    return request_bytes(path, headers=headers or None)


# -- held to the end of the pass ------------------------------------------------------------


async def test_responses_of_one_pass_are_held_then_all_written(serve: Any) -> None:
    served = await serve(_handler)
    with _sockets(served.host, served.port, 8) as socks:
        protocols = await _protocols(socks, served.server)

        def answer_all() -> list[bytes | None]:
            for index, protocol in enumerate(protocols):
                protocol.data_received(_get(f"/{index}"))
            return [_peek(sock) for sock in socks]

        assert await _in_callback(answer_all) == [None] * len(socks)
        for index, sock in enumerate(socks):
            assert (await _read_responses(sock, 1))[0].text() == f"plain /{index}"


async def test_a_second_whole_response_in_one_pass_goes_out_after_the_held_one(
    serve: Any,
) -> None:
    served = await serve(_handler)
    with _sockets(served.host, served.port, 1) as (sock,):
        (protocol,) = await _protocols([sock], served.server)
        first, second = (
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            for body in (b"first", b"second")
        )

        def write_two() -> None:
            protocol.write_response(first)
            protocol.write_response(second)  # one is held already: both go, in order

        await _in_callback(write_two)
        assert [r.body for r in await _read_responses(sock, 2)] == [b"first", b"second"]


async def test_a_pass_holding_the_most_responses_writes_them_then_holds_again(
    serve: Any,
) -> None:
    served = await serve(_handler)
    count = MAX_HELD_RESPONSES + 2
    with _sockets(served.host, served.port, count) as socks:
        protocols = await _protocols(socks, served.server)

        def answer_all() -> tuple[list[bool], list[bool]]:
            arrived = []
            for protocol in protocols:
                protocol.data_received(_get("/n"))
                arrived.append(any(_peek(sock) is not None for sock in socks))
            return arrived, [_peek(sock) is not None for sock in socks]

        # Nothing goes out until the most are held; then those go, and the next ones wait.
        arrived, written = await _in_callback(answer_all)
        assert arrived == [False] * (MAX_HELD_RESPONSES - 1) + [True] * 3
        assert written == [True] * MAX_HELD_RESPONSES + [False] * 2
        for sock in socks:
            assert (await _read_responses(sock, 1))[0].text() == "plain /n"


async def test_a_response_over_the_bound_is_written_at_once(serve: Any) -> None:
    served = await serve(_handler)
    with _sockets(served.host, served.port, 1) as (sock,):
        (protocol,) = await _protocols([sock], served.server)

        def answer() -> bytes | None:
            protocol.data_received(_get("/big"))
            return _peek(sock)

        assert await _in_callback(answer) is not None
        (response,) = await _read_responses(sock, 1)
        assert response.body == BIG


def _graceful_stop(protocol: HttpProtocol) -> None:
    protocol.begin_shutdown()  # idle again: closes now


def _abort(protocol: HttpProtocol) -> None:
    protocol.abort()


def _peer_eof(protocol: HttpProtocol) -> None:
    if not protocol.eof_received():  # as the transport does: False closes it
        assert protocol.transport is not None
        protocol.transport.close()


@pytest.mark.parametrize("end", [_graceful_stop, _abort, _peer_eof])
async def test_the_connection_ending_in_the_same_pass_writes_the_held_response_first(
    serve: Any, end: Callable[[HttpProtocol], None]
) -> None:
    served = await serve(_handler)
    with _sockets(served.host, served.port, 1) as (sock,):
        (protocol,) = await _protocols([sock], served.server)

        def answer_then_end() -> None:
            protocol.data_received(_get("/last"))
            end(protocol)

        await _in_callback(answer_then_end)
        (response,) = await _read_responses(sock, 1)
        assert response.text() == "plain /last"
        assert protocol.transport is None or protocol.transport.is_closing()


async def test_a_lost_connection_drops_its_held_response_and_not_the_others(
    serve: Any,
) -> None:
    errors: list[Any] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        served = await serve(_handler)
        with _sockets(served.host, served.port, 2) as socks:
            lost, kept = await _protocols(socks, served.server)

            def answer_both_then_lose_one() -> None:
                lost.data_received(_get("/lost"))
                kept.data_received(_get("/kept"))
                assert lost.transport is not None
                lost.transport.abort()

            await _in_callback(answer_both_then_lose_one)
            (response,) = await _read_responses(socks[1], 1)
            assert response.text() == "plain /kept"
            assert await _read_until_closed(socks[0]) == b""  # nothing of /lost
            assert lost._held is None
    finally:
        loop.set_exception_handler(None)
    assert errors == []


# -- never overtaken: real clients, real bursts ----------------------------------------------


async def test_a_pipelined_burst_of_every_kind_comes_back_in_order(
    serve: Any, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 400
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    served = await serve(_file_handler(path))
    client = await served.client()
    burst = [
        _get("/p1"),
        _get("/stream"),
        _get("/p2"),
        _get("/file"),
        _get("/p3"),
        _get("/big"),
        _get("/p4"),
    ]
    # The last request waits for its 100 Continue: it must come after the held /p4.
    expect = request_bytes("/echo", method="POST", headers={"Expect": "100-continue"}, body=b"")
    expect = expect.replace(b"Content-Length: 0", b"Content-Length: 2")
    await client.send(b"".join(burst) + expect)
    bodies = [(await client.response()).body for _ in burst]
    assert bodies == [b"plain /p1", b"one,two", b"plain /p2", data, b"plain /p3", BIG, b"plain /p4"]
    assert (await client.response()).status == 100
    await client.send(b"hi" + _get("/p5") + _get("/p6", Connection="close"))
    responses = parse_all(await client.read_until_closed())
    assert [r.body for r in responses] == [b"hi", b"plain /p5", b"plain /p6"]
    assert responses[-1].closes


async def test_a_handler_writing_to_the_transport_itself_comes_after_the_held_response(
    serve: Any,
) -> None:
    served = await serve(_handler)
    client = await served.client()
    await client.send(_get("/first") + _get("/raw"))
    responses = parse_all(await client.read_until_closed())
    assert [r.body for r in responses] == [b"plain /first", b"raw"]


async def test_a_burst_ending_in_an_upgrade_switches_after_the_held_response(
    serve: Any,
) -> None:
    served = await serve(_handler)
    client = await served.client()
    upgrade = _get(
        "/ws",
        Upgrade="websocket",
        Connection="Upgrade",
        **{"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"},
    )
    await client.send(_get("/before") + upgrade)
    first = await client.response()
    assert first.text() == "plain /before"
    switched = await client.response()
    assert switched.status == 101
    mask = b"\x01\x02\x03\x04"
    payload = b"hello"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    await client.send(b"\x81" + bytes([0x80 | len(payload)]) + mask + masked)
    frame = await client.read_exactly_buffered(2 + len("echo hello"))
    assert frame == b"\x81\x0aecho hello"


async def test_many_connections_each_get_their_own_responses_in_order(serve: Any) -> None:
    served = await serve(_handler)
    clients = [await served.client() for _ in range(40)]
    rounds = 15

    async def converse(index: int, client: RawClient) -> list[str]:
        await client.send(b"".join(_get(f"/c{index}/r{r}") for r in range(rounds)))
        got = [(await client.response()).text() for _ in range(rounds)]
        for r in range(rounds, 2 * rounds):  # then one at a time: keep-alive, not pipelined
            await client.send(_get(f"/c{index}/r{r}"))
            got.append((await client.response()).text())
        return got

    results = await asyncio.gather(*(converse(i, c) for i, c in enumerate(clients)))
    for index, got in enumerate(results):
        assert got == [f"plain /c{index}/r{r}" for r in range(2 * rounds)]


async def test_a_client_that_stops_sending_still_gets_its_answers(serve: Any) -> None:
    served = await serve(_handler)
    with _sockets(served.host, served.port, 1) as (sock,):
        sock.sendall(_get("/a") + _get("/b"))
        sock.shutdown(socket.SHUT_WR)  # the requests and the EOF may come in one read
        responses: list[RawResponse] = await _read_responses(sock, 2, until_eof=True)
        assert [r.text() for r in responses] == ["plain /a", "plain /b"]

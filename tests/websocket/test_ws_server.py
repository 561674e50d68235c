"""WebSocketResponse over real sockets: aiohttp's and websockets' clients, and raw frames."""

from __future__ import annotations

import asyncio
import json
import os
import struct
from typing import Any

import aiohttp
import pytest
import websockets
from websockets.asyncio.client import connect as ws_connect
from ws_helpers import RawClient, Serve

from forkloop import web
from forkloop.core.hooks import OBSERVERS_KEY
from forkloop.core.web.deprecations import set_internal_key
from forkloop.core.websocket import FrameWriter, build_frame

MiB = 1024 * 1024


async def echo(request: web.Request) -> web.WebSocketResponse:
    max_size = int(request.query.get("max", 4 * MiB))
    ws = web.WebSocketResponse(max_msg_size=max_size, compress=request.query.get("c") != "0")
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == web.WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == web.WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


def make_app(**routes: Any) -> web.Application:
    app = web.Application()
    app.router.add_get("/echo", echo)
    for path, handler in routes.items():
        app.router.add_get("/" + path, handler)
    return app


def ws_url(base: str, path: str) -> str:
    return base.replace("http://", "ws://") + path


SIZES = [0, 125, 126, 65536, MiB, 16 * MiB]


@pytest.mark.parametrize("compress", [True, False], ids=["deflate", "plain"])
async def test_aiohttp_client_echo(serve: Serve, compress: bool) -> None:
    base = await serve(make_app())
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            base + f"/echo?max={32 * MiB}", compress=15 if compress else 0, max_msg_size=0
        ) as ws,
    ):
        assert bool(ws.compress) is compress
        await ws.send_str("héllo")
        assert (await ws.receive()).data == "héllo"
        for size in SIZES:
            payload = os.urandom(size)
            await ws.send_bytes(payload)
            msg = await asyncio.wait_for(ws.receive(), 30)
            assert msg.type == aiohttp.WSMsgType.BINARY
            assert msg.data == payload
        text = "ü" * (MiB // 2)
        await ws.send_str(text)
        assert (await ws.receive()).data == text
        await ws.close(code=4000, message=b"done")
        assert ws.close_code == 4000


@pytest.mark.parametrize("compression", ["deflate", None], ids=["deflate", "plain"])
async def test_websockets_client_echo(serve: Serve, compression: str | None) -> None:
    base = await serve(make_app())
    async with ws_connect(
        ws_url(base, f"/echo?max={32 * MiB}"), compression=compression, max_size=None
    ) as ws:
        extensions = [e.name for e in ws.protocol.extensions]
        assert extensions == (["permessage-deflate"] if compression else [])
        for size in SIZES:
            payload = os.urandom(size)
            await ws.send(payload)
            assert await asyncio.wait_for(ws.recv(), 30) == payload
        # Fragmented messages, including UTF-8 split across frames.
        await ws.send(["κό", "σμε", ""])
        assert await ws.recv() == "κόσμε"
        await ws.send([b"ab", b"cd"])
        assert await ws.recv() == b"abcd"
        # The server answers pings (autoping).
        pong = await ws.ping(b"hey")
        await asyncio.wait_for(pong, 5)
    assert ws.close_code == 1000


async def test_close_codes_both_ways(serve: Serve) -> None:
    seen: dict[str, Any] = {}

    async def server_closes(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive_str()
        await ws.close(code=4001, message=b"server says bye")
        seen["server_close_code"] = ws.close_code
        return ws

    async def client_closes(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        msg = await ws.receive()
        seen["msg"] = (msg.type, msg.data, msg.extra)
        seen["closed"] = ws.closed
        seen["close_code"] = ws.close_code
        return ws

    base = await serve(make_app(server=server_closes, client=client_closes))
    async with ws_connect(ws_url(base, "/server")) as ws:
        await ws.send("hi")
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 4001
    assert ws.close_reason == "server says bye"
    assert seen["server_close_code"] == 4001  # the client echoed it

    async with aiohttp.ClientSession() as session, session.ws_connect(base + "/client") as cws:
        await cws.close(code=3001, message=b"client leaves")
        assert cws.close_code == 3001  # the server echoed it
    for _ in range(50):
        if "msg" in seen:
            break
        await asyncio.sleep(0.02)
    assert seen["msg"] == (web.WSMsgType.CLOSE, 3001, "client leaves")
    assert seen["closed"] is True
    assert seen["close_code"] == 3001


async def test_subprotocol_negotiation(serve: Serve) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("v2.chat", "v1.chat"))
        await ws.prepare(request)
        await ws.send_str(str(ws.ws_protocol))
        await ws.close()
        return ws

    base = await serve(make_app(proto=handler))
    async with ws_connect(ws_url(base, "/proto"), subprotocols=["v1.chat", "v2.chat"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "v1.chat"
        assert await ws.recv() == "v1.chat"
    async with aiohttp.ClientSession() as session, session.ws_connect(base + "/proto") as cws:
        assert cws.protocol is None
        assert (await cws.receive()).data == "None"


async def _raw_request(base: str, data: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.close()
    return head


@pytest.mark.parametrize(
    ("request_text", "status", "needle"),
    [
        ("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", b"400", b""),
        (
            "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
            b"426",
            b"sec-websocket-version: 13",
        ),
        (
            "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
            b"400",
            b"",
        ),
        (
            "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            b"101",
            b"sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=",
        ),
    ],
    ids=["not-upgrade", "version", "key", "ok"],
)
async def test_handshake_over_the_wire(
    serve: Serve, request_text: str, status: bytes, needle: bytes
) -> None:
    base = await serve(make_app())
    head = await _raw_request(base, request_text.encode())
    assert head.split(b" ")[1] == status
    assert needle in head.lower()
    if status == b"101":
        # One Connection field, "upgrade": the socket stays open as a WebSocket.
        assert head.lower().count(b"\r\nconnection:") == 1
        assert b"\r\nconnection: upgrade\r\n" in head.lower()


async def test_method_not_allowed_for_post(serve: Serve) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        return ws

    app = web.Application()
    app.router.add_route("*", "/any", handler)
    base = await serve(app)
    async with aiohttp.ClientSession() as session, session.post(base + "/any") as resp:
        assert resp.status == 405


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (build_frame(1, b"unmasked"), 1002),
        (build_frame(1, b"\xff\xfe", mask=True), 1007),
        (build_frame(2, b"x" * 2000, mask=True), 1009),
        (build_frame(9, b"p", fin=False, mask=True), 1002),
    ],
    ids=["unmasked", "bad-utf8", "too-big", "fragmented-ping"],
)
async def test_protocol_errors_close_with_the_right_code(
    serve: Serve, frame: bytes, code: int
) -> None:
    seen: dict[str, Any] = {}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=1000)
        await ws.prepare(request)
        msg = await ws.receive()
        seen["type"] = msg.type
        seen["close_code"] = ws.close_code
        seen["exception"] = ws.exception()
        return ws

    base = await serve(make_app(strict=handler))
    client = await RawClient.connect(base, "/strict")
    assert client.head.startswith(b"HTTP/1.1 101")
    client.writer.write(frame)
    b0, payload = await client.read_frame()
    assert b0 == 0x88
    assert struct.unpack("!H", payload[:2])[0] == code
    client.writer.write(build_frame(8, struct.pack("!H", 1000), mask=True))
    assert await asyncio.wait_for(client.reader.read(), 5) == b""  # the server closes
    await client.close()
    assert seen["type"] == web.WSMsgType.ERROR
    assert seen["close_code"] == code
    assert seen["exception"] is not None


async def test_heartbeat_closes_a_silent_peer(serve: Serve) -> None:
    seen: dict[str, Any] = {}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=0.2)
        await ws.prepare(request)
        msg = await ws.receive()
        seen["type"] = msg.type
        seen["close_code"] = ws.close_code
        seen["exception"] = ws.exception()
        return ws

    base = await serve(make_app(hb=handler))
    client = await RawClient.connect(base, "/hb")
    b0, _ = await client.read_frame(timeout_s=5)
    assert b0 == 0x89  # a ping, which this client never answers
    assert await asyncio.wait_for(client.reader.read(), 5) == b""
    await client.close()
    assert seen["type"] == web.WSMsgType.ERROR
    assert seen["close_code"] == 1006
    assert isinstance(seen["exception"], asyncio.TimeoutError)


async def test_heartbeat_keeps_an_answering_peer(serve: Serve) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=0.1)
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str(msg.data)
        return ws

    base = await serve(make_app(hb=handler))
    async with ws_connect(ws_url(base, "/hb")) as ws:
        await asyncio.sleep(0.6)  # several heartbeat periods: the client answers the pings
        await ws.send("still here")
        assert await asyncio.wait_for(ws.recv(), 5) == "still here"


async def test_server_ping_without_autoping(serve: Serve) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        await ws.ping(b"are you there")
        msg = await ws.receive()
        await ws.send_str(f"{msg.type.name}:{msg.data.decode()}")
        msg = await ws.receive()  # the client's ping is delivered, not answered
        await ws.pong(msg.data)
        await ws.send_str(f"{msg.type.name}:{msg.data.decode()}")
        await ws.close()
        return ws

    base = await serve(make_app(ping=handler))
    async with aiohttp.ClientSession() as session, session.ws_connect(base + "/ping") as ws:
        assert (await ws.receive()).data == "PONG:are you there"
        await ws.ping(b"me")
        assert (await ws.receive()).data == "PING:me"


async def test_backpressure_with_a_slow_reader(serve: Serve) -> None:
    progress: dict[str, Any] = {"sent": 0, "max_buffer": 0}
    chunk = os.urandom(256 * 1024)
    total = 160  # 40 MiB

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        for _ in range(total):
            await ws.send_bytes(chunk)
            progress["sent"] += 1
            progress["max_buffer"] = max(progress["max_buffer"], transport.get_write_buffer_size())
        await ws.close()
        return ws

    base = await serve(make_app(flood=handler))
    client = await RawClient.connect(base, "/flood")
    await asyncio.sleep(1.0)  # read nothing meanwhile
    stalled_at = progress["sent"]
    assert stalled_at < total  # the handler waits in drain() instead of buffering 40 MiB
    received = 0
    while received < total:
        b0, payload = await client.read_frame(timeout_s=10)
        assert b0 == 0x82
        assert len(payload) == len(chunk)
        received += 1
    assert progress["sent"] == total
    # The buffer never held much more than the high-water mark plus one message.
    assert progress["max_buffer"] <= 2 * MiB
    await client.close()


async def test_one_task_receives_while_another_sends(serve: Serve) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)

        async def ticker() -> None:
            for i in range(200):
                await ws.send_json({"tick": i})
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        async for msg in ws:
            await ws.send_str("echo:" + msg.data)
        await task
        return ws

    base = await serve(make_app(both=handler))
    async with aiohttp.ClientSession() as session, session.ws_connect(base + "/both") as ws:
        for i in range(200):
            await ws.send_str(str(i))
        ticks, echoes = [], []
        while len(ticks) < 200 or len(echoes) < 200:
            msg = await ws.receive(timeout=10)
            if msg.data.startswith("echo:"):
                echoes.append(int(msg.data[5:]))
            else:
                ticks.append(json.loads(msg.data)["tick"])
        assert ticks == list(range(200))
        assert echoes == list(range(200))


async def test_close_from_another_task_ends_a_pending_receive(serve: Serve) -> None:
    seen: dict[str, Any] = {}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)

        async def closer() -> None:
            await asyncio.sleep(0.1)
            seen["closed_by_task"] = await ws.close(code=4002)

        task = asyncio.create_task(closer())
        msg = await ws.receive()
        seen["type"] = msg.type
        await task
        return ws

    base = await serve(make_app(closer=handler))
    async with aiohttp.ClientSession() as session, session.ws_connect(base + "/closer") as ws:
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.CLOSE
        assert msg.data == 4002
    await asyncio.sleep(0.1)
    assert seen == {"type": web.WSMsgType.CLOSING, "closed_by_task": True}


async def test_receive_helpers_and_types(serve: Serve) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        data = await ws.receive_json()
        await ws.send_json({"got": data})
        raw = await ws.receive_bytes()
        await ws.send_bytes(raw[::-1])
        try:
            await ws.receive_str()
        except TypeError as exc:
            await ws.send_str(f"TypeError: {exc}")
        with pytest.raises(TypeError):
            await ws.send_str(b"bytes")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await ws.send_bytes("str")  # type: ignore[arg-type]
        await ws.send_frame(b"frame", web.WSMsgType.TEXT)
        await ws.close()
        with pytest.raises(ConnectionResetError):
            await ws.send_str("after close")
        return ws

    base = await serve(make_app(helpers=handler))
    async with aiohttp.ClientSession() as session, session.ws_connect(base + "/helpers") as ws:
        await ws.send_json([1, 2])
        assert await ws.receive_json() == {"got": [1, 2]}
        await ws.send_bytes(b"abc")
        assert await ws.receive_bytes() == b"cba"
        await ws.send_bytes(b"not text")
        assert (await ws.receive_str()).startswith("TypeError: Received message")
        assert await ws.receive_str() == "frame"
        assert (await ws.receive()).type == aiohttp.WSMsgType.CLOSE


async def test_can_prepare_and_plain_http_fallback(serve: Serve) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=("chat",))
        ready = ws.can_prepare(request)
        if not ready:
            return web.Response(text="plain http")
        await ws.prepare(request)
        await ws.send_str(f"ws {ready.protocol}")
        await ws.close()
        return ws

    base = await serve(make_app(maybe=handler))
    async with aiohttp.ClientSession() as session:
        async with session.get(base + "/maybe") as resp:
            assert await resp.text() == "plain http"
        async with session.ws_connect(base + "/maybe", protocols=("chat",)) as ws:
            assert (await ws.receive()).data == "ws chat"


async def test_on_response_prepare_fires_for_the_handshake(serve: Serve) -> None:
    statuses: list[int] = []

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        statuses.append(response.status)
        response.headers["X-Prepared"] = "yes"

    app = make_app()
    app.on_response_prepare.append(on_prepare)
    base = await serve(app)
    async with aiohttp.ClientSession() as session, session.ws_connect(base + "/echo") as ws:
        assert ws._response.headers["X-Prepared"] == "yes"
        await ws.send_str("x")
        await ws.receive()
    assert statuses == [101]


async def test_handler_returning_closes_with_1000(serve: Serve) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("bye")
        return ws

    base = await serve(make_app(leave=handler))
    async with aiohttp.ClientSession() as session, session.ws_connect(base + "/leave") as ws:
        assert (await ws.receive()).data == "bye"
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.CLOSE
        assert msg.data == 1000


async def test_server_shutdown_sends_1001(serve: Serve) -> None:
    opened = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        opened.set()
        async for _ in ws:
            pass
        return ws

    base = await serve(make_app(stay=handler))
    runner = serve.runners[-1]  # type: ignore[attr-defined]
    async with ws_connect(ws_url(base, "/stay")) as ws:
        await asyncio.wait_for(opened.wait(), 5)
        cleanup = asyncio.create_task(runner.cleanup())
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1001
        await asyncio.wait_for(cleanup, 10)
    serve.runners.remove(runner)  # type: ignore[attr-defined]


@pytest.mark.parametrize("where", ["app", "runner"])
async def test_observers_see_open_messages_close(serve: Serve, where: str) -> None:
    events: list[tuple[str, str]] = []

    class Watch:
        def ws_opened(self, request: Any) -> None:
            events.append(("opened", request.path))

        def ws_closed(self, request: Any) -> None:
            events.append(("closed", request.path))

        def ws_message(self, request: Any, direction: str) -> None:
            events.append(("message", direction))

    app = make_app()
    if where == "app":
        set_internal_key(app, OBSERVERS_KEY, [Watch()])
        base = await serve(app)
    else:
        base = await serve(app, observers=[Watch()])
    async with aiohttp.ClientSession() as session, session.ws_connect(base + "/echo") as ws:
        await ws.send_str("a")
        await ws.receive()
    for _ in range(50):
        if ("closed", "/echo") in events:
            break
        await asyncio.sleep(0.02)
    assert events == [
        ("opened", "/echo"),
        ("message", "received"),
        ("message", "sent"),
        ("closed", "/echo"),
    ]


async def test_pipelined_messages_are_answered_in_order(serve: Serve) -> None:
    base = await serve(make_app())
    client = await RawClient.connect(base, "/echo?c=0")
    writer = FrameWriter(server=False)
    client.writer.write(b"".join(writer.message(1, str(i).encode()) for i in range(500)))
    for i in range(500):
        b0, payload = await client.read_frame()
        assert (b0, payload) == (0x81, str(i).encode())
    await client.close()


async def test_messages_before_a_violation_are_answered_before_the_close(serve: Serve) -> None:
    base = await serve(make_app())
    client = await RawClient.connect(base, "/echo?c=0")
    client.writer.write(
        build_frame(1, b"first", mask=True)
        + build_frame(2, b"second", mask=True)
        + build_frame(1, b"x", mask=True, rsv1=True)  # RSV1 without an extension
        + build_frame(1, b"never", mask=True)
    )
    assert await client.read_frame() == (0x81, b"first")
    assert await client.read_frame() == (0x82, b"second")
    b0, payload = await client.read_frame()
    assert (b0, struct.unpack("!H", payload[:2])[0]) == (0x88, 1002)
    await client.close()


async def test_close_then_eof_from_the_peer_is_still_answered(serve: Serve) -> None:
    base = await serve(make_app())
    client = await RawClient.connect(base, "/echo")
    client.writer.write(build_frame(8, struct.pack("!H", 4003), mask=True))
    client.writer.write_eof()
    b0, payload = await client.read_frame()
    assert (b0, payload) == (0x88, struct.pack("!H", 4003))
    assert await asyncio.wait_for(client.reader.read(), 5) == b""
    await client.close()


async def test_a_fast_sender_cannot_fill_server_memory(serve: Serve) -> None:
    seen: dict[str, Any] = {}
    count, size = 64, 256 * 1024  # 16 MiB sent while the handler does not read

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        await asyncio.sleep(1.0)
        seen["queued_while_busy"] = ws._ch.queued_bytes
        got = 0
        async for msg in ws:
            got += len(msg.data)
            if got == count * size:
                await ws.send_str("all received")
        return ws

    base = await serve(make_app(busy=handler))
    async with aiohttp.ClientSession() as session, session.ws_connect(base + "/busy") as ws:
        chunk = os.urandom(size)
        for _ in range(count):
            await ws.send_bytes(chunk)
        assert (await ws.receive(timeout=30)).data == "all received"
    # Reading stopped at read_buffer_high_bytes (1 MiB) plus what one read brought in.
    assert seen["queued_while_busy"] <= 2 * MiB


async def test_a_ping_flood_from_a_peer_that_does_not_read_is_bounded(serve: Serve) -> None:
    seen: dict[str, int] = {"max_buffer": 0}
    sampled = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        # Sample until the pongs have piled up for a while (the client's socket buffers fill
        # first, later on a loaded machine), bounded at 30 s.
        after_first = 0
        for _ in range(1200):
            await asyncio.sleep(0.025)
            size = transport.get_write_buffer_size()
            seen["max_buffer"] = max(seen["max_buffer"], size)
            if seen["max_buffer"]:
                after_first += 1
                if after_first >= 40:
                    break
        sampled.set()
        return ws

    base = await serve(make_app(quiet=handler))
    client = await RawClient.connect(base, "/quiet")
    ping = build_frame(9, b"p" * 125, mask=True)
    sender = asyncio.create_task(_send_pings(client, ping, 2_000_000))  # 260 MB of pongs due
    await asyncio.wait_for(sampled.wait(), 40)
    sender.cancel()
    client.writer.transport.abort()  # its unsent pings would never drain
    # Answering pings stops reading once the pongs pile up: the buffer stays near its limit.
    assert 0 < seen["max_buffer"] <= 2 * MiB


async def _send_pings(client: RawClient, ping: bytes, count: int) -> None:
    for _ in range(count // 1000):
        client.writer.write(ping * 1000)
        await client.writer.drain()


async def test_sends_are_coroutines_for_tasks_and_gather(serve: Serve) -> None:
    # send_str/send_bytes return the compiled channel's coroutines: tasks and gather take them,
    # and a bad argument raises when awaited, as aiohttp's ``async def`` does.
    seen: dict[str, Any] = {}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        bad = ws.send_str(b"not text")  # type: ignore[arg-type]
        seen["iscoroutine"] = asyncio.iscoroutine(bad)
        try:
            await bad
        except TypeError as exc:
            seen["error"] = str(exc)
        await asyncio.gather(ws.send_str("one"), ws.send_bytes(bytearray(b"two")))
        await asyncio.get_running_loop().create_task(ws.send_str("three"))
        async for msg in ws:
            await asyncio.ensure_future(ws.send_str(msg.data.upper()))
        return ws

    base = await serve(make_app(coros=handler))
    async with aiohttp.ClientSession() as session, session.ws_connect(base + "/coros") as ws:
        got = [await asyncio.wait_for(ws.receive(), 10) for _ in range(3)]
        assert [m.data for m in got] == ["one", b"two", "three"]
        await ws.send_str("four")
        assert (await asyncio.wait_for(ws.receive(), 10)).data == "FOUR"
        await ws.close()
    assert seen == {
        "iscoroutine": True,
        "error": "data argument must be str (<class 'bytes'>)",
    }


async def test_a_subclass_anext_is_what_async_for_runs(serve: Serve) -> None:
    # ``async for`` steps the compiled channel directly unless a subclass has its own
    # __anext__: then that one runs, once per message.
    class Upper(web.WebSocketResponse):
        async def __anext__(self) -> web.WSMessage:
            msg = await super().__anext__()
            return web.WSMessage(msg.type, msg.data.upper(), msg.extra)

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = Upper() if request.query.get("sub") else web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str(msg.data)
        return ws

    base = await serve(make_app(sub=handler))
    async with aiohttp.ClientSession() as session:
        for query, expected in (("?sub=1", "ABC"), ("", "abc")):
            async with session.ws_connect(base + "/sub" + query) as ws:
                await ws.send_str("abc")
                assert (await asyncio.wait_for(ws.receive(), 10)).data == expected
                await ws.close()


async def test_a_subclass_overriding_send_keeps_its_own(serve: Serve) -> None:
    """``send_str``/``send_bytes`` are bound to the compiled channel per response only for a
    class that keeps ours: an override (calling ``super()``) still runs, for every message."""
    calls: list[str] = []

    class Tagged(web.WebSocketResponse):
        async def send_str(self, data: str, compress: int | bool | None = None) -> None:
            calls.append(data)
            await super().send_str(f"tagged {data}", compress)

    async def tagged(request: web.Request) -> web.WebSocketResponse:
        ws = Tagged()
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str(msg.data)
            await ws.send_bytes(msg.data.encode())
        return ws

    base = await serve(make_app(tagged=tagged))
    async with aiohttp.ClientSession() as session, session.ws_connect(base + "/tagged") as ws:
        for text in ("a", "b"):
            await ws.send_str(text)
            assert (await ws.receive()).data == f"tagged {text}"
            assert (await ws.receive()).data == text.encode()
        async with session.ws_connect(base + "/echo") as plain:
            await plain.send_str("plain")
            assert (await plain.receive()).data == "plain"
    assert calls == ["a", "b"]

"""The web API together with the other core pieces: static files and WebSockets."""

from __future__ import annotations

import asyncio
from pathlib import Path

from forkloop import web


async def test_add_static_and_static_route_def(aiohttp_client, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("static!")
    app = web.Application()
    app.router.add_static("/static/", tmp_path, name="static")
    routes = web.RouteTableDef()
    routes.static("/files", tmp_path)
    app.add_routes(routes)
    client = await aiohttp_client(app)
    for path in ("/static/a.txt", "/files/a.txt"):
        resp = await client.get(path)
        assert resp.status == 200
        assert await resp.text() == "static!"
    assert str(app.router["static"].url_for(filename="a.txt")) == "/static/a.txt"
    assert (await client.get("/static/missing.txt")).status == 404


async def test_ws_connect_awaited_or_as_context_manager(aiohttp_client) -> None:
    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str(f"echo {msg.data}")
        return ws

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    client = await aiohttp_client(app)
    async with client.ws_connect("/ws") as ws:
        await ws.send_str("hi")
        assert (await ws.receive()).data == "echo hi"
    ws2 = await client.ws_connect("/ws")
    await ws2.send_str("again")
    assert (await ws2.receive()).data == "echo again"
    await client.close()  # closes the WebSocket it still tracks
    assert ws2.closed


async def test_on_response_prepare_fires_for_the_websocket_handshake(aiohttp_server) -> None:
    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.close()
        return ws

    async def mark(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Prepared"] = type(response).__name__

    app = web.Application()
    app.on_response_prepare.append(mark)
    app.router.add_get("/ws", ws_handler)
    server = await aiohttp_server(app)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"\r\nX-Prepared: WebSocketResponse\r\n" in head

"""Differential tests of ``WebSocketResponse`` (issue 16, group 7): the same handler built
from ``aiohttp.web`` and ``forkloop.web``, driven by aiohttp's client, must behave the same."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp import web as aio_web

from forkloop import web as fl_web

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@contextlib.asynccontextmanager
async def served(web: ModuleType, handler: Any) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


async def decode_text_scenario(web: ModuleType, decode_text: bool | None) -> list[Any]:
    seen: list[Any] = []

    async def handler(request: Any) -> Any:
        kwargs = {} if decode_text is None else {"decode_text": decode_text}
        ws = web.WebSocketResponse(**kwargs)
        await ws.prepare(request)
        msg = await ws.receive()
        seen.append((msg.type == aiohttp.WSMsgType.TEXT, type(msg.data).__name__, msg.data))
        seen.append(("receive_str", await ws.receive_str()))
        seen.append(("receive_json", await ws.receive_json()))
        async for msg in ws:
            seen.append(("iterated", type(msg.data).__name__, msg.data))
            break
        await ws.send_str("done")
        await ws.close()
        return ws

    async with (
        served(web, handler) as url,
        aiohttp.ClientSession() as session,
        session.ws_connect(url) as client,
    ):
        for text in ("héllo", "wörld", '{"k": "ü"}', "last"):
            await client.send_str(text)
        seen.append(("client got", await client.receive_str(timeout=5)))
    return seen


@pytest.mark.parametrize("decode_text", [None, True, False])
async def test_decode_text_like_aiohttp(decode_text: bool | None) -> None:
    expected = await decode_text_scenario(aio_web, decode_text)
    got = await decode_text_scenario(fl_web, decode_text)
    assert expected[0][1] == ("bytes" if decode_text is False else "str")
    assert got == expected


async def status_scenario(web: ModuleType) -> list[Any]:
    async def handler(request: Any) -> Any:
        ws = web.WebSocketResponse()
        ws.set_status(200)  # before prepare(): the handshake still answers 101
        await ws.prepare(request)
        await ws.send_str(f"status {ws.status}")
        await ws.close()
        return ws

    async with served(web, handler) as url, aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(url) as client:
                return [client._response.status, await client.receive_str(timeout=5)]
        except aiohttp.WSServerHandshakeError as exc:
            return ["handshake refused", exc.status]


async def test_set_status_before_prepare_like_aiohttp() -> None:
    expected = await status_scenario(aio_web)
    got = await status_scenario(fl_web)
    assert expected == [101, "status 101"]
    assert got == expected


async def heartbeat_scenario(web: ModuleType) -> list[Any]:
    """heartbeat=1: a client that talks once, then answers no ping. The ping comes one period
    after the client's last data, and the server gives up half a period after the ping."""
    heartbeat = 1.0
    seen: list[Any] = []
    done = asyncio.Event()

    async def handler(request: Any) -> Any:
        ws = web.WebSocketResponse(heartbeat=heartbeat)
        await ws.prepare(request)
        try:
            async for _ in ws:
                pass
        finally:
            seen.append(("server", str(ws.exception()), ws.close_code, ws.closed))
            done.set()
        return ws

    loop = asyncio.get_running_loop()
    async with (
        served(web, handler) as url,
        aiohttp.ClientSession() as session,
        session.ws_connect(url, autoping=False) as client,
    ):
        await asyncio.sleep(0.2)
        await client.send_str("hello")  # the last data the server gets
        sent_at = loop.time()
        msg = await client.receive(timeout=5)
        ping_after = loop.time() - sent_at
        seen.append(("client got", msg.type.name))
        # One period after the last data, give or take scheduling on a busy machine; a
        # server that ignores that data pings only at the end of the next period (~1.8 s).
        seen.append(("ping one period after the last data", 0.8 < ping_after < 1.5))
        await asyncio.wait_for(done.wait(), 5)
    return seen


async def test_heartbeat_like_aiohttp() -> None:
    expected = await heartbeat_scenario(aio_web)
    got = await heartbeat_scenario(fl_web)
    assert expected[:2] == [("client got", "PING"), ("ping one period after the last data", True)]
    assert expected[2] == ("server", "No PONG received after 0.5 seconds", 1006, True)
    assert got == expected


async def msg_type_scenario(web: ModuleType) -> list[Any]:
    seen: list[Any] = []

    async def handler(request: Any) -> Any:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        msg = await ws.receive()
        t = msg.type
        match t:
            case aiohttp.WSMsgType.TEXT:
                matched = "TEXT"
            case _:
                matched = "other"
        seen.append(
            (
                t is web.WSMsgType.TEXT,  # the enum of the module the app uses
                t == aiohttp.WSMsgType.TEXT,  # aiohttp's enum: equality, hash, match, in
                {aiohttp.WSMsgType.TEXT: "by key"}.get(t),
                t in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY),
                matched,
                int(t),
                t.name,
            )
        )
        await ws.close()
        return ws

    async with (
        served(web, handler) as url,
        aiohttp.ClientSession() as session,
        session.ws_connect(url) as client,
    ):
        await client.send_str("x")
        await client.receive(timeout=5)
    return seen


async def test_message_types_compare_like_aiohttp() -> None:
    expected = await msg_type_scenario(aio_web)
    got = await msg_type_scenario(fl_web)
    assert expected == [(True, True, "by key", True, "TEXT", 1, "TEXT")]
    assert got == expected

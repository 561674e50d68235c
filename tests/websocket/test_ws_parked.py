"""A WebSocket handler waiting for a message is *parked*: the message steps it right inside
the connection's data callback (``HttpProtocol.wake_waiter``), as a step of its own task, and
the task sleeps on. Every way out of parking must behave as the task would: a timeout, a
cancellation, a wait on something else, a return, an exception. Real sockets, aiohttp's client.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

import aiohttp
import pytest
from ws_helpers import Serve

from forkloop import web

MESSAGES = 50
var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


def app_with(**routes: Any) -> web.Application:
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get("/" + path, handler)
    return app


async def echo_numbers(url: str, count: int) -> None:
    """Send 0..count-1 one at a time over a WebSocket at ``url``; each must come back."""
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        for i in range(count):
            await ws.send_str(str(i))
            assert (await ws.receive(timeout=5)).data == str(i)


async def _messages(ws: web.WebSocketResponse, how: str) -> Any:
    if how == "async for":
        async for msg in ws:
            yield msg
        return
    while True:
        msg = await ws.receive()
        if msg.type != web.WSMsgType.TEXT:
            return
        yield msg


@pytest.mark.parametrize("how", ["async for", "receive()"])
async def test_a_parked_handler_is_stepped_in_place_as_its_task(serve: Serve, how: str) -> None:
    """Each message is answered by a step of the connection task taken inside the data
    callback: the task itself stays asleep on the same future all along (it fails if every
    message wakes the task), and the step sees what the earlier steps set in the request's
    context, as under the task."""
    seen: list[tuple[Any, Any, str]] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        task = asyncio.current_task()
        assert task is not None
        async for msg in _messages(ws, how):
            seen.append((asyncio.current_task(), task._fut_waiter, var.get()))  # type: ignore[attr-defined]
            var.set(msg.data)
            await ws.send_str(msg.data)
        return ws

    base = await serve(app_with(echo=handler))
    await echo_numbers(base + "/echo", MESSAGES)
    tasks = {id(task) for task, _, _ in seen}
    parks = {id(park) for _, park, _ in seen}
    assert len(tasks) == 1  # every step ran as the connection's task
    assert None not in {park for _, park, _ in seen}  # ... while that task was asleep
    assert len(parks) == 1  # on one future: no message woke it
    assert [value for _, _, value in seen] == ["unset"] + [str(i) for i in range(MESSAGES - 1)]


async def test_a_timeout_reaches_a_parked_handler(serve: Serve) -> None:
    """``asyncio.timeout()`` and ``receive(timeout=...)`` cancel the task, which sleeps on
    the protocol's future: the handler gets the cancellation (as TimeoutError) and goes on."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        while True:
            try:
                async with asyncio.timeout(0.1):
                    msg = await ws.receive()
            except TimeoutError:
                await ws.send_str("timeout")
                try:
                    msg = await ws.receive(timeout=0.1)
                except TimeoutError:
                    await ws.send_str("timeout again")
                    continue
            if msg.type != web.WSMsgType.TEXT:
                break
            await ws.send_str("got " + msg.data)
        return ws

    base = await serve(app_with(slow=handler))
    async with aiohttp.ClientSession() as session, session.ws_connect(base + "/slow") as ws:
        assert (await ws.receive(timeout=5)).data == "timeout"
        assert (await ws.receive(timeout=5)).data == "timeout again"
        for i in range(5):
            await ws.send_str(str(i))
            assert (await ws.receive(timeout=5)).data == f"got {i}"
        assert (await ws.receive(timeout=5)).data == "timeout"


async def test_waits_on_other_things_between_messages(serve: Serve) -> None:
    """A step that ends waiting on something else (a bare yield, a timer, another task) goes
    to the task, which drives the handler until it waits for a message again."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            n = int(msg.data)
            if n % 3 == 0:
                await asyncio.sleep(0)
            elif n % 3 == 1:
                await asyncio.sleep(0.001)
            else:
                await asyncio.create_task(asyncio.sleep(0))
            await ws.send_str(msg.data)
        return ws

    base = await serve(app_with(wait=handler))
    await echo_numbers(base + "/wait", 30)


async def test_a_receive_in_another_task_is_not_parked(serve: Serve) -> None:
    """The handler waits on a task that receives: the message wakes that task the usual
    way (only the connection's own handler parks)."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        while True:
            msg = await asyncio.create_task(ws.receive())
            if msg.type != web.WSMsgType.TEXT:
                break
            await ws.send_str(msg.data)
        return ws

    base = await serve(app_with(child=handler))
    await echo_numbers(base + "/child", 20)


@pytest.mark.parametrize("how", ["return", "raise"])
async def test_a_step_that_ends_the_handler(
    serve: Serve, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The step a message takes returns (the socket closes with 1000) or raises (the error
    is logged and the connection ends); the server serves the next connection."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.data == "end":
                if how == "raise":
                    raise RuntimeError("handler failed on purpose")
                return ws
            await ws.send_str(msg.data)
        return ws

    base = await serve(app_with(end=handler))
    caplog.set_level(logging.ERROR)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(base + "/end") as ws:
            await ws.send_str("a")
            assert (await ws.receive(timeout=5)).data == "a"
            await ws.send_str("end")
            msg = await ws.receive(timeout=5)
            if how == "return":
                assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 1000)
            else:
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        if how == "raise":
            for _ in range(50):
                if "handler failed on purpose" in caplog.text:
                    break
                await asyncio.sleep(0.02)
            assert "handler failed on purpose" in caplog.text
        async with session.ws_connect(base + "/end") as ws:
            await ws.send_str("again")
            assert (await ws.receive(timeout=5)).data == "again"


async def test_connections_keep_their_own_context(serve: Serve) -> None:
    """Two sockets interleaved: each handler's steps see only what its own steps set."""
    mixed: list[str] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        name = request.query["name"]
        async for msg in ws:
            if var.get() not in ("unset", name):
                mixed.append(f"{name} saw {var.get()}")
            var.set(name)
            await ws.send_str(f"{name}:{msg.data}")
        return ws

    base = await serve(app_with(ctx=handler))
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(base + "/ctx?name=a") as a,
        session.ws_connect(base + "/ctx?name=b") as b,
    ):
        for i in range(20):
            await a.send_str(str(i))
            await b.send_str(str(i))
            assert (await a.receive(timeout=5)).data == f"a:{i}"
            assert (await b.receive(timeout=5)).data == f"b:{i}"
    assert mixed == []


async def test_a_cancellation_reaches_a_parked_handler(serve: Serve) -> None:
    """Cancelling the connection task while its handler is parked (what the server's abort
    or a disconnect with ``handler_cancellation`` does) raises CancelledError at the
    handler's receive, as under a task; the socket then ends."""
    seen: list[str] = []
    tasks: list[asyncio.Task[Any]] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        msg = await ws.receive()
        await ws.send_str(msg.data)
        try:
            await ws.receive()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        seen.append("not cancelled")
        return ws

    base = await serve(app_with(cancel=handler))
    async with aiohttp.ClientSession() as session, session.ws_connect(base + "/cancel") as ws:
        await ws.send_str("x")
        assert (await ws.receive(timeout=5)).data == "x"
        await asyncio.sleep(0.05)  # the handler sleeps in its second receive()
        assert tasks[0]._fut_waiter is not None  # type: ignore[attr-defined]
        tasks[0].cancel()
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert seen == ["cancelled"]


async def test_a_shutdown_ends_a_parked_handler(serve: Serve) -> None:
    """The runner's cleanup (1001, then abort at the shutdown timeout) ends a handler that
    ignores the close and keeps receiving; its ``finally`` runs and cleanup returns."""
    ran: list[str] = []
    opened = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoclose=False)
        await ws.prepare(request)
        opened.set()
        try:
            while True:
                await ws.receive()
        finally:
            ran.append("finally")

    base = await serve(app_with(stuck=handler), shutdown_timeout=0.5)
    runner = serve.runners[-1]  # type: ignore[attr-defined]
    session = aiohttp.ClientSession()
    try:
        ws = await session.ws_connect(base + "/stuck", autoclose=False)
        await asyncio.wait_for(opened.wait(), 5)
        await ws.send_str("x")
        await asyncio.wait_for(runner.cleanup(), 10)
        serve.runners.remove(runner)  # type: ignore[attr-defined]
        assert ran == ["finally"]
    finally:
        await session.close()

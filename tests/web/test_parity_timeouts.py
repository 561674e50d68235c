"""Differential test of the connection timers and the shutdown bound (issue 16, group 11).

The same application is served by ``aiohttp.web`` and ``forkloop.web`` on real sockets:

- ``keepalive_timeout`` bounds the wait for a new connection's first request, as it bounds
  the wait between keep-alive requests (aiohttp arms its keep-alive timer when the connection
  is made): a client that connects and sends nothing is disconnected after it;
- a handler that swallows every cancellation does not hold up ``runner.cleanup()`` beyond the
  shutdown timeout's stages: the runner returns while the handler still runs, and the client
  gets no answer.
"""

from __future__ import annotations

import asyncio
import time
from types import ModuleType
from typing import Any

from aiohttp import web as aio_web
from parity_server import serving

from forkloop import web as fl_web


async def closed_within(reader: asyncio.StreamReader, wait_s: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), wait_s) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def silent_client(web: ModuleType) -> tuple[bool, bool, bool]:
    """Connect, send nothing: (open after 0.1 s, closed by 5 s, a second connection that sent
    a request then idled closed by 5 s too)."""
    app = web.Application()

    async def hello(request: Any) -> Any:
        return web.Response(text="hi")

    app.router.add_get("/", hello)
    async with serving(web, app, access_log=None, keepalive_timeout=0.5) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            still_open = not await closed_within(reader, 0.1)
            idle_writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            await idle_reader.readuntil(b"hi")
            closed = await closed_within(reader, 5)
            idle_closed = await closed_within(idle_reader, 5)
        finally:
            writer.close()
            idle_writer.close()
    return still_open, closed, idle_closed


async def test_keepalive_timeout_bounds_the_wait_for_the_first_request() -> None:
    expected = await silent_client(aio_web)
    got = await silent_client(fl_web)
    assert expected == (True, True, True)
    assert got == expected


async def stubborn_shutdown(web: ModuleType) -> list[str]:
    events: list[str] = []
    started = asyncio.Event()

    async def stubborn(request: Any) -> Any:
        started.set()
        end = time.monotonic() + 4
        while time.monotonic() < end:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                if not events:
                    events.append("cancellation swallowed")
        events.append("handler ended")
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/", stubborn)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.3)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", runner.addresses[0][1])
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await asyncio.wait_for(started.wait(), 5)
        await asyncio.wait_for(runner.cleanup(), 10)
        events.append("runner cleaned up")
        answer = await asyncio.wait_for(reader.read(), 10)
        events.append(f"client got {answer!r}")
    finally:
        writer.close()
    await asyncio.sleep(4.2)  # let the stubborn handler end before the loop does
    return events


async def test_shutdown_does_not_wait_for_a_handler_that_swallows_cancellation() -> None:
    expected, got = await asyncio.gather(stubborn_shutdown(aio_web), stubborn_shutdown(fl_web))
    assert expected == [
        "cancellation swallowed",
        "runner cleaned up",
        "client got b''",
        "handler ended",
    ]
    assert got == expected

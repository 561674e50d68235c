"""Differential tests of runners and sites (issue 16, group 11): the same lifecycle driven
through ``aiohttp.web`` and ``forkloop.web`` must behave the same way."""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp import web as aio_web

from forkloop import web as fl_web

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


async def site_lifecycle(web: ModuleType) -> list[Any]:
    async def hello(request: Any) -> Any:
        return web.Response(text="hi")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    out: list[Any] = []
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        out.append(("port before start", site.port, site.name))
        try:
            await site.stop()
            out.append(("stop before start", "returned"))
        except RuntimeError:
            out.append(("stop before start", "RuntimeError"))
        await site.start()
        port = site.port
        out.append(("port is bound", port == runner.addresses[0][1], port > 0))
        out.append(("name", site.name == f"http://127.0.0.1:{port}"))
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/") as resp,
        ):
            out.append(("served", resp.status, await resp.text()))
        await site.stop()
        out.append(("port after stop", site.port == port, len(runner.sites)))
        try:
            await site.stop()
            out.append(("second stop", "returned"))
        except RuntimeError:
            out.append(("second stop", "RuntimeError"))
        default = web.TCPSite(runner)
        out.append(("default port", default.port))
    finally:
        await runner.cleanup()
    return out


async def test_sites_like_aiohttp() -> None:
    expected = await site_lifecycle(aio_web)
    got = await site_lifecycle(fl_web)
    assert ("stop before start", "RuntimeError") in expected
    assert got == expected


async def shutdown_with_stubborn_handler(web: ModuleType, *, reads_body: bool) -> list[Any]:
    """A handler still running at ``shutdown_timeout`` gets a CancelledError (from its body
    read in aiohttp, from its task being cancelled in forkloop), catches it, finishes its work
    and answers. With ``reads_body`` (the case aiohttp and forkloop share) it waits for a body
    that never comes."""
    events: list[str] = []
    started = asyncio.Event()

    async def stubborn(request: Any) -> Any:
        started.set()
        try:
            if reads_body:
                await request.read()
            else:
                await asyncio.sleep(30)
        except asyncio.CancelledError:
            events.append("handler cancelled")
            await asyncio.sleep(0.1)  # cleanup work that must not be cut off
            events.append("handler finished")
        return web.Response(text="late answer")

    async def on_cleanup(app: Any) -> None:
        events.append("app cleanup")

    app = web.Application()
    app.router.add_post("/", stubborn)
    app.on_cleanup.append(on_cleanup)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        # Half a body: the handler's read waits for the rest.
        writer.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nhalf")
        await writer.drain()
        await asyncio.wait_for(started.wait(), 5)
        await asyncio.wait_for(runner.cleanup(), 10)
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    status = answer.split(b"\r\n", 1)[0]
    events.append(f"client got {status!r} {answer.endswith(b'late answer')}")
    return events


async def test_graceful_shutdown_waits_for_a_handler_that_suppresses_cancellation() -> None:
    expected = await shutdown_with_stubborn_handler(aio_web, reads_body=True)
    got = await shutdown_with_stubborn_handler(fl_web, reads_body=True)
    assert expected == [
        "handler cancelled",
        "handler finished",
        "app cleanup",
        "client got b'HTTP/1.1 200 OK' True",
    ]
    assert got == expected


async def test_a_cancelled_handler_is_waited_for_before_app_cleanup() -> None:
    # forkloop cancels a handler still running at shutdown_timeout and waits for it (up to
    # shutdown_timeout again); aiohttp would leave it running for a second timeout, then cancel
    # it and not wait (docs/migrating-from-aiohttp.md).
    got = await shutdown_with_stubborn_handler(fl_web, reads_body=False)
    assert got[:3] == ["handler cancelled", "handler finished", "app cleanup"]

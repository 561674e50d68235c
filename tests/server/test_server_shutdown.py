"""Staged graceful shutdown through ``runner.cleanup()``: stop accepting, close idle keep-alive
connections, let requests in flight finish with ``Connection: close``, cancel what is still
running at ``shutdown_timeout``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from rawhttp import RawClient, request_bytes, serving

from forkloop.core.web.response import Response


async def _wait_for(predicate: Any, timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.01)


async def test_graceful_shutdown_in_stages() -> None:
    in_flight = asyncio.Event()
    release = asyncio.Event()
    finished: list[str] = []

    async def handler(request: Any) -> Response:
        if request.path == "/slow":
            in_flight.set()
            await release.wait()
        finished.append(request.path)
        return Response(text=f"done {request.path}")

    async with serving(handler, shutdown_timeout=10) as served:
        # An idle keep-alive connection (it completed a request).
        idle = await served.client()
        await idle.send(request_bytes("/quick"))
        assert (await idle.response()).status == 200
        # A request in flight.
        busy = await served.client()
        await busy.send(request_bytes("/slow"))
        await asyncio.wait_for(in_flight.wait(), 5)

        cleanup = asyncio.create_task(served.runner.cleanup())
        # Idle keep-alive connections are closed.
        assert await idle.read_until_closed(timeout_s=5) == b""
        # New connections are refused.
        await _wait_for(lambda: not served.runner.sites)
        with pytest.raises(OSError):  # noqa: PT011 - ConnectionRefusedError on Linux
            await RawClient.connect(served.host, served.port)
        assert not cleanup.done()  # still waiting for the request in flight
        # The request in flight completes with 200 and Connection: close.
        release.set()
        response = await busy.response()
        assert response.status == 200
        assert response.text() == "done /slow"
        assert response.closes
        assert await busy.read_until_closed(timeout_s=5) == b""
        await asyncio.wait_for(cleanup, 10)
    assert finished == ["/quick", "/slow"]


async def test_pipelined_requests_not_started_after_shutdown_begins() -> None:
    in_flight = asyncio.Event()
    release = asyncio.Event()
    seen: list[str] = []

    async def handler(request: Any) -> Response:
        seen.append(request.path)
        if request.path == "/slow":
            in_flight.set()
            await release.wait()
        return Response(text=request.path)

    async with serving(handler, shutdown_timeout=10) as served:
        client = await served.client()
        await client.send(request_bytes("/slow") + request_bytes("/queued"))
        await asyncio.wait_for(in_flight.wait(), 5)
        cleanup = asyncio.create_task(served.runner.cleanup())
        await asyncio.sleep(0.1)
        release.set()
        response = await client.response()
        assert response.status == 200
        assert response.closes
        assert await client.read_until_closed() == b""
        await asyncio.wait_for(cleanup, 10)
    assert seen == ["/slow"]


async def test_shutdown_timeout_cancels_stuck_handlers() -> None:
    started = asyncio.Event()
    outcome: list[str] = []

    async def handler(request: Any) -> Response:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        return Response(text="never")

    async with serving(handler, shutdown_timeout=0.5) as served:
        client = await served.client()
        await client.send(request_bytes("/stuck"))
        await asyncio.wait_for(started.wait(), 5)
        loop = asyncio.get_running_loop()
        begin = loop.time()
        await asyncio.wait_for(served.runner.cleanup(), 10)
        elapsed = loop.time() - begin
        assert 0.4 <= elapsed < 5, elapsed
        await _wait_for(lambda: outcome == ["cancelled"])
        # The stuck request got no response; its connection is gone.
        data = await client.read_until_closed(timeout_s=5)
        assert b"HTTP/1.1 200" not in data
        assert len(served.server.connections) == 0


async def test_cleanup_with_no_connections_is_quick() -> None:
    async def handler(request: Any) -> Response:
        return Response()

    async with serving(handler, shutdown_timeout=30) as served:
        loop = asyncio.get_running_loop()
        begin = loop.time()
        await served.runner.cleanup()
        assert loop.time() - begin < 5
        assert served.runner.server is None
        with pytest.raises(OSError):  # noqa: PT011
            await RawClient.connect(served.host, served.port)


async def test_server_shutdown_directly() -> None:
    # The low-level Server's own staged shutdown (what runners call).
    release = asyncio.Event()
    started = asyncio.Event()

    async def handler(request: Any) -> Response:
        started.set()
        await release.wait()
        return Response(text="finished")

    async with serving(handler) as served:
        idle = await served.client()
        await idle.send(request_bytes("/"))
        release.set()
        await idle.response()
        release.clear()
        started.clear()
        busy = await served.client()
        await busy.send(request_bytes("/"))
        await asyncio.wait_for(started.wait(), 5)
        served.server.pre_shutdown()
        assert await idle.read_until_closed(timeout_s=5) == b""
        shutdown = asyncio.create_task(served.server.shutdown(5))
        await asyncio.sleep(0.05)
        release.set()
        response = await busy.response()
        assert response.text() == "finished"
        assert response.closes
        await asyncio.wait_for(shutdown, 10)
        assert len(served.server.connections) == 0

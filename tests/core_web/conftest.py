"""Fixtures of the Request/Response API tests: the same handler served by forkloop's low-level
``Server`` and, for differential checks, by aiohttp's (our API is aiohttp's)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))

from rawhttp import RawClient, RawResponse, Served, serving


@asynccontextmanager
async def aiohttp_serving(handler: Any) -> AsyncIterator[Served]:
    """The same handler on aiohttp's low-level server (a reference, never a dependency)."""
    from aiohttp import web

    runner = web.ServerRunner(web.Server(handler), shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    served = Served(host, port, None, runner)  # type: ignore[arg-type]
    try:
        yield served
    finally:
        for client in served.clients:
            await client.close()
        await runner.cleanup()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    """``await serve(handler, **Server kwargs)`` -> Served, on forkloop."""
    async with AsyncExitStack() as stack:

        async def start(handler: Any, **kwargs: Any) -> Served:
            return await stack.enter_async_context(serving(handler, **kwargs))

        yield start


@pytest.fixture
async def both() -> AsyncIterator[Callable[..., Any]]:
    """``await both(handler, raw_request)`` -> (forkloop response, aiohttp response)."""
    async with AsyncExitStack() as stack:

        async def run(handler: Any, data: bytes, method: str = "GET") -> tuple[RawResponse, ...]:
            results = []
            for factory in (serving, aiohttp_serving):
                served = await stack.enter_async_context(factory(handler))
                client = await RawClient.connect(served.host, served.port)
                served.clients.append(client)
                await client.send(data)
                results.append(await client.response(method))
            return tuple(results)

        yield run

"""One application served on a real socket, for the differential tests that build the same app
from ``aiohttp.web`` and from ``forkloop.web`` and talk to it with raw sockets or a client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any


@asynccontextmanager
async def serving(web: ModuleType, app: Any, **runner_kwargs: Any) -> AsyncIterator[int]:
    """``app`` run by ``web``'s ``AppRunner`` on a free loopback port; yields the port."""
    runner = web.AppRunner(app, **runner_kwargs)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()

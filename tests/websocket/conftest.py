"""Fixtures of the WebSocket tests: a forkloop server on loopback running a given app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ws_helpers import Serve

from forkloop import web


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``await serve(app)`` starts the app on 127.0.0.1 and returns its ``http://`` base URL."""
    runners: list[Any] = []

    async def start(app: Any, **kwargs: Any) -> str:
        runner = web.AppRunner(app, access_log=None, **kwargs)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, shutdown_timeout=5.0)
        await site.start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    start.runners = runners  # type: ignore[attr-defined]
    yield start
    for runner in reversed(runners):
        await asyncio.wait_for(runner.cleanup(), 15)

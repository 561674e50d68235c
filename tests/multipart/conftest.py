"""Fixtures for request-body tests (helpers live in mp_helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from mp_helpers import Serve

from forkloop import web


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``base_url = await serve(app)``: run ``app`` on 127.0.0.1 (random port) for the test."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()

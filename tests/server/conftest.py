"""Fixtures of the raw-socket server tests: a low-level ``Server`` on 127.0.0.1 port 0, and a
handler that records which requests it was called for."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from rawhttp import Served, serving

from forkloop.core.web.response import Response


class Recorder:
    """A handler that reads the whole body, records the path, and answers with it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, request: Any) -> Response:
        self.calls.append(request.path)
        body = await request.read()
        return Response(text=f"{request.method} {request.path} {len(body)}")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


ServeFactory = Callable[..., Any]


@pytest.fixture
async def serve() -> AsyncIterator[ServeFactory]:
    """``await serve(handler, **Server kwargs)`` -> Served(host, port, server, runner).

    ``shutdown_timeout=`` goes to the runner. Every server started is cleaned up at the end.
    """
    async with AsyncExitStack() as stack:

        async def start(handler: Any, **kwargs: Any) -> Served:
            return await stack.enter_async_context(serving(handler, **kwargs))

        yield start


@pytest.hookimpl(optionalhook=True)  # the hook exists from pytest-asyncio 1.4 on
def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """Every async server test runs on the standard loop and on uvloop (the engine's default)."""
    import uvloop

    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}

"""pytest fixtures with aiohttp's names, serving forkloop apps: an aiohttp project's tests
run unchanged after ``from aiohttp import web`` -> ``from forkloop import web``.

Registered as the ``forkloop`` ``pytest11`` entry point. The fixtures are async (pytest-asyncio,
any mode): ``aiohttp_client``, ``aiohttp_server``, ``aiohttp_raw_server``, and the plain
``aiohttp_unused_port``. Everything they start is closed when the test ends.

aiohttp (the client) and pytest-asyncio are imported only when a fixture is used, so having
forkloop installed never breaks a pytest run that does not use them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .core.web.app import Application
    from .test_utils import BaseTestServer, RawTestServer, TestClient, TestServer

try:
    import pytest_asyncio

    _async_fixture: Callable[..., Any] = pytest_asyncio.fixture
except ImportError:  # pragma: no cover - without pytest-asyncio the async fixtures can't run
    _async_fixture = pytest.fixture

__all__ = ["aiohttp_client", "aiohttp_raw_server", "aiohttp_server", "aiohttp_unused_port"]

AiohttpClient = Callable[..., Awaitable["TestClient"]]
AiohttpServer = Callable[..., Awaitable["TestServer"]]
AiohttpRawServer = Callable[..., Awaitable["RawTestServer"]]


@pytest.fixture
def aiohttp_unused_port() -> Callable[[], int]:
    """A function returning a free TCP port on 127.0.0.1."""
    from .test_utils import unused_port

    return unused_port


async def _started(
    make: Callable[..., BaseTestServer],
) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """A ``go(target, *, port=None, **kwargs)`` that starts ``make(target, port=port)`` servers,
    all closed when the test ends."""
    servers: list[BaseTestServer] = []

    async def go(target: Any, *, port: int | None = None, **kwargs: Any) -> Any:
        server = make(target, port=port)
        await server.start_server(**kwargs)
        servers.append(server)
        return server

    yield go
    while servers:
        await servers.pop().close()


@_async_fixture
async def aiohttp_server() -> AsyncIterator[AiohttpServer]:
    """``server = await aiohttp_server(app, port=None, **runner_kwargs)``: a started server."""
    from .test_utils import TestServer

    async for go in _started(TestServer):
        yield go


@_async_fixture
async def aiohttp_raw_server() -> AsyncIterator[AiohttpRawServer]:
    """``server = await aiohttp_raw_server(handler, port=None)``: a low-level handler served."""
    from .test_utils import RawTestServer

    async for go in _started(RawTestServer):
        yield go


@_async_fixture
async def aiohttp_client() -> AsyncIterator[AiohttpClient]:
    """``client = await aiohttp_client(app_or_server, server_kwargs=None, **session_kwargs)``.

    Accepts an ``Application`` (served by a new ``TestServer``) or a test server.
    """
    from .core.web.app import Application
    from .test_utils import BaseTestServer, TestClient, TestServer

    clients: list[TestClient] = []

    async def go(
        app_or_server: Application | BaseTestServer,
        *,
        server_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> TestClient:
        if isinstance(app_or_server, Application):
            server: BaseTestServer = TestServer(app_or_server, **(server_kwargs or {}))
        elif isinstance(app_or_server, BaseTestServer):
            server = app_or_server
        else:
            raise TypeError(
                "aiohttp_client() takes a forkloop web.Application or a test server, "
                f"got {app_or_server!r}"
            )
        client = TestClient(server, **kwargs)
        await client.start_server()
        clients.append(client)
        return client

    yield go
    while clients:
        await clients.pop().close()

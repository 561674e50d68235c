"""Testing helpers with aiohttp's ``aiohttp.test_utils`` API, serving through forkloop.

``TestServer(app)`` / ``RawTestServer(handler)`` run a real forkloop server on a loopback
socket; ``TestClient(server)`` talks to it with aiohttp's ``ClientSession`` (the ``testing``
extra -- aiohttp is never a dependency of the server itself). ``make_mocked_request`` builds a
real ``forkloop.web.Request`` without a connection, for unit tests of handlers.

Imports: ``forkloop.core`` (web, http, server) and, for the client side, ``aiohttp``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import socket
import time
import unittest
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from unittest import mock

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .core.http.limits import Limits
from .core.http.parser import HTTP11, HttpVersion, RequestHead
from .core.http.serialize import DateCache
from .core.server.streams import EMPTY_PAYLOAD, StreamReader
from .core.web.app import Application
from .core.web.lowlevel import Server
from .core.web.request import BaseRequest, Request
from .core.web.runner import AppRunner, BaseRunner, ServerRunner, SockSite
from .core.web.urldispatcher import AbstractRoute, UrlMappingMatchInfo

if TYPE_CHECKING:
    from aiohttp import ClientResponse, ClientSession, ClientWebSocketResponse

    from .core.web.response import StreamResponse

__all__ = [
    "AioHTTPTestCase",
    "BaseTestServer",
    "RawTestServer",
    "TestClient",
    "TestServer",
    "loop_context",
    "make_mocked_coro",
    "make_mocked_request",
    "setup_test_loop",
    "teardown_test_loop",
    "unittest_run_loop",
    "unused_port",
]

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])
_S = TypeVar("_S", bound="BaseTestServer")
_LOOPBACK = "127.0.0.1"


def unused_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class BaseTestServer(ABC):
    """A forkloop server on a loopback socket, started by ``start_server()``."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        *,
        scheme: str = "",
        host: str = _LOOPBACK,
        port: int | None = None,
        skip_url_asserts: bool = True,
        **kwargs: Any,
    ) -> None:
        self.runner: BaseRunner | None = None
        self._root: URL | None = None
        self.host = host
        self.port = port
        self.scheme = scheme
        self.skip_url_asserts = skip_url_asserts
        self._closed = False
        self._kwargs = kwargs

    async def start_server(
        self, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any
    ) -> None:
        """Set the runner up and listen; a second call does nothing."""
        if self.runner is not None:
            return
        ssl_context = kwargs.pop("ssl", None)
        self.runner = await self._make_runner(**{**self._kwargs, **kwargs})
        await self.runner.setup()
        sock = _bound_socket(self.host, self.port or 0)
        self.port = int(sock.getsockname()[1])
        site = SockSite(self.runner, sock, ssl_context=ssl_context)
        await site.start()
        if not self.scheme:
            self.scheme = "https" if ssl_context else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._root = URL(f"{self.scheme}://{host}:{self.port}")

    @abstractmethod
    async def _make_runner(self, **kwargs: Any) -> BaseRunner: ...

    def make_url(self, path: str | URL) -> URL:
        """The absolute URL of ``path`` on this server.

        As aiohttp: with ``skip_url_asserts`` (the default) ``path`` is appended to the root as
        text, so ``//a//b`` stays a path (never a host) and is sent as written; without it,
        ``path`` must be relative and is joined to the root (RFC 3986 reference resolution).
        """
        if self._root is None:
            raise RuntimeError("the test server is not started: await start_server() first")
        if self.skip_url_asserts:
            return URL(str(self._root) + str(path))
        url = URL(path)
        if url.absolute:
            raise ValueError(f"make_url() takes a relative path, got {path!r}")
        return self._root.join(url)

    @property
    def started(self) -> bool:
        return self.runner is not None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def handler(self) -> Server:
        if self.runner is None or self.runner.server is None:
            raise RuntimeError("the test server is not started")
        return self.runner.server

    async def close(self) -> None:
        """Stop listening and shut the server down (idempotent)."""
        if self.started and not self.closed:
            assert self.runner is not None
            await self.runner.cleanup()
            self._root = None
            self.port = None
            self._closed = True

    async def __aenter__(self: _S) -> _S:
        await self.start_server()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class TestServer(BaseTestServer):
    """Serve an :class:`~forkloop.web.Application` (through ``AppRunner``)."""

    def __init__(
        self,
        app: Application,
        *,
        scheme: str = "",
        host: str = _LOOPBACK,
        port: int | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(app, Application):
            raise TypeError(f"TestServer serves a forkloop.web.Application, got {app!r}")
        self.app = app
        super().__init__(scheme=scheme, host=host, port=port, **kwargs)

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return AppRunner(self.app, **kwargs)


class RawTestServer(BaseTestServer):
    """Serve a low-level handler ``async def handler(request) -> StreamResponse``."""

    def __init__(
        self,
        handler: Callable[[BaseRequest], Awaitable[StreamResponse]],
        *,
        scheme: str = "",
        host: str = _LOOPBACK,
        port: int | None = None,
        **kwargs: Any,
    ) -> None:
        self._handler = handler
        super().__init__(scheme=scheme, host=host, port=port, **kwargs)

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        server_kwargs = {k: v for k, v in kwargs.items() if k != "handle_signals"}
        return ServerRunner(Server(self._handler, **server_kwargs))


class _RequestContext(Generic[_T]):
    """``await client.get(...)`` or ``async with client.get(...) as resp``."""

    __slots__ = ("_coro", "_result")

    def __init__(self, coro: Awaitable[_T]) -> None:
        self._coro = coro
        self._result: _T | None = None

    def __await__(self) -> Generator[Any, None, _T]:
        return self._coro.__await__()

    async def __aenter__(self) -> _T:
        self._result = await self._coro
        return self._result

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        result: Any = self._result
        if result is None:
            return
        if hasattr(result, "release"):
            result.release()
        else:  # a WebSocket
            await result.close()


class TestClient:
    """An aiohttp ``ClientSession`` bound to a test server: ``await client.get('/')``."""

    __test__ = False  # not a pytest test class

    def __init__(self, server: BaseTestServer, *, cookie_jar: Any = None, **kwargs: Any) -> None:
        import aiohttp

        if not isinstance(server, BaseTestServer):
            raise TypeError(f"server must be a TestServer or RawTestServer, got {server!r}")
        self._server = server
        if cookie_jar is None:
            cookie_jar = aiohttp.CookieJar(unsafe=True)
        self._session: ClientSession = aiohttp.ClientSession(cookie_jar=cookie_jar, **kwargs)
        self._closed = False
        self._responses: list[ClientResponse] = []
        self._websockets: list[ClientWebSocketResponse] = []

    async def start_server(self) -> None:
        await self._server.start_server()

    @property
    def host(self) -> str:
        return self._server.host

    @property
    def port(self) -> int | None:
        return self._server.port

    @property
    def server(self) -> BaseTestServer:
        return self._server

    @property
    def app(self) -> Application | None:
        return getattr(self._server, "app", None)

    @property
    def session(self) -> ClientSession:
        return self._session

    def make_url(self, path: str | URL) -> URL:
        return self._server.make_url(path)

    async def _request(self, method: str, path: str | URL, **kwargs: Any) -> ClientResponse:
        resp = await self._session.request(method, self.make_url(path), **kwargs)
        self._responses.append(resp)
        return resp

    def request(
        self, method: str, path: str | URL, **kwargs: Any
    ) -> _RequestContext[ClientResponse]:
        """Send a request to ``path`` on the test server (awaitable or ``async with``)."""
        return _RequestContext(self._request(method, path, **kwargs))

    def get(self, path: str | URL, **kwargs: Any) -> _RequestContext[ClientResponse]:
        return self.request("GET", path, **kwargs)

    def post(self, path: str | URL, **kwargs: Any) -> _RequestContext[ClientResponse]:
        return self.request("POST", path, **kwargs)

    def put(self, path: str | URL, **kwargs: Any) -> _RequestContext[ClientResponse]:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str | URL, **kwargs: Any) -> _RequestContext[ClientResponse]:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str | URL, **kwargs: Any) -> _RequestContext[ClientResponse]:
        return self.request("DELETE", path, **kwargs)

    def head(self, path: str | URL, **kwargs: Any) -> _RequestContext[ClientResponse]:
        return self.request("HEAD", path, **kwargs)

    def options(self, path: str | URL, **kwargs: Any) -> _RequestContext[ClientResponse]:
        return self.request("OPTIONS", path, **kwargs)

    async def _ws_connect(self, path: str | URL, **kwargs: Any) -> ClientWebSocketResponse:
        ws: ClientWebSocketResponse = await self._session.ws_connect(self.make_url(path), **kwargs)
        self._websockets.append(ws)
        return ws

    def ws_connect(
        self, path: str | URL, **kwargs: Any
    ) -> _RequestContext[ClientWebSocketResponse]:
        """Open a WebSocket to ``path`` (awaitable or ``async with``)."""
        return _RequestContext(self._ws_connect(path, **kwargs))

    async def close(self) -> None:
        """Release responses, close WebSockets, the session and the server (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for resp in self._responses:
            resp.close()
        for ws in self._websockets:
            await ws.close()
        await self._session.close()
        await self._server.close()

    async def __aenter__(self) -> TestClient:
        await self.start_server()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class AioHTTPTestCase(unittest.IsolatedAsyncioTestCase):
    """unittest base class: implement ``get_application()``; use ``self.client``."""

    async def get_application(self) -> Application:
        raise NotImplementedError("AioHTTPTestCase subclasses implement get_application()")

    async def get_server(self, app: Application) -> TestServer:
        return TestServer(app)

    async def get_client(self, server: BaseTestServer) -> TestClient:
        return TestClient(server)

    async def asyncSetUp(self) -> None:
        self.app = await self.get_application()
        self.server = await self.get_server(self.app)
        self.client = await self.get_client(self.server)
        await self.client.start_server()

    async def asyncTearDown(self) -> None:
        await self.client.close()


# --- loops and mocks for plain unittest code ------------------------------------------------


def setup_test_loop(
    loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
) -> asyncio.AbstractEventLoop:
    """A new event loop, set as the current one (for tests that drive a loop by hand)."""
    loop = loop_factory()
    asyncio.set_event_loop(loop)
    return loop


def teardown_test_loop(loop: asyncio.AbstractEventLoop, fast: bool = False) -> None:
    """Stop and close ``loop``; unless ``fast``, collect garbage to surface leaks now."""
    if not loop.is_closed():
        loop.call_soon(loop.stop)
        loop.run_forever()
        loop.close()
    if not fast:
        gc.collect()
    asyncio.set_event_loop(None)


@contextlib.contextmanager
def loop_context(
    loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
    fast: bool = False,
) -> Iterator[asyncio.AbstractEventLoop]:
    """``with loop_context() as loop:`` -- a fresh event loop, closed afterwards."""
    loop = setup_test_loop(loop_factory)
    try:
        yield loop
    finally:
        teardown_test_loop(loop, fast=fast)


def unittest_run_loop(func: _F) -> _F:
    """No-op kept for aiohttp compatibility: ``AioHTTPTestCase`` runs coroutine tests itself."""
    return func


_SENTINEL: Any = object()


def make_mocked_coro(return_value: Any = _SENTINEL, raise_exception: Any = _SENTINEL) -> Any:
    """A ``unittest.mock.Mock`` wrapping a coroutine function that returns ``return_value``
    (awaiting it first if it is awaitable) or raises ``raise_exception``."""

    async def mock_coro(*args: Any, **kwargs: Any) -> Any:
        if raise_exception is not _SENTINEL:
            raise raise_exception
        if return_value is _SENTINEL:
            return None
        if inspect.isawaitable(return_value):
            return await return_value
        return return_value

    return mock.Mock(wraps=mock_coro)


# --- make_mocked_request ------------------------------------------------------------------


class _MockTransport(asyncio.Transport):
    """A transport that records what is written and never closes by itself."""

    def __init__(self, extra: Mapping[str, Any]) -> None:
        super().__init__(dict(extra))
        self.written = bytearray()
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True

    def abort(self) -> None:
        self._closing = True

    def get_write_buffer_size(self) -> int:
        return 0


class _MockProtocol:
    """The parts of ``HttpProtocol`` a request and its response use, with no connection."""

    def __init__(
        self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop | None, closing: bool
    ) -> None:
        self.transport: asyncio.Transport | None = transport
        self.peername = transport.get_extra_info("peername")
        self.limits = Limits()
        self.closing = closing
        self.scheme = "https" if transport.get_extra_info("sslcontext") else "http"
        self.task: asyncio.Task[None] | None = None
        self._loop = loop
        self.write_paused = False
        self._force_close = closing
        self._dates = DateCache()

    @property
    def keep_alive(self) -> bool:
        return not self._force_close

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def write_response(self, data: bytes) -> None:
        self.write(data)

    async def drain(self) -> None:
        return None

    def force_close(self) -> None:
        self._force_close = True

    def date_value(self) -> str:
        return self._dates.value(time.time())

    def head_tail(self) -> bytes:
        return self._dates.tail(time.time())

    @property
    def upgraded(self) -> bool:
        return False

    def pause_reading(self) -> None:
        return None

    def resume_reading(self) -> None:
        return None


class _MockedRoute(AbstractRoute):
    """The route of a mocked request's match info: no resource, no URL."""

    def __init__(self) -> None:
        super().__init__("*", self._not_routed)

    @staticmethod
    async def _not_routed(request: Request) -> StreamResponse:
        raise RuntimeError("make_mocked_request() requests are not routed")

    @property
    def name(self) -> str | None:
        return None

    def get_info(self) -> dict[str, Any]:
        return {}

    def url_for(self, *args: str, **kwargs: Any) -> URL:
        raise RuntimeError("a mocked request's route has no URL")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def make_mocked_request(
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    *,
    match_info: Mapping[str, str] | None = None,
    version: HttpVersion | tuple[int, int] = HTTP11,
    closing: bool = False,
    app: Application | None = None,
    writer: Any = None,
    protocol: Any = None,
    transport: asyncio.Transport | None = None,
    payload: Any = None,
    sslcontext: Any = None,
    client_max_size: int | None = 1024**2,
    client_max_fields: int = 1000,
    loop: asyncio.AbstractEventLoop | None = None,
) -> Request:
    """A :class:`~forkloop.web.Request` for unit tests, not tied to a connection.

    ``match_info`` fills ``request.match_info``; ``app`` (default: a new ``Application``) is
    ``request.app``. ``payload`` may be ``bytes`` (the body) or a ``StreamReader``. What a
    response writes goes to ``request.transport.written`` (a bytearray).
    """
    del writer  # aiohttp's writer mock has no counterpart: responses write to the transport
    if tuple(version) < (1, 1):
        closing = True  # as aiohttp: HTTP/1.0 is not kept alive
    if loop is None:
        loop = _running_loop()
    hdrs = CIMultiDictProxy(CIMultiDict(headers or {}))
    raw_headers = tuple((k.encode("utf-8"), v.encode("utf-8")) for k, v in hdrs.items())
    content_length = int(hdrs["Content-Length"]) if "Content-Length" in hdrs else None
    chunked = "chunked" in hdrs.get("Transfer-Encoding", "").lower()
    upgrade = "upgrade" in hdrs.get("Connection", "").lower() and "Upgrade" in hdrs
    head = RequestHead(
        method.upper(),
        path,
        HttpVersion(*version),
        hdrs,
        raw_headers,
        not closing,
        upgrade,
        chunked,
        content_length,
        hdrs.get("Expect"),
    )
    if transport is None:
        extra: dict[str, Any] = {"peername": ("127.0.0.1", 12345), "sockname": ("127.0.0.1", 80)}
        if sslcontext is not None:
            extra["sslcontext"] = sslcontext
        transport = _MockTransport(extra)
    if protocol is None:
        protocol = _MockProtocol(transport, loop, closing)
    if payload is None:
        payload = EMPTY_PAYLOAD
    elif isinstance(payload, bytes | bytearray):
        body = bytes(payload)
        if loop is None:
            raise RuntimeError("make_mocked_request(payload=bytes) needs a running event loop")
        payload = StreamReader(protocol, loop=loop)
        payload.feed_data(body)
        payload.feed_eof()
    request = Request(
        head,
        payload,
        protocol,
        None,
        client_max_size=client_max_size,
        client_max_fields=client_max_fields,
        loop=loop,
    )
    info = UrlMappingMatchInfo(dict(match_info or {}), _MockedRoute())
    info.add_app(app if app is not None else Application())
    info.freeze()
    request._match_info = info
    return request

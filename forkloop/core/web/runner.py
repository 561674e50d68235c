"""Runners and sites (aiohttp's ``AppRunner``, ``ServerRunner``, ``TCPSite``, ``UnixSite``,
``SockSite``): bring an app up on sockets, and take it down in stages.

Owns the order of a start (app startup signals, freeze, the low-level server, then listening
sockets) and of a stop: sites stop accepting, idle keep-alive connections close, ``on_shutdown``
runs, in-flight requests finish up to ``shutdown_timeout`` and the rest are cancelled, then
``on_cleanup`` runs. Imports ``core.web.lowlevel`` and ``core.hooks``.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl as ssl_mod
from abc import ABC, abstractmethod
from typing import Any

from yarl import URL

from ..hooks import OBSERVERS_KEY
from .lowlevel import Server

__all__ = [
    "AppRunner",
    "BaseRunner",
    "BaseSite",
    "GracefulExit",
    "NamedPipeSite",
    "ServerRunner",
    "SockSite",
    "TCPSite",
    "UnixSite",
]


class GracefulExit(SystemExit):
    code = 1


def _raise_graceful_exit() -> None:
    raise GracefulExit()


class BaseSite(ABC):
    """A listening endpoint of a runner."""

    def __init__(
        self,
        runner: BaseRunner,
        *,
        shutdown_timeout: float = 60.0,
        ssl_context: ssl_mod.SSLContext | None = None,
        backlog: int = 128,
    ) -> None:
        if runner.server is None:
            raise RuntimeError("Call runner.setup() before making a site")
        if shutdown_timeout != 60.0:
            # aiohttp's behaviour: a site's shutdown_timeout is the runner's (aiohttp also
            # warns that it belongs on the runner).
            runner._shutdown_timeout = shutdown_timeout
        self._runner = runner
        self._ssl_context = ssl_context
        self._backlog = backlog
        self._server: asyncio.AbstractServer | None = None

    @property
    @abstractmethod
    def name(self) -> str:
        """The URL or path the site listens on."""

    @abstractmethod
    async def start(self) -> None:
        self._runner._reg_site(self)

    async def stop(self) -> None:
        """Stop accepting; open connections are the runner's to finish.

        As aiohttp: a site that was not started (or is stopped already) raises RuntimeError.
        """
        self._runner._check_site(self)
        self._runner._unreg_site(self)
        if self._server is not None:
            self._server.close()
            self._server = None

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        server = self._server
        return tuple(getattr(server, "sockets", ())) if server is not None else ()


class TCPSite(BaseSite):
    def __init__(
        self,
        runner: BaseRunner,
        host: str | None = None,
        port: int | None = None,
        *,
        shutdown_timeout: float = 60.0,
        ssl_context: ssl_mod.SSLContext | None = None,
        backlog: int = 128,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
    ) -> None:
        super().__init__(
            runner, shutdown_timeout=shutdown_timeout, ssl_context=ssl_context, backlog=backlog
        )
        self._host = host
        self._port = (8443 if ssl_context else 8080) if port is None else port
        self._bound_port: int | None = None
        self._reuse_address = reuse_address
        self._reuse_port = reuse_port

    @property
    def port(self) -> int:
        """The port listened on once started (the one the OS chose for ``port=0``); before
        that, the port asked for."""
        return self._port if self._bound_port is None else self._bound_port

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        host = "0.0.0.0" if not self._host else self._host
        return str(URL.build(scheme=scheme, host=host, port=self.port))

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        self._server = await loop.create_server(
            server,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = int(sockets[0].getsockname()[1]) if sockets else self._port


class UnixSite(BaseSite):
    def __init__(
        self,
        runner: BaseRunner,
        path: str,
        *,
        shutdown_timeout: float = 60.0,
        ssl_context: ssl_mod.SSLContext | None = None,
        backlog: int = 128,
    ) -> None:
        super().__init__(
            runner, shutdown_timeout=shutdown_timeout, ssl_context=ssl_context, backlog=backlog
        )
        self._path = str(path)

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://unix:{self._path}:"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        self._server = await loop.create_unix_server(
            server, self._path, ssl=self._ssl_context, backlog=self._backlog
        )


class SockSite(BaseSite):
    """Serves on a socket that is already bound (and maybe listening), e.g. inherited."""

    def __init__(
        self,
        runner: BaseRunner,
        sock: socket.socket,
        *,
        shutdown_timeout: float = 60.0,
        ssl_context: ssl_mod.SSLContext | None = None,
        backlog: int = 128,
    ) -> None:
        super().__init__(
            runner, shutdown_timeout=shutdown_timeout, ssl_context=ssl_context, backlog=backlog
        )
        self._sock = sock
        scheme = "https" if ssl_context else "http"
        if hasattr(socket, "AF_UNIX") and sock.family == socket.AF_UNIX:
            self._name = f"{scheme}://unix:{sock.getsockname()}:"
        else:
            host, port = sock.getsockname()[:2]
            self._name = str(URL.build(scheme=scheme, host=host, port=port))

    @property
    def name(self) -> str:
        return self._name

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        self._server = await loop.create_server(
            server, sock=self._sock, ssl=self._ssl_context, backlog=self._backlog
        )


class NamedPipeSite(BaseSite):
    """aiohttp's Windows named-pipe site; forkloop serves POSIX systems only."""

    def __init__(self, runner: BaseRunner, path: str, *, shutdown_timeout: float = 60.0) -> None:
        raise RuntimeError("Named Pipes only available in proactor loop under windows")

    @property
    def name(self) -> str:  # pragma: no cover - never constructed
        raise NotImplementedError

    async def start(self) -> None:  # pragma: no cover - never constructed
        raise NotImplementedError


class BaseRunner(ABC):
    """Owns a low-level server and its sites."""

    def __init__(
        self, *, handle_signals: bool = False, shutdown_timeout: float = 60.0, **kwargs: Any
    ) -> None:
        self._handle_signals = handle_signals
        self._shutdown_timeout = shutdown_timeout
        self._kwargs = kwargs
        self._server: Server | None = None
        self._sites: list[BaseSite] = []

    @property
    def server(self) -> Server | None:
        return self._server

    @property
    def addresses(self) -> list[Any]:
        return [sock.getsockname() for site in self._sites for sock in site.sockets]

    @property
    def sites(self) -> set[BaseSite]:
        return set(self._sites)

    async def setup(self) -> None:
        loop = asyncio.get_running_loop()
        if self._handle_signals:
            try:
                loop.add_signal_handler(signal.SIGINT, _raise_graceful_exit)
                loop.add_signal_handler(signal.SIGTERM, _raise_graceful_exit)
            except NotImplementedError:  # pragma: no cover - Windows
                pass
        self._server = await self._make_server()

    @abstractmethod
    async def shutdown(self) -> None:
        """Run the application's shutdown step."""

    async def cleanup(self) -> None:
        for site in list(self._sites):
            await site.stop()
        if self._server is not None:
            # One loop turn lets connections accepted just before the stop start their request.
            await asyncio.sleep(0)
            self._server.pre_shutdown()
            await self.shutdown()
            await self._server.shutdown(self._shutdown_timeout)
        await self._cleanup_server()
        self._server = None
        if self._handle_signals:
            loop = asyncio.get_running_loop()
            try:
                loop.remove_signal_handler(signal.SIGINT)
                loop.remove_signal_handler(signal.SIGTERM)
            except NotImplementedError:  # pragma: no cover
                pass

    @abstractmethod
    async def _make_server(self) -> Server: ...

    @abstractmethod
    async def _cleanup_server(self) -> None: ...

    def _reg_site(self, site: BaseSite) -> None:
        if site in self._sites:
            raise RuntimeError(f"Site {site} is already registered in runner {self}")
        self._sites.append(site)

    def _check_site(self, site: BaseSite) -> None:
        if site not in self._sites:
            raise RuntimeError(f"Site {site} is not registered in runner {self}")

    def _unreg_site(self, site: BaseSite) -> None:
        self._check_site(site)
        self._sites.remove(site)


class ServerRunner(BaseRunner):
    """Runs a low-level ``Server``."""

    def __init__(self, web_server: Server, *, handle_signals: bool = False, **kwargs: Any) -> None:
        super().__init__(handle_signals=handle_signals, **kwargs)
        self._web_server = web_server

    async def shutdown(self) -> None:
        return None

    async def _make_server(self) -> Server:
        return self._web_server

    async def _cleanup_server(self) -> None:
        return None


class AppRunner(BaseRunner):
    """Runs an ``Application``: startup/shutdown/cleanup signals around the server's life.

    Keyword arguments go to the low-level ``Server`` (``limits=``, ``observers=``,
    ``intercept=``, ``access_log=``, aiohttp's ``keepalive_timeout=`` ...).
    """

    def __init__(self, app: Any, *, handle_signals: bool = False, **kwargs: Any) -> None:
        super().__init__(handle_signals=handle_signals, **kwargs)
        if not hasattr(app, "_handle") or not hasattr(app, "_make_request"):
            raise TypeError(f"The app should be an Application instance, got {app!r}")
        self._app = app

    @property
    def app(self) -> Any:
        return self._app

    async def shutdown(self) -> None:
        await self._app.shutdown()

    async def _make_server(self) -> Server:
        loop = asyncio.get_running_loop()
        app = self._app
        if hasattr(app, "_set_loop"):
            app._set_loop(loop)
        if hasattr(app.on_startup, "freeze"):
            app.on_startup.freeze()
        await app.startup()
        app.freeze()
        # Application(handler_args=...) first, the runner's own keyword arguments over them.
        kwargs = {**(getattr(app, "_handler_args", None) or {}), **self._kwargs}
        observers = list(kwargs.pop("observers", ()))
        observers.extend(app.get(OBSERVERS_KEY, ()) if hasattr(app, "get") else ())
        kwargs.setdefault("debug", getattr(app, "_debug", False) is True)
        server = Server(
            app._server_handler(),
            request_factory=(
                app._request_factory(loop)
                if hasattr(app, "_request_factory")
                else app._make_request
            ),
            loop=loop,
            observers=observers,
            **kwargs,
        )
        return server

    async def _cleanup_server(self) -> None:
        await self._app.cleanup()

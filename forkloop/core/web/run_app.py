"""``run_app``: serve an application until interrupted (aiohttp's signature).

Owns the process-level loop for a single-process server: the event loop (uvloop by default, the
standard loop as a fallback), the sites for ``host``/``port``/``path``/``sock``, the banner, and
a clean stop on SIGINT/SIGTERM, and the refusal of an aiohttp app given by mistake. Imports
``core.web.runner`` and ``core.web.app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl as ssl_mod
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from .app import foreign_app_error
from .log import AbstractAccessLogger, AccessLogger, access_logger
from .runner import AppRunner, BaseSite, GracefulExit, SockSite, TCPSite, UnixSite

__all__ = ["new_event_loop", "run_app"]


def new_event_loop(use_uvloop: bool = True) -> asyncio.AbstractEventLoop:
    """A uvloop loop where uvloop is installed (and wanted), else asyncio's default loop."""
    if use_uvloop:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
            pass
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


async def _run_app(
    app: Any,
    *,
    host: str | Iterable[str] | None = None,
    port: int | None = None,
    path: str | Iterable[str] | None = None,
    sock: socket.socket | Iterable[socket.socket] | None = None,
    shutdown_timeout: float = 60.0,
    keepalive_timeout: float = 75.0,
    ssl_context: ssl_mod.SSLContext | None = None,
    print: Callable[..., None] | None = print,
    backlog: int = 128,
    access_log_class: type[AbstractAccessLogger] = AccessLogger,
    access_log_format: str = AccessLogger.LOG_FORMAT,
    access_log: logging.Logger | None = access_logger,
    handle_signals: bool = True,
    reuse_address: bool | None = None,
    reuse_port: bool | None = None,
    handler_cancellation: bool = False,
    max_concurrency: int | None = None,
    max_queue_time: float | None = None,
    trust_request_start: bool = False,
    auto_decompress: bool = True,
) -> None:
    if isinstance(app, Awaitable):
        app = await app
        _refuse_foreign(app)
    runner = AppRunner(
        app,
        handle_signals=handle_signals,
        access_log_class=access_log_class,
        access_log_format=access_log_format,
        access_log=access_log,
        keepalive_timeout=keepalive_timeout,
        shutdown_timeout=shutdown_timeout,
        handler_cancellation=handler_cancellation,
        # Overload protection (forkloop.core.server.admission): off unless given.
        max_concurrency=max_concurrency,
        max_queue_time=max_queue_time,
        trust_request_start=trust_request_start,
        auto_decompress=auto_decompress,
    )
    await runner.setup()
    sites: list[BaseSite] = []
    try:
        if host is not None:
            hosts = [host] if isinstance(host, str) else list(host)
            sites.extend(
                TCPSite(
                    runner,
                    h,
                    port,
                    reuse_address=reuse_address,
                    reuse_port=reuse_port,
                    ssl_context=ssl_context,
                    backlog=backlog,
                )
                for h in hosts
            )
        elif (path is None and sock is None) or port is not None:
            sites.append(
                TCPSite(
                    runner,
                    port=port,
                    reuse_address=reuse_address,
                    reuse_port=reuse_port,
                    ssl_context=ssl_context,
                    backlog=backlog,
                )
            )
        if path is not None:
            paths = [path] if isinstance(path, str) else list(path)
            sites.extend(
                UnixSite(runner, p, ssl_context=ssl_context, backlog=backlog) for p in paths
            )
        if sock is not None:
            socks = [sock] if isinstance(sock, socket.socket) else list(sock)
            sites.extend(
                SockSite(runner, s, ssl_context=ssl_context, backlog=backlog) for s in socks
            )
        for site in sites:
            await site.start()
        if print is not None:
            names = sorted(site.name for site in runner.sites)
            print(f"======== Running on {', '.join(names)} ========\n(Press CTRL+C to quit)")
        await asyncio.get_running_loop().create_future()  # until cancelled
    finally:
        await runner.cleanup()


def _refuse_foreign(app: object) -> None:
    """An aiohttp Application given by mistake: one line on stderr, exit status 3 (it would
    otherwise start, say it is ready and fail every request)."""
    error = foreign_app_error(app)
    if error is not None:
        sys.stderr.write(f"forkloop: {error}\n")
        sys.stderr.flush()
        raise SystemExit(3)


def _cancel_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during run_app() shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )


def run_app(
    app: Any,
    *,
    loop: asyncio.AbstractEventLoop | None = None,
    use_uvloop: bool = True,
    **kwargs: Any,
) -> None:
    """Serve ``app`` (an Application or a coroutine returning one) until SIGINT/SIGTERM."""
    _refuse_foreign(app)
    if loop is None:
        loop = new_event_loop(use_uvloop)
    access_log = kwargs.get("access_log", access_logger)
    if loop.get_debug() and access_log is not None and access_log.name == "forkloop.access":
        if access_log.level == logging.NOTSET:
            access_log.setLevel(logging.DEBUG)
        if not access_log.hasHandlers():
            access_log.addHandler(logging.StreamHandler())
    main_task = loop.create_task(_run_app(app, **kwargs))
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main_task)
    except (GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            # Not for a task that already ended: asyncio never stops the loop for a future
            # that ended with SystemExit (e.g. sys.exit() in on_startup), so it would hang.
            if not main_task.done():
                main_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(main_task)
        finally:
            _cancel_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            asyncio.set_event_loop(None)

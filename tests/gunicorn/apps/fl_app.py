"""The forkloop app the gunicorn tests serve (copied into each test's working directory)."""

from __future__ import annotations

import asyncio
import os
import sys
import time

from forkloop import web

VERSION = "v1"  # the HUP test rewrites this line


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


async def pid(request: web.Request) -> web.Response:
    return web.Response(text=f"{os.getpid()} {VERSION}")


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "3")))
    return web.Response(text="slow done")


async def block(request: web.Request) -> web.Response:
    time.sleep(float(request.query.get("s", "30")))  # noqa: ASYNC251 - blocks the loop on purpose
    return web.Response(text="unblocked")


async def stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.content_type = "text/plain"
    await response.prepare(request)
    for chunk in (b"hel", b"lo ", b"world"):
        await response.write(chunk)
    await response.write_eof()
    return response


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("boom in a handler")


async def teapot(request: web.Request) -> web.Response:
    return web.Response(status=418, text="short and stout")


async def _report_cleanup(app: web.Application) -> None:
    print(f"fl_app cleanup ran in {os.getpid()}", file=sys.stderr, flush=True)


def make_app() -> web.Application:
    app = web.Application()
    app.on_cleanup.append(_report_cleanup)
    app.router.add_get("/", hello)
    app.router.add_get("/hello", hello)
    app.router.add_get("/caf\u00e9", hello)
    app.router.add_get("/pid", pid)
    app.router.add_get("/slow", slow)
    app.router.add_get("/block", block)
    app.router.add_get("/stream", stream)
    app.router.add_get("/teapot", teapot)
    app.router.add_get("/boom", boom)
    return app


app = make_app()


def factory() -> web.Application:
    return make_app()


async def async_factory() -> web.Application:
    await asyncio.sleep(0)
    return make_app()


async def runner_factory() -> web.AppRunner:
    return web.AppRunner(make_app())


async def failing_factory() -> web.Application:
    raise RuntimeError("boom in the app factory")


async def _fail_startup(app: web.Application) -> None:
    raise RuntimeError("boom in on_startup")


def failing_startup() -> web.Application:
    app = make_app()
    app.on_startup.append(_fail_startup)
    return app


def wsgi_like(environ: dict[str, object], start_response: object) -> list[bytes]:
    return [b"not a forkloop app"]

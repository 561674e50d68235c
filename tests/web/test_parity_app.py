"""Differential test of middlewares and the application (issue 16, group 8) and of an invalid
method token (group 9): the same app built from ``aiohttp.web`` and ``forkloop.web``, served on
real sockets, must answer alike, run the same lifecycle and emit the same warnings."""

from __future__ import annotations

import asyncio
import re
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

import pytest
from aiohttp import test_utils as aio_test_utils
from aiohttp import web as aio_web

from forkloop import test_utils as fl_test_utils
from forkloop import web as fl_web

MODULES = {aio_web: aio_test_utils, fl_web: fl_test_utils}


def messages(caught: list[warnings.WarningMessage]) -> list[tuple[str, str]]:
    return [
        (w.category.__name__, re.sub(r" at 0x[0-9a-f]+", "", str(w.message)))
        for w in caught
        if "unclosed" not in str(w.message)
    ]


async def serve(app: Any, web: ModuleType, paths: list[str]) -> list[tuple[Any, ...]]:
    """Each path's status, body and ``X-*`` headers, from a real client."""
    test_utils = MODULES[web]
    out = []
    async with test_utils.TestClient(test_utils.TestServer(app)) as client:
        for path in paths:
            async with client.get(path, allow_redirects=False) as resp:
                extra = sorted((k, v) for k, v in resp.headers.items() if k.startswith("X-"))
                out.append((path, resp.status, await resp.text(), extra))
    return out


# -- old-style middleware factories ---------------------------------------------------------


def old_style_app(web: ModuleType) -> Any:
    async def factory(app: Any, handler: Any) -> Any:
        async def wrapped(request: Any) -> Any:
            resp = await handler(request)
            resp.headers["X-Old"] = f"{app['name']}:{request.path}"
            return resp

        return wrapped

    @web.middleware
    async def new_style(request: Any, handler: Any) -> Any:
        resp = await handler(request)
        resp.headers["X-New"] = resp.headers.get("X-Old", "-")
        return resp

    async def hello(request: Any) -> Any:
        return web.Response(text="hello")

    app = web.Application(middlewares=[new_style, factory])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plain str key: compared in test_parity_warnings
        app["name"] = "root"
    app.router.add_get("/", hello)
    return app


async def run_old_style(web: ModuleType) -> tuple[Any, ...]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answers = await serve(old_style_app(web), web, ["/", "/missing"])
    return answers, messages(caught)


async def test_old_style_middleware_factory_like_aiohttp() -> None:
    expected = await run_old_style(aio_web)
    got = await run_old_style(fl_web)
    assert expected[0][0][1] == 200
    assert ("X-Old", "root:/") in expected[0][0][3]
    assert any("old-style middleware" in m for _, m in expected[1])
    assert got == expected


# -- handler attributes seen by outer middlewares -------------------------------------------


def attributes_app(web: ModuleType) -> Any:
    @web.middleware
    async def auth(request: Any, handler: Any) -> Any:
        if getattr(handler, "public", False):
            resp = await handler(request)
            resp.headers["X-Seen-By"] = type(request.app).__name__
            return resp
        raise web.HTTPUnauthorized()

    @web.middleware
    async def inner(request: Any, handler: Any) -> Any:
        return await handler(request)

    async def public(request: Any) -> Any:
        return web.Response(text="public")

    public.public = True  # type: ignore[attr-defined]

    async def private(request: Any) -> Any:
        return web.Response(text="private")  # pragma: no cover

    root = web.Application(middlewares=[auth])
    root.router.add_get("/public", public)
    sub = web.Application(middlewares=[inner])
    sub.router.add_get("/public", public)
    sub.router.add_get("/private", private)
    bare = web.Application()  # a sub-app without middlewares of its own
    bare.router.add_get("/public", public)
    root.add_subapp("/sub", sub)
    root.add_subapp("/bare", bare)
    return root


async def test_outer_middlewares_see_handler_attributes_like_aiohttp() -> None:
    paths = ["/public", "/sub/public", "/sub/private", "/bare/public"]
    expected = await serve(attributes_app(aio_web), aio_web, paths)
    got = await serve(attributes_app(fl_web), fl_web, paths)
    assert [e[1] for e in expected] == [200, 200, 401, 200]
    assert got == expected


# -- cleanup_ctx with @asynccontextmanager --------------------------------------------------


def cleanup_ctx_app(web: ModuleType, events: list[str]) -> Any:
    @asynccontextmanager
    async def managed(app: Any) -> AsyncIterator[None]:
        events.append("managed enter")
        yield
        events.append("managed exit")

    async def generator(app: Any) -> AsyncIterator[None]:
        events.append("generator enter")
        yield
        events.append("generator exit")

    async def hello(request: Any) -> Any:
        events.append("request")
        return web.Response(text="hello")

    app = web.Application()
    app.cleanup_ctx.append(managed)
    app.cleanup_ctx.append(generator)
    app.router.add_get("/", hello)
    return app


async def test_cleanup_ctx_accepts_asynccontextmanager_like_aiohttp() -> None:
    expected: list[str] = []
    got: list[str] = []
    expected_answers = await serve(cleanup_ctx_app(aio_web, expected), aio_web, ["/"])
    got_answers = await serve(cleanup_ctx_app(fl_web, got), fl_web, ["/"])
    assert expected == [
        "managed enter",
        "generator enter",
        "request",
        "generator exit",
        "managed exit",
    ]
    assert (got, got_answers) == (expected, expected_answers)


def two_yields(web: ModuleType) -> Any:
    async def twice(app: Any) -> AsyncIterator[None]:
        yield
        yield

    app = web.Application()
    app.cleanup_ctx.append(twice)
    return app


async def cleanup_error(web: ModuleType) -> str:
    app = two_yields(web)
    app.freeze()
    await app.startup()
    try:
        await app.cleanup()
    except Exception as exc:  # the exception is the behaviour compared
        return f"{type(exc).__name__}: {exc}"
    return "no error"  # pragma: no cover


async def test_cleanup_ctx_second_yield_fails_like_aiohttp() -> None:
    assert await cleanup_error(fl_web) == await cleanup_error(aio_web)


# -- iter(app) with mixed keys --------------------------------------------------------------


def mixed_keys(web: ModuleType) -> list[str]:
    app = web.Application()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # plain str keys warn: compared in test_parity_warnings
        app["b"] = 1
        app[web.AppKey("z", int)] = 2
        app["a"] = 3
        app[web.AppKey("y", str)] = 4
    kinds = [type(k).__name__ for k in app]
    kinds += [type(k).__name__ for k in iter(app)]
    kinds += [str(len(app)), str(sorted(app, key=str) is not None)]
    return kinds


def test_iter_app_with_mixed_keys_like_aiohttp() -> None:
    assert mixed_keys(fl_web) == mixed_keys(aio_web)


# -- Application(router=...) ----------------------------------------------------------------


def custom_router_app(web: ModuleType) -> Any:
    class Router(web.UrlDispatcher):  # type: ignore[name-defined,misc]
        pass

    router = Router()

    async def hello(request: Any) -> Any:
        return web.Response(text=type(request.app.router).__name__)

    router.add_get("/", hello)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app = web.Application(router=router)
    app.caught = messages(caught)  # type: ignore[attr-defined]
    assert app.router is router
    return app


async def test_custom_router_accepted_like_aiohttp() -> None:
    aio_app = custom_router_app(aio_web)
    fl_app = custom_router_app(fl_web)
    assert (
        fl_app.caught == aio_app.caught == [("DeprecationWarning", "router argument is deprecated")]
    )
    assert await serve(fl_app, fl_web, ["/"]) == await serve(aio_app, aio_web, ["/"])


# -- an invalid method token (group 9) ------------------------------------------------------


async def raw_status_line(web: ModuleType, data: bytes) -> bytes:
    async def hello(request: Any) -> Any:
        return web.Response(text="hello")  # pragma: no cover

    app = web.Application()
    app.router.add_route("*", "/", hello)
    test_utils = MODULES[web]
    async with test_utils.TestServer(app) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        try:
            writer.write(data)
            answer = await asyncio.wait_for(reader.read(), 10)  # the server closes
        finally:
            writer.close()
    return answer.split(b"\r\n", 1)[0].replace(b"HTTP/1.0", b"HTTP/1.1")


@pytest.mark.parametrize("method", [b"GET1", b"FOO", b"get", b"G\x01T"])
async def test_invalid_method_token_like_aiohttp(method: bytes) -> None:
    data = method + b" / HTTP/1.1\r\nHost: x\r\n\r\n"
    expected = await raw_status_line(aio_web, data)
    assert expected == b"HTTP/1.1 400 Bad Request"
    assert await raw_status_line(fl_web, data) == expected

"""Differential test (issue 16, group 8): ``Application(router=...)`` with a router of the app's
own, an ``AbstractRouter`` that is not a ``UrlDispatcher`` (aiohttp's ``aiohttp.abc`` interface;
forkloop's ``forkloop.abc``). The same router code built on each framework wraps a dispatcher and
marks what it resolves; middlewares, ``request.app``, 404 and 405 must come out the same."""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Any

import aiohttp
import aiohttp.abc as aio_abc
import pytest
from aiohttp import web as aio_web
from parity_server import serving

import forkloop.abc as fl_abc
from forkloop import web as fl_web

SIDES = [pytest.param(aio_web, aio_abc, id="aiohttp"), pytest.param(fl_web, fl_abc, id="forkloop")]


def build_app(web: ModuleType, abc: ModuleType) -> Any:
    class Marking(abc.AbstractRouter):  # type: ignore[name-defined,misc]
        """Resolves through a dispatcher of its own and marks every match."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = web.UrlDispatcher()
            self.apps: list[Any] = []
            self.resolved = 0

        def post_init(self, app: Any) -> None:
            self.apps.append(app)

        async def resolve(self, request: Any) -> Any:
            self.resolved += 1
            info = await self.inner.resolve(request)
            if info.http_exception is None:
                info["via"] = "custom"
            return info

    router = Marking()

    async def item(request: Any) -> Any:
        return web.json_response(
            {
                "match": dict(request.match_info),
                "app_is_ours": request.app is app,
                "resolved": router.resolved,
            }
        )

    router.inner.add_get("/item/{name}", item)

    @web.middleware
    async def mark(request: Any, handler: Any) -> Any:
        response = await handler(request)
        response.headers["X-Mw"] = "1"
        return response

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        app = web.Application(router=router, middlewares=[mark])
    return app, router.apps == [app]


async def exchange(web: ModuleType, abc: ModuleType) -> list[Any]:
    app, post_init_saw_app = build_app(web, abc)
    got: list[Any] = [post_init_saw_app]
    async with serving(web, app, shutdown_timeout=1) as port, aiohttp.ClientSession() as session:
        for method, path in [
            ("GET", "/item/a"),
            ("GET", "/item/b"),
            ("GET", "/missing"),
            ("POST", "/item/a"),
        ]:
            async with session.request(method, f"http://127.0.0.1:{port}{path}") as resp:
                body = await resp.read()
                got.append(
                    (
                        resp.status,
                        resp.headers.get("X-Mw"),
                        resp.headers.get("Allow"),
                        resp.headers.get("Content-Type"),
                        body,
                    )
                )
    return got


@pytest.mark.parametrize(("web", "abc"), SIDES)
def test_router_argument_warns_like_aiohttp(web: ModuleType, abc: ModuleType) -> None:
    class Nothing(abc.AbstractRouter):  # type: ignore[name-defined,misc]
        async def resolve(self, request: Any) -> Any:
            raise AssertionError("not reached")

    with pytest.warns(DeprecationWarning, match="router argument is deprecated"):
        web.Application(router=Nothing())


async def test_a_custom_abstract_router_routes_like_aiohttp() -> None:
    expected = await exchange(aio_web, aio_abc)
    assert [exchanged[0] for exchanged in expected[1:]] == [200, 200, 404, 405]
    assert await exchange(fl_web, fl_abc) == expected

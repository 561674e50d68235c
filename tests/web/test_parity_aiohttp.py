"""Differential test: one application built from ``aiohttp.web`` and from ``forkloop.web``,
both served on real sockets, must answer the same requests the same way (status, routing
headers, body)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from aiohttp import test_utils as aio_test_utils
from aiohttp import web as aio_web

from forkloop import test_utils as fl_test_utils
from forkloop import web as fl_web

COMPARED_HEADERS = ("Allow", "Location", "Content-Type", "X-Mw", "X-Prep")


def build_app(web: ModuleType) -> Any:
    """An app touching the web API surface; written once, against either module."""
    routes = web.RouteTableDef()

    @routes.get("/")
    async def index(request):
        return web.Response(text="index")

    @routes.get("/users/{id:\\d+}", name="user")
    async def user(request):
        return web.json_response({"id": request.match_info["id"]})

    @routes.post("/users/{id:\\d+}")
    async def update_user(request):
        data = await request.json()
        return web.json_response({"id": request.match_info["id"], "data": data})

    @routes.get("/files/{path:.*}")
    async def files(request):
        return web.Response(text=request.match_info["path"])

    @routes.view("/view")
    class Item(web.View):
        async def get(self):
            return web.Response(text="view get")

        async def put(self):
            return web.Response(text="view put")

    @routes.get("/redirect")
    async def redirect(request):
        raise web.HTTPFound(request.app.router["user"].url_for(id="7").with_query(a="b"))

    @routes.get("/conflict")
    async def conflict(request):
        return web.HTTPConflict(text="taken")

    @routes.get("/gone")
    async def gone(request):
        raise web.HTTPGone()

    @routes.get("/boom")
    async def boom(request):
        raise ZeroDivisionError

    @routes.get("/slash/")
    async def slash(request):
        return web.Response(text="slash")

    @routes.route("*", "/any")
    async def any_method(request):
        return web.Response(text=request.method)

    @web.middleware
    async def mw(request, handler):
        resp = await handler(request)
        resp.headers["X-Mw"] = "1"
        return resp

    async def on_prepare(request, response):
        response.headers["X-Prep"] = "1"

    app = web.Application(middlewares=[mw, web.normalize_path_middleware()])
    app.on_response_prepare.append(on_prepare)
    app.add_routes(routes)
    admin = web.Application()

    async def admin_index(request):
        return web.Response(text=f"admin {request.app is request.match_info.current_app}")

    admin.router.add_get("/home", admin_index)
    app.add_subapp("/admin", admin)
    return app


REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/", {}),
    ("HEAD", "/", {}),
    ("POST", "/", {}),
    ("GET", "/users/12", {}),
    ("GET", "/users/abc", {}),
    ("POST", "/users/12", {"json": {"k": [1, 2]}}),
    ("DELETE", "/users/12", {}),
    ("GET", "/files/a/b/c.txt", {}),
    ("GET", "/files/a%20b", {}),
    ("GET", "/view", {}),
    ("PUT", "/view", {}),
    ("DELETE", "/view", {}),
    ("GET", "/redirect", {"allow_redirects": False}),
    ("GET", "/conflict", {}),
    ("GET", "/gone", {}),
    ("GET", "/boom", {}),
    ("GET", "/slash", {"allow_redirects": False}),
    ("GET", "/nowhere", {}),
    ("PATCH", "/any", {}),
    ("GET", "/admin/home", {}),
    ("GET", "/admin/missing", {}),
    ("POST", "/admin/home", {}),
]


async def answers(client: Any) -> list[tuple[Any, ...]]:
    out = []
    for method, path, kwargs in REQUESTS:
        async with client.request(method, path, **kwargs) as resp:
            body = await resp.read()
            headers = tuple(resp.headers.get(h) for h in COMPARED_HEADERS)
            out.append((method, path, resp.status, headers, body if resp.status != 500 else b""))
    return out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::aiohttp.web.NotAppKeyWarning")
async def test_forkloop_answers_like_aiohttp() -> None:
    aio_app = build_app(aio_web)
    fl_app = build_app(fl_web)
    async with aio_test_utils.TestClient(aio_test_utils.TestServer(aio_app)) as aio_client:
        expected = await answers(aio_client)
    async with fl_test_utils.TestClient(fl_test_utils.TestServer(fl_app)) as fl_client:
        got = await answers(fl_client)
    assert {a[2] for a in expected} >= {200, 302, 308, 404, 405, 409, 410, 500}
    mismatches = [(e, g) for e, g in zip(expected, got, strict=True) if e != g]
    assert not mismatches, "\n".join(f"aiohttp : {e}\nforkloop: {g}" for e, g in mismatches)

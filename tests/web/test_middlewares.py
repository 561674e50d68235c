"""Middlewares: order, sub-app chaining, errors, normalize_path_middleware -- over a socket."""

from __future__ import annotations

import asyncio

import pytest

from forkloop import web
from forkloop.core.web.middlewares import _candidates


async def raw_get(port: int, target: str) -> bytes:
    """Send a request-target verbatim (clients normalize "//a"), return the response head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        return (await asyncio.wait_for(reader.read(), 10)).partition(b"\r\n\r\n")[0] + b"\r\n"
    finally:
        writer.close()


NAME = web.AppKey("name", str)


def recording_middleware(events: list[str], label: str):
    @web.middleware
    async def mw(request: web.Request, handler):
        events.append(f"{label} in {request.app[NAME]}")
        resp = await handler(request)
        events.append(f"{label} out")
        return resp

    return mw


async def test_order_first_listed_is_outermost(aiohttp_client) -> None:
    events: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        events.append(f"handler {request.app[NAME]}")
        return web.Response(text="ok")

    app = web.Application(
        middlewares=[recording_middleware(events, "m1"), recording_middleware(events, "m2")]
    )
    app[NAME] = "root"
    sub = web.Application(middlewares=[recording_middleware(events, "s1")])
    sub[NAME] = "sub"
    sub.router.add_get("/h", handler)
    app.router.add_get("/h", handler)
    app.add_subapp("/sub", sub)
    client = await aiohttp_client(app)

    assert (await client.get("/h")).status == 200
    assert events == ["m1 in root", "m2 in root", "handler root", "m2 out", "m1 out"]
    events.clear()
    assert (await client.get("/sub/h")).status == 200
    assert events == [
        "m1 in root",
        "m2 in root",
        "s1 in sub",
        "handler sub",
        "s1 out",
        "m2 out",
        "m1 out",
    ]


async def test_middlewares_see_404_and_can_replace_it(aiohttp_client) -> None:
    @web.middleware
    async def json_errors(request: web.Request, handler):
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return web.json_response({"error": exc.reason}, status=exc.status)

    app = web.Application(middlewares=[json_errors])
    client = await aiohttp_client(app)
    for _ in range(2):  # the error chain is cached after the first request
        resp = await client.get("/nowhere")
        assert resp.status == 404
        assert await resp.json() == {"error": "Not Found"}


async def test_non_http_exception_becomes_500_after_the_chain(aiohttp_client) -> None:
    seen: list[str] = []

    @web.middleware
    async def observe(request: web.Request, handler):
        try:
            return await handler(request)
        except ZeroDivisionError:
            seen.append("saw it")
            raise

    async def boom(request: web.Request) -> web.Response:
        raise ZeroDivisionError

    app = web.Application(middlewares=[observe])
    app.router.add_get("/", boom)
    client = await aiohttp_client(app)
    resp = await client.get("/")
    assert resp.status == 500
    assert seen == ["saw it"]


async def test_handler_attributes_are_visible_to_middlewares(aiohttp_client) -> None:
    @web.middleware
    async def auth(request: web.Request, handler):
        if getattr(handler, "public", False):
            return await handler(request)
        raise web.HTTPUnauthorized()

    async def public(request: web.Request) -> web.Response:
        return web.Response(text="public")

    public.public = True  # type: ignore[attr-defined]

    async def private(request: web.Request) -> web.Response:
        return web.Response(text="private")  # pragma: no cover

    app = web.Application(middlewares=[auth])
    app.router.add_get("/public", public)
    app.router.add_get("/private", private)
    client = await aiohttp_client(app)
    assert (await client.get("/public")).status == 200
    assert (await client.get("/private")).status == 401


async def test_undecorated_middleware_is_an_old_style_factory(aiohttp_client) -> None:
    # As in aiohttp: without @web.middleware, a middleware is a factory (app, handler) ->
    # handler, awaited for every request, and deprecated.
    calls: list[str] = []

    async def factory(app: web.Application, handler):
        calls.append(app[NAME])

        async def add_header(request: web.Request) -> web.StreamResponse:
            resp = await handler(request)
            resp.headers["X-Mw"] = "1"
            return resp

        return add_header

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(middlewares=[factory])
    app[NAME] = "root"
    app.router.add_get("/", handler)
    with pytest.warns(DeprecationWarning, match="old-style middleware"):
        client = await aiohttp_client(app)
    assert (await client.get("/")).headers["X-Mw"] == "1"
    assert (await client.get("/")).headers["X-Mw"] == "1"
    assert calls == ["root", "root"]


async def test_normalize_path_append_slash_and_merge(aiohttp_client) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=request.path)

    app = web.Application(middlewares=[web.normalize_path_middleware()])
    app.router.add_get("/docs/", handler)
    app.router.add_get("/a/b", handler)
    client = await aiohttp_client(app)

    resp = await client.get("/docs?x=1", allow_redirects=False)
    assert resp.status == 308
    assert resp.headers["Location"] == "/docs/?x=1"
    head = await raw_get(client.port, "//a///b?q=1")
    assert head.startswith(b"HTTP/1.1 308 ")
    assert b"\r\nLocation: /a/b?q=1\r\n" in head
    resp = await client.get("/docs")
    assert await resp.text() == "/docs/"
    assert (await client.get("/nothing", allow_redirects=False)).status == 404


async def test_normalize_path_remove_slash_custom_redirect(aiohttp_client) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    mw = web.normalize_path_middleware(
        append_slash=False, remove_slash=True, redirect_class=web.HTTPFound
    )
    app = web.Application(middlewares=[mw])
    app.router.add_get("/page", handler)
    client = await aiohttp_client(app)
    resp = await client.get("/page/", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/page"


def test_normalize_path_refuses_both_directions() -> None:
    with pytest.raises(ValueError, match="cannot both append and remove"):
        web.normalize_path_middleware(append_slash=True, remove_slash=True)


def test_normalize_candidates_never_protocol_relative() -> None:
    cands = _candidates("//evil.com", append_slash=True, remove_slash=False, merge_slashes=False)
    assert all(not c.startswith("//") for c in cands)


async def test_nested_subapps_chain_middlewares_and_current_app(aiohttp_client) -> None:
    events: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        events.append(f"handler {request.app[NAME]}")
        return web.Response(text=",".join(a[NAME] for a in request.match_info.apps))

    root = web.Application(middlewares=[recording_middleware(events, "r")])
    root[NAME] = "root"
    mid = web.Application()  # no middlewares of its own
    mid[NAME] = "mid"
    leaf = web.Application(middlewares=[recording_middleware(events, "l")])
    leaf[NAME] = "leaf"
    leaf.router.add_get("/x", handler, name="x")
    mid.add_subapp("/leaf", leaf)
    root.add_subapp("/mid", mid)
    assert str(leaf.router["x"].url_for()) == "/mid/leaf/x"
    client = await aiohttp_client(root)
    resp = await client.get("/mid/leaf/x")
    assert await resp.text() == "root,mid,leaf"
    assert events == ["r in root", "l in leaf", "handler leaf", "l out", "r out"]
    events.clear()
    assert (await client.get("/mid/leaf/none")).status == 404
    assert events == ["r in root", "l in leaf"]  # the leaf's 404 ran both chains

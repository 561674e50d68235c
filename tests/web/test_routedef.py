"""Route definitions: web.get/post/... values and RouteTableDef decorators."""

from __future__ import annotations

from pathlib import Path

from forkloop import web


async def test_route_helpers_register_every_method(aiohttp_client) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=request.method)

    class ItemView(web.View):
        async def get(self) -> web.Response:
            return web.Response(text="view-get")

    app = web.Application()
    routes = app.add_routes(
        [
            web.get("/r", handler, name="r"),
            web.post("/r", handler),
            web.put("/r", handler),
            web.patch("/r", handler),
            web.delete("/r", handler),
            web.options("/r", handler),
            web.head("/h", handler),
            web.route("PURGE", "/r", handler),
            web.view("/v", ItemView),
        ]
    )
    assert [r.method for r in routes] == [
        "GET",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
        "HEAD",
        "PURGE",
        "*",
    ]
    client = await aiohttp_client(app)
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PURGE"):
        resp = await client.request(method, "/r")
        assert await resp.text() == method
    assert (await client.head("/r")).status == 200  # allow_head default
    assert (await client.head("/h")).status == 200
    assert await (await client.get("/v")).text() == "view-get"
    assert (await client.post("/v")).status == 405


async def test_route_table_def_decorators(aiohttp_client) -> None:
    routes = web.RouteTableDef()

    @routes.get("/", name="index")
    async def index(request: web.Request) -> web.Response:
        return web.Response(text="index")

    @routes.post("/items")
    async def create(request: web.Request) -> web.Response:
        return web.Response(text="created", status=201)

    @routes.route("*", "/any")
    async def anything(request: web.Request) -> web.Response:
        return web.Response(text="any")

    @routes.view("/view")
    class MyView(web.View):
        async def get(self) -> web.Response:
            return web.Response(text="view")

    for decorator in (routes.put, routes.patch, routes.delete, routes.head, routes.options):
        decorator("/m")(anything)

    assert len(routes) == 9
    assert isinstance(routes[0], web.RouteDef)
    assert routes[0].kwargs == {"name": "index"}
    assert "RouteDef GET / -> 'index'" in repr(routes[0])
    assert routes[0] in routes
    assert len(routes[1:3]) == 2
    assert index.__name__ == "index"  # decorators return the handler unchanged

    app = web.Application()
    app.add_routes(routes)
    client = await aiohttp_client(app)
    assert await (await client.get("/")).text() == "index"
    assert (await client.post("/items")).status == 201
    assert await (await client.delete("/any")).text() == "any"
    assert await (await client.get("/view")).text() == "view"
    assert await (await client.patch("/m")).text() == "any"
    assert str(app.router["index"].url_for()) == "/"


def test_static_def_repr_and_value(tmp_path: Path) -> None:
    routes = web.RouteTableDef()
    routes.static("/static", tmp_path, show_index=True)
    definition = routes[0]
    assert isinstance(definition, web.StaticDef)
    assert definition.prefix == "/static"
    assert definition.kwargs == {"show_index": True}
    assert "StaticDef /static" in repr(definition)
    assert web.static("/s", tmp_path) == web.StaticDef("/s", tmp_path, {})

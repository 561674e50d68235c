"""Routes declared with ``web.RouteTableDef`` decorators, then added in one call.

Try:   curl http://localhost:8080/                      -> Hello, world
       curl -d 'ping' http://localhost:8080/echo        -> echo: ping
       curl http://localhost:8080/users/42              -> user 42
"""

from __future__ import annotations

from forkloop import web

routes = web.RouteTableDef()


@routes.get("/")
async def hello(request: web.Request) -> web.Response:
    return web.Response(text="Hello, world")


@routes.post("/echo")
async def echo(request: web.Request) -> web.Response:
    return web.Response(text="echo: " + await request.text())


@routes.get("/users/{id}")
async def user(request: web.Request) -> web.Response:
    return web.Response(text=f"user {request.match_info['id']}")


def init_func(argv: list[str] | None = None) -> web.Application:
    app = web.Application()
    app.add_routes(routes)
    return app


if __name__ == "__main__":
    web.run_app(init_func())

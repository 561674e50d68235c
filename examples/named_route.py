"""A named route, and a URL built from its name with a query string.

Try:   curl http://localhost:8080/root     -> /root?a=b&c=d
"""

from __future__ import annotations

from forkloop import web

routes = web.RouteTableDef()


@routes.get("/root", name="root")
async def handler(request: web.Request) -> web.Response:
    url = request.app.router["root"].url_for().with_query({"a": "b", "c": "d"})
    return web.Response(text=str(url))


def init_func(argv: list[str] | None = None) -> web.Application:
    app = web.Application()
    app.add_routes(routes)
    return app


if __name__ == "__main__":
    web.run_app(init_func())

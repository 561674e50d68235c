"""A class-based view: one class, one method per HTTP method.

Try:   curl http://localhost:8080/path/to              -> GET /path/to
       curl -X POST http://localhost:8080/path/to      -> POST /path/to
       curl -i -X DELETE http://localhost:8080/path/to -> 405, Allow: GET,POST
"""

from __future__ import annotations

from forkloop import web


class MyView(web.View):
    async def get(self) -> web.Response:
        return web.Response(text=f"GET {self.request.path}")

    async def post(self) -> web.Response:
        return web.Response(text=f"POST {self.request.path}")


def init_func(argv: list[str] | None = None) -> web.Application:
    app = web.Application()
    app.add_routes([web.view("/path/to", MyView)])
    return app


if __name__ == "__main__":
    web.run_app(init_func())

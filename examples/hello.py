"""Hello world: the smallest forkloop application.

Run:   python examples/hello.py            (serves http://localhost:8080)
  or:  python -m forkloop.web -P 8080 examples.hello:init_func
Try:   curl http://localhost:8080/         -> Hello, world
"""

from __future__ import annotations

from forkloop import web


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="Hello, world")


def init_func(argv: list[str] | None = None) -> web.Application:
    app = web.Application()
    app.add_routes([web.get("/", hello)])
    return app


if __name__ == "__main__":
    web.run_app(init_func())

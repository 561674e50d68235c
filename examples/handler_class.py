"""Handlers as methods of a class: keep related handlers (and their state) together.

Try:   curl http://localhost:8080/intro            -> Hello, world
       curl http://localhost:8080/greet/Alice      -> Hello, Alice
"""

from __future__ import annotations

from forkloop import web


class Handler:
    def __init__(self, greeting: str = "Hello") -> None:
        self.greeting = greeting

    async def handle_intro(self, request: web.Request) -> web.Response:
        return web.Response(text=f"{self.greeting}, world")

    async def handle_greeting(self, request: web.Request) -> web.Response:
        name = request.match_info.get("name", "Anonymous")
        return web.Response(text=f"{self.greeting}, {name}")


def init_func(argv: list[str] | None = None) -> web.Application:
    handler = Handler()
    app = web.Application()
    app.add_routes(
        [
            web.get("/intro", handler.handle_intro),
            web.get("/greet/{name}", handler.handle_greeting),
        ]
    )
    return app


if __name__ == "__main__":
    web.run_app(init_func())

"""A middleware factory: a function that builds a configured middleware.

Try:   curl http://localhost:8080/     -> Hello wink
"""

from __future__ import annotations

from forkloop import web


def middleware_factory(text: str):  # returns a middleware
    @web.middleware
    async def sample_middleware(
        request: web.Request, handler: web.RequestHandler
    ) -> web.StreamResponse:
        resp = await handler(request)
        assert isinstance(resp, web.Response)
        resp.text = (resp.text or "") + text
        return resp

    return sample_middleware


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="Hello")


def init_func(argv: list[str] | None = None) -> web.Application:
    app = web.Application(middlewares=[middleware_factory(" wink")])
    app.router.add_get("/", hello)
    return app


if __name__ == "__main__":
    web.run_app(init_func())

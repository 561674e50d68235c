"""Middleware order: the first middleware listed is the outermost.

Try:   curl http://localhost:8080/   -> Hello
The server prints, for each request, exactly:
    Middleware 1 called
    Middleware 2 called
    Handler
    Middleware 2 finished
    Middleware 1 finished
"""

from __future__ import annotations

from forkloop import web


async def handler(request: web.Request) -> web.Response:
    print("Handler", flush=True)
    return web.Response(text="Hello")


@web.middleware
async def middleware1(request: web.Request, handler: web.RequestHandler) -> web.StreamResponse:
    print("Middleware 1 called", flush=True)
    response = await handler(request)
    print("Middleware 1 finished", flush=True)
    return response


@web.middleware
async def middleware2(request: web.Request, handler: web.RequestHandler) -> web.StreamResponse:
    print("Middleware 2 called", flush=True)
    response = await handler(request)
    print("Middleware 2 finished", flush=True)
    return response


def init_func(argv: list[str] | None = None) -> web.Application:
    app = web.Application(middlewares=[middleware1, middleware2])
    app.router.add_get("/", handler)
    return app


if __name__ == "__main__":
    web.run_app(init_func())

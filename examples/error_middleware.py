"""A middleware that turns every 404 into a JSON body.

Try:   curl http://localhost:8080/                -> Hello
       curl -i http://localhost:8080/nowhere      -> 404 {"error": "Not Found"}
       curl -i http://localhost:8080/gone         -> 404 {"error": "no such thing"}
"""

from __future__ import annotations

from forkloop import web


@web.middleware
async def error_middleware(request: web.Request, handler: web.RequestHandler) -> web.StreamResponse:
    try:
        response = await handler(request)
        if response.status != 404:
            return response
        message = response.reason
    except web.HTTPException as exc:
        if exc.status != 404:
            raise
        message = exc.text if exc.text and not exc.text.startswith("404:") else exc.reason
    return web.json_response({"error": message}, status=404)


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="Hello")


async def gone(request: web.Request) -> web.Response:
    raise web.HTTPNotFound(text="no such thing")


def init_func(argv: list[str] | None = None) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app.add_routes([web.get("/", hello), web.get("/gone", gone)])
    return app


if __name__ == "__main__":
    web.run_app(init_func())

"""Data sharing: application config, per-request values, per-response values.

``app[key]`` holds configuration, ``request[key]`` what middlewares learn about a request,
``response[key]`` what handlers tell the middlewares on the way out.
Try:   curl -i -H 'X-User: ann' http://localhost:8080/    -> Welcome to Demo, ann
                                                             X-Handled-By: greet
"""

from __future__ import annotations

from forkloop import web

site_name = web.AppKey("site_name", str)
user_key = web.RequestKey("user", str)
handled_by_key = web.ResponseKey("handled_by", str)


@web.middleware
async def user_middleware(request: web.Request, handler: web.RequestHandler) -> web.StreamResponse:
    request[user_key] = request.headers.get("X-User", "guest")
    response = await handler(request)
    response.headers["X-Handled-By"] = response.get(handled_by_key, "unknown")
    return response


async def greet(request: web.Request) -> web.Response:
    response = web.Response(text=f"Welcome to {request.app[site_name]}, {request[user_key]}")
    response[handled_by_key] = "greet"
    return response


def init_func(argv: list[str] | None = None) -> web.Application:
    app = web.Application(middlewares=[user_middleware])
    app[site_name] = "Demo"
    app.router.add_get("/", greet)
    return app


if __name__ == "__main__":
    web.run_app(init_func())

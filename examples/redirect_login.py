"""Redirect to a named route: the login page is found by name, not by a hard-coded path.

Try:   curl -i http://localhost:8080/private    -> 302 Location: /login
       curl -L http://localhost:8080/private    -> Please log in
"""

from __future__ import annotations

from forkloop import web


async def private(request: web.Request) -> web.Response:
    location = request.app.router["login"].url_for()
    raise web.HTTPFound(location=location)


async def login(request: web.Request) -> web.Response:
    return web.Response(text="Please log in")


def init_func(argv: list[str] | None = None) -> web.Application:
    app = web.Application()
    app.router.add_get("/private", private)
    app.router.add_get("/login", login, name="login")
    return app


if __name__ == "__main__":
    web.run_app(init_func())

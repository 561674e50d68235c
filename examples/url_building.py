"""Reverse URL building for a resource with a variable part (``user-info``).

Try:   curl http://localhost:8080/alice/info     -> user alice, see /john_doe/info?a=b
"""

from __future__ import annotations

from forkloop import web


async def user_info(request: web.Request) -> web.Response:
    user = request.match_info["user"]
    url = request.app.router["user-info"].url_for(user="john_doe").with_query("a=b")
    return web.Response(text=f"user {user}, see {url}")


def init_func(argv: list[str] | None = None) -> web.Application:
    app = web.Application()
    resource = app.router.add_resource("/{user}/info", name="user-info")
    resource.add_route("GET", user_info)
    return app


if __name__ == "__main__":
    web.run_app(init_func())

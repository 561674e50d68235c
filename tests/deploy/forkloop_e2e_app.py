"""A stand-in application for tests/deploy/test_container_e2e.py (the container's args with this
APP in place of the image's default): a page and a slow endpoint to be in flight during a drain."""

from __future__ import annotations

import asyncio

from forkloop import web


async def index(request: web.Request) -> web.Response:
    return web.Response(text="forkloop deploy e2e")


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "3")))
    return web.Response(text="done")


def create_app() -> web.Application:
    app = web.Application()
    app.add_routes([web.get("/", index), web.get("/slow", slow)])
    return app

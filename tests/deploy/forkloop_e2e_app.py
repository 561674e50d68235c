"""A stand-in application for tests/deploy/test_container_e2e.py, run with the container's args
in place of the image's default APP: a page, a slow endpoint to keep a request in flight during a
drain, and an endpoint that leaves an orphan process for PID 1 to reap."""

from __future__ import annotations

import asyncio

from forkloop import web


async def index(request: web.Request) -> web.Response:
    return web.Response(text="forkloop deploy e2e")


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "3")))
    return web.Response(text="done")


async def orphan(request: web.Request) -> web.Response:
    """Leave an orphan behind: a shell starts `sleep` in the background and exits at once.

    The shell is this worker's child and is reaped here; the `sleep` is re-parented to the
    nearest reaper (PID 1 in a container: the supervisor), which must reap it when it ends.
    """
    seconds = float(request.query.get("s", "0.2"))
    proc = await asyncio.create_subprocess_exec("sh", "-c", f"sleep {seconds} & exit 0")
    await proc.wait()
    return web.Response(text="orphaned")


def create_app() -> web.Application:
    app = web.Application()
    app.add_routes([web.get("/", index), web.get("/slow", slow), web.get("/orphan", orphan)])
    return app

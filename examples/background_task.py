"""A background task started with the app and cancelled (and awaited) at cleanup.

Try:   curl http://localhost:8080/     -> ticks: N   (N grows ten times a second)
The server prints "background task stopped" when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from forkloop import web

ticks_key = web.AppKey("ticks", list)
task_key = web.AppKey("ticker", asyncio.Task)


async def ticker(app: web.Application) -> None:
    try:
        while True:
            app[ticks_key].append(1)
            await asyncio.sleep(0.1)
    except asyncio.CancelledError:
        print("background task stopped", flush=True)
        raise


async def background_tasks(app: web.Application) -> AsyncIterator[None]:
    app[ticks_key] = []
    app[task_key] = asyncio.create_task(ticker(app))
    yield
    app[task_key].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await app[task_key]


async def show(request: web.Request) -> web.Response:
    return web.Response(text=f"ticks: {len(request.app[ticks_key])}")


def init_func(argv: list[str] | None = None) -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(background_tasks)
    app.router.add_get("/", show)
    return app


if __name__ == "__main__":
    web.run_app(init_func())

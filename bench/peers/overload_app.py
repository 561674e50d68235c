"""The overload benchmark's app: a handler whose capacity is set by a downstream, not the CPU.

``GET /work`` takes one of ``SLOTS`` downstream slots (an ``asyncio.Semaphore``: a connection
pool to a database, say) and holds it for ``WORK_S`` (an ``await asyncio.sleep``), so the
server's capacity is ``SLOTS / WORK_S`` requests per second on any machine, as long as the
server's own CPU per request is well below ``WORK_S / SLOTS``; beyond it, requests wait for a
slot, which is the queue overload protection bounds. ``GET /`` answers the harness's readiness
check. The same handler code runs on forkloop and aiohttp (``web`` chosen by ``--framework``);
``asgi`` is the raw ASGI twin for uvicorn (``uvicorn overload_app:asgi --app-dir bench/peers``).

    python bench/peers/overload_app.py --framework forkloop --port 8081 --max-concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

SLOTS = int(os.environ.get("OVERLOAD_SLOTS", "2"))
WORK_S = float(os.environ.get("OVERLOAD_WORK_S", "0.002"))
MESSAGE = b"Hello, World!"

_slots: asyncio.Semaphore | None = None


async def downstream() -> None:
    """One call to the downstream: wait for a slot, hold it ``WORK_S``."""
    global _slots
    if _slots is None:
        _slots = asyncio.Semaphore(SLOTS)
    async with _slots:
        await asyncio.sleep(WORK_S)


def build_app(web: Any) -> Any:
    async def plaintext(request: Any) -> Any:
        return web.Response(body=MESSAGE, content_type="text/plain")

    async def work(request: Any) -> Any:
        await downstream()
        return web.Response(body=b"done", content_type="text/plain")

    app = web.Application()
    app.router.add_get("/", plaintext)
    app.router.add_get("/work", work)
    return app


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/work":
        await downstream()
        body = b"done"
    else:
        body = MESSAGE
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=("forkloop", "aiohttp"), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-concurrency", type=int, default=None)
    parser.add_argument("--max-queue-time", type=float, default=None)
    args = parser.parse_args()
    kwargs: dict[str, Any] = {"host": args.host, "port": args.port, "access_log": None}
    if args.framework == "aiohttp":
        import uvloop
        from aiohttp import web

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        from forkloop import web  # type: ignore[no-redef]

        kwargs["max_concurrency"] = args.max_concurrency
        kwargs["max_queue_time"] = args.max_queue_time
    web.run_app(build_app(web), print=None, **kwargs)


if __name__ == "__main__":
    main()

"""``forkloop.metrics.setup(app)``: one process, /metrics on the app, real requests."""

from __future__ import annotations

import aiohttp

import forkloop.metrics
from forkloop import web


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


async def test_routes_statuses_and_unknown_methods() -> None:
    async def user(request: web.Request) -> web.Response:
        return web.Response(text="u")

    app = web.Application()
    app.router.add_route("*", "/users/{id}", user)
    forkloop.metrics.setup(app)
    runner, port = await _serve(app)
    try:
        async with aiohttp.ClientSession() as session:
            for i in range(3):
                async with session.get(f"http://127.0.0.1:{port}/users/{i}") as r:
                    assert r.status == 200
            async with session.get(f"http://127.0.0.1:{port}/nowhere/42") as r:
                assert r.status == 404
            async with session.request("PURGE", f"http://127.0.0.1:{port}/users/9") as r:
                assert r.status == 200
            async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
                assert r.status == 200
                assert r.headers["Content-Type"].startswith("text/plain")
                text = await r.text()
    finally:
        await runner.cleanup()
    lines = [line for line in text.splitlines() if line.startswith("http_server_request_dur")]
    count = [line for line in lines if "_count{" in line]
    assert any('http_route="/users/{id}"' in c and "GET" in c and c.endswith(" 3.0") for c in count)
    # unmatched requests share one route value: the raw path never becomes a label
    assert any('http_route="_unmatched"' in c and '"404"' in c for c in count)
    assert "/nowhere/42" not in text
    assert any('http_request_method="_OTHER"' in c for c in count)
    assert "http_server_active_requests{" in text


async def test_setup_without_mounting() -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app = web.Application()
    app.router.add_get("/", hello)
    store = forkloop.metrics.setup(app, path=None)
    runner, port = await _serve(app)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
                assert r.status == 404
            async with session.get(f"http://127.0.0.1:{port}/") as r:
                assert r.status == 200
    finally:
        await runner.cleanup()
    counts = {labels[1]: series.duration.count for labels, series in store.series().items()}
    assert counts == {"_unmatched": 1, "/": 1}

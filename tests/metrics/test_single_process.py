"""``forkloop.metrics.setup(app)``: one process, /metrics on the app, real requests."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

import forkloop.metrics
import forkloop.metrics.observer as observer_module
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


def _hello_app() -> tuple[web.Application, forkloop.metrics.Store]:
    """``GET /`` answering ``hi``, with metrics recorded but not mounted."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app = web.Application()
    app.router.add_get("/", hello)
    return app, forkloop.metrics.setup(app, path=None)


async def test_setup_without_mounting() -> None:
    app, store = _hello_app()
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


async def _raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        return await asyncio.wait_for(reader.read(), 10)  # HTTP/1.0: the server closes
    finally:
        writer.close()


async def test_every_label_set_counted_exactly_on_shared_routes() -> None:
    # Requests alternate on one route between statuses, methods and protocol versions, so the
    # observer's per-route cache keeps being confirmed and replaced: every count must still be
    # exact, and the body sizes land in their buckets.
    async def user(request: web.Request) -> web.Response:
        if request.match_info["id"] == "missing":
            raise web.HTTPNotFound(text="no such user")
        return web.Response(text="u")

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"a" * 50)
        await asyncio.sleep(0.03)
        await response.write(b"b" * 100)
        return response

    app = web.Application()
    app.router.add_get("/users/{id}", user)
    app.router.add_post("/echo", echo)
    app.router.add_get("/stream", stream)
    store = forkloop.metrics.setup(app, path=None)
    runner, port = await _serve(app)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(3):
                for path in ("/users/1", "/users/missing", "/nowhere", "/users/2"):
                    async with session.get(base + path) as r:
                        await r.read()
                reply = await _raw(port, b"GET /users/3 HTTP/1.0\r\nHost: x\r\n\r\n")
                assert reply.startswith(b"HTTP/1.0 200 ")
                async with session.head(base + "/users/2") as r:
                    assert r.status == 200
            async with session.post(base + "/echo", data=b"x" * 150) as r:
                assert await r.read() == b"x" * 150
            async with session.get(base + "/stream") as r:
                assert len(await r.read()) == 150
    finally:
        await runner.cleanup()
    series = {labels: s for labels, s in store.series().items()}
    counts = {labels: s.duration.count for labels, s in series.items()}
    assert counts == {
        ("GET", "/users/{id}", "200", "http", "1.1"): 6,
        ("GET", "/users/{id}", "404", "http", "1.1"): 3,
        ("GET", "_unmatched", "404", "http", "1.1"): 3,
        ("HEAD", "/users/{id}", "200", "http", "1.1"): 3,
        ("POST", "/echo", "200", "http", "1.1"): 1,
        ("GET", "/stream", "200", "http", "1.1"): 1,
        ("GET", "/users/{id}", "200", "http", "1.0"): 3,
    }
    echo_series = series[("POST", "/echo", "200", "http", "1.1")]
    assert echo_series.request_size.counts[1] == 1
    assert echo_series.request_size.total == 150
    assert echo_series.response_size.counts[1] == 1
    streamed = series[("GET", "/stream", "200", "http", "1.1")]
    assert streamed.response_size.total == 150
    # Timed to the last byte, not to the head: the body waited 30 ms.
    assert streamed.duration.total >= 0.03
    assert streamed.duration.counts[0] == 0


async def test_pending_values_are_folded_while_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing scrapes here: the observer's own timer folds what requests left pending.
    monkeypatch.setattr(observer_module, "FOLD_INTERVAL_S", 0.02)

    app, store = _hello_app()
    runner, port = await _serve(app)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(5):
                async with session.get(f"http://127.0.0.1:{port}/") as r:
                    await r.read()
            (series,) = store.series().values()
            for _ in range(100):
                if series.count == 5:
                    break
                await asyncio.sleep(0.02)
            assert series.count == 5  # folded with no read
            assert series.spending == []
    finally:
        await runner.cleanup()


async def test_shed_requests_are_counted_as_shed_not_as_requests() -> None:
    release = asyncio.Event()

    async def hold(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="held")

    app = web.Application()
    app.router.add_get("/hold", hold)
    forkloop.metrics.setup(app)
    runner = web.AppRunner(app, access_log=None, max_concurrency=1, max_queue_time=30)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            held = asyncio.ensure_future(session.get(f"http://127.0.0.1:{port}/hold"))
            while runner.server is None or runner.server.admission.in_flight == 0:  # type: ignore[union-attr]  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            for _ in range(3):
                async with session.get(f"http://127.0.0.1:{port}/hold") as r:
                    assert r.status == 503
            release.set()
            async with await held as r:
                assert r.status == 200
            async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
                text = await r.text()
    finally:
        await runner.cleanup()
    assert 'http_server_requests_shed_total{reason="concurrency",worker="0"} 3.0' in text
    assert 'http_server_requests_shed_total{reason="queue_time",worker="0"} 0.0' in text
    # Admitted: /hold and the /metrics request itself (sampled before it was answered).
    assert 'http_server_request_queue_duration_seconds_count{worker="0"}' in text
    assert 'http_response_status_code="503"' not in text

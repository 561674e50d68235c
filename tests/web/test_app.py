"""Application: state, AppKey, freezing, signals, cleanup contexts, background tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from forkloop import web
from forkloop.test_utils import TestClient, TestServer


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def test_state_with_str_and_app_keys() -> None:
    app = web.Application()
    counter = web.AppKey("counter", int)
    with pytest.warns(web.NotAppKeyWarning, match="web.AppKey instances"):
        app["name"] = "x"  # a plain str key works, with aiohttp's warning
    app[counter] = 3
    assert app["name"] == "x"
    assert app[counter] == 3
    assert app.get(counter) == 3
    assert app.get("missing", 5) == 5
    assert set(app) == {"name", counter}
    assert len(app) == 2
    del app["name"]
    assert "name" not in app
    assert "counter" in repr(counter)
    assert "int" in repr(counter)
    assert counter.name.endswith("counter")
    with pytest.raises(TypeError, match=r"keys are str or web\.AppKey"):
        app[1] = 2  # type: ignore[index]


async def test_request_and_response_keys(aiohttp_client) -> None:
    user_key = web.RequestKey("user", str)
    seen_key = web.ResponseKey("seen", bool)

    @web.middleware
    async def mw(request: web.Request, handler):
        request[user_key] = "ann"
        response = await handler(request)
        response.headers["X-Seen"] = str(response[seen_key])
        return response

    async def handler(request: web.Request) -> web.Response:
        response = web.Response(text=request[user_key])
        response[seen_key] = True
        return response

    app = web.Application(middlewares=[mw])
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    resp = await client.get("/")
    assert await resp.text() == "ann"
    assert resp.headers["X-Seen"] == "True"
    assert repr(user_key).startswith("<RequestKey(")


def test_app_key_names_are_qualified_by_the_creating_module() -> None:
    assert web.AppKey("k").name == f"{__name__}.k"
    assert web.AppKey[int]("k").name == f"{__name__}.k"


def test_app_key_sorts_before_str() -> None:
    a = web.AppKey("a")
    b = web.AppKey("b")
    assert sorted([b, a]) == [a, b]
    assert a < "z"  # type: ignore[operator]


def test_changing_a_frozen_app_warns() -> None:
    app = web.Application()
    app.freeze()
    with pytest.warns(DeprecationWarning, match="Changing state of started"):
        app[web.AppKey("x", int)] = 1


def test_app_is_hashable_and_truthy_when_empty() -> None:
    app = web.Application()
    assert app
    assert {app: 1}[app] == 1
    assert app() is app
    assert app != web.Application()


def test_signals_freeze() -> None:
    app = web.Application()

    async def cb(app: web.Application) -> None:
        pass

    app.on_startup.append(cb)
    assert not app.on_response_prepare
    app.freeze()
    assert app.frozen
    with pytest.raises(RuntimeError, match="Cannot modify frozen list"):
        app.on_startup.append(cb)
    with pytest.raises(RuntimeError, match="Cannot modify frozen list"):
        app.middlewares.append(cb)  # type: ignore[arg-type]


async def test_unfrozen_signal_cannot_be_sent() -> None:
    app = web.Application()
    with pytest.raises(RuntimeError, match="non-frozen signal"):
        await app.on_shutdown.send(app)


async def test_lifecycle_order_with_subapps_and_cleanup_ctx() -> None:
    events: list[str] = []
    app = web.Application()
    sub = web.Application()

    def recorder(label: str):
        async def cb(a: web.Application) -> None:
            events.append(f"{label}:{'sub' if a is sub else 'app'}")

        return cb

    async def ctx(a: web.Application) -> AsyncIterator[None]:
        events.append("ctx-start")
        yield
        events.append("ctx-stop")

    app.cleanup_ctx.append(ctx)
    app.on_startup.append(recorder("startup"))
    app.on_shutdown.append(recorder("shutdown"))
    app.on_cleanup.append(recorder("cleanup"))
    sub.on_startup.append(recorder("startup"))
    sub.on_cleanup.append(recorder("cleanup"))
    sub.router.add_get("/", ok)
    app.add_subapp("/sub", sub)
    app.router.add_get("/", ok)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/sub/")).status == 200
        assert events == ["ctx-start", "startup:app", "startup:sub"]
    assert events[3:] == ["shutdown:app", "ctx-stop", "cleanup:app", "cleanup:sub"]


async def test_cleanup_ctx_runs_only_started_entries_and_reports_errors_together() -> None:
    events: list[str] = []

    async def good(app: web.Application) -> AsyncIterator[None]:
        events.append("good-start")
        yield
        events.append("good-stop")

    async def failing_cleanup_1(app: web.Application) -> AsyncIterator[None]:
        yield
        raise ValueError("one")

    async def failing_cleanup_2(app: web.Application) -> AsyncIterator[None]:
        yield
        raise KeyError("two")

    async def broken_start(app: web.Application) -> AsyncIterator[None]:
        raise RuntimeError("startup failed")
        yield  # pragma: no cover

    async def never(app: web.Application) -> AsyncIterator[None]:
        events.append("never-start")
        yield
        events.append("never-stop")  # pragma: no cover

    app = web.Application()
    for cb in (good, failing_cleanup_1, failing_cleanup_2, broken_start, never):
        app.cleanup_ctx.append(cb)
    app.on_startup.freeze()
    with pytest.raises(RuntimeError, match="startup failed"):
        await app.startup()
    with pytest.raises(web.CleanupError) as info:
        await app.cleanup()
    assert [type(e) for e in info.value.exceptions] == [KeyError, ValueError]
    assert events == ["good-start", "good-stop"]


async def test_cleanup_ctx_single_error_is_raised_as_is() -> None:
    async def bad(app: web.Application) -> AsyncIterator[None]:
        yield
        raise ValueError("only one")

    async def two_yields(app: web.Application) -> AsyncIterator[None]:
        yield
        yield

    app = web.Application()
    app.cleanup_ctx.append(bad)
    app.freeze()
    await app.startup()
    with pytest.raises(ValueError, match="only one"):
        await app.cleanup()

    app2 = web.Application()
    app2.cleanup_ctx.append(two_yields)
    app2.freeze()
    await app2.startup()
    with pytest.raises(RuntimeError, match="generator didn't stop"):
        await app2.cleanup()


async def test_background_task_cancelled_and_awaited_at_cleanup() -> None:
    state: dict[str, object] = {}
    ticks: list[int] = []

    async def ticker() -> None:
        try:
            while True:
                ticks.append(1)
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            state["cancelled"] = True
            raise

    async def background(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(ticker())
        yield
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        state["done"] = task.done()

    app = web.Application()
    app.cleanup_ctx.append(background)
    app.router.add_get("/", ok)
    async with TestClient(TestServer(app)) as client:
        await client.get("/")
        await asyncio.sleep(0.05)
    assert ticks
    assert state == {"cancelled": True, "done": True}


async def test_on_response_prepare_fires_for_plain_streamed_and_error_responses(
    aiohttp_client,
) -> None:
    async def add_header(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Prepared"] = "yes"

    async def streamed(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"chunk")
        await resp.write_eof()
        return resp

    sub_events: list[str] = []

    async def sub_hook(request: web.Request, response: web.StreamResponse) -> None:
        sub_events.append(request.path)

    app = web.Application()
    app.on_response_prepare.append(add_header)
    app.router.add_get("/plain", ok)
    app.router.add_get("/stream", streamed)
    sub = web.Application()
    sub.on_response_prepare.append(sub_hook)
    sub.router.add_get("/x", ok)
    app.add_subapp("/sub", sub)
    client = await aiohttp_client(app)
    for path in ("/plain", "/stream", "/missing", "/sub/x"):
        resp = await client.get(path)
        assert resp.headers.get("X-Prepared") == "yes", path
        await resp.read()
    assert sub_events == ["/sub/x"]


async def test_client_max_size_is_used(aiohttp_client) -> None:
    async def read(request: web.Request) -> web.Response:
        return web.Response(text=str(len(await request.read())))

    app = web.Application(client_max_size=10)
    app.router.add_post("/", read)
    client = await aiohttp_client(app)
    assert await (await client.post("/", data=b"x" * 10)).text() == "10"
    assert (await client.post("/", data=b"x" * 11)).status == 413


async def test_routes_added_in_on_startup_are_served(aiohttp_client) -> None:
    async def late_routes(app: web.Application) -> None:
        app.router.add_get("/late", ok)

    app = web.Application()
    app.on_startup.append(late_routes)
    client = await aiohttp_client(app)
    assert (await client.get("/late")).status == 200


def test_application_argument_errors() -> None:
    with (
        pytest.warns(DeprecationWarning, match="router argument is deprecated"),
        pytest.raises(TypeError, match="UrlDispatcher"),
    ):
        web.Application(router=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not callable"):
        web.Application(middlewares=[1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="Prefix must be str"):
        web.Application().add_subapp(1, web.Application())  # type: ignore[arg-type]


async def test_handler_args_reach_the_server(aiohttp_client) -> None:
    app = web.Application(handler_args={"max_line_size": 100})
    app.router.add_get("/{tail:.*}", ok)
    client = await aiohttp_client(app)
    assert (await client.get("/short")).status == 200
    assert (await client.get("/" + "x" * 200)).status == 414

"""``dispatch.AppDispatch``: the compiled branch of ``Application._handle`` for a request to a
plain route the router has already answered.

Each scenario sends the same request twice over a real socket: the first goes through
``Application._handle`` (which resolves and remembers the route), the second through the
branch. What the handler sees (match info, ``request.app``, middlewares) and what the client
gets must be the same both times; a counter on ``Application._handle`` shows which requests
took the general path.
"""

from __future__ import annotations

from typing import Any

import pytest

from forkloop import web
from forkloop.core.web.app import Application
from forkloop.core.web.dispatch import AppDispatch
from forkloop.core.web.urldispatcher import UrlDispatcher


@pytest.fixture
def general_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths (request-targets) that went through ``Application._handle``."""
    calls: list[str] = []
    original = Application._handle

    async def counted(self: Application, request: Any) -> Any:
        calls.append(request.raw_path)
        return await original(self, request)

    monkeypatch.setattr(Application, "_handle", counted)
    return calls


def _seen(request: web.Request) -> dict[str, Any]:
    info = request.match_info
    return {
        "route": info.route.resource.canonical if info.route.resource else None,
        "method": info.route.method,
        "apps": [id(app) for app in info.apps],
        "current_app": id(info.current_app),
        "app": id(request.app),
        "frozen": info._frozen,
        "dict": dict(info),
        "type": type(info).__name__,
    }


def _app(*, middlewares: tuple[Any, ...] = ()) -> tuple[web.Application, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    app = web.Application(middlewares=middlewares)

    async def plain(request: web.Request) -> web.Response:
        seen.append(_seen(request))
        return web.Response(text=f"plain {request.method} {request.path_qs}")

    async def posted(request: web.Request) -> web.Response:
        seen.append(_seen(request))
        return web.Response(text=f"posted {await request.text()}")

    def generator(request: web.Request) -> Any:  # not a coroutine function: fails when awaited
        yield None

    app.router.add_get("/plain", plain)
    app.router.add_post("/posted", posted)
    with pytest.warns(DeprecationWarning, match="Bare generators"):
        app.router.add_get("/generator", generator)
    app.router.add_get("/{name}", plain)
    return app, seen


async def _twice(client: Any, method: str, path: str, **kwargs: Any) -> list[Any]:
    answers = []
    for _ in range(2):
        async with client.request(method, path, **kwargs) as resp:
            answers.append((resp.status, await resp.text(), resp.headers.get("Content-Type")))
    return answers


async def test_server_handler_is_the_dispatch_for_a_plain_app(aiohttp_client: Any) -> None:
    app, _ = _app()
    client = await aiohttp_client(app)
    assert isinstance(client.server.runner.server.handler, AppDispatch)


async def test_second_request_takes_the_branch_and_sees_the_same(
    aiohttp_client: Any, general_calls: list[str]
) -> None:
    app, seen = _app()
    client = await aiohttp_client(app)
    first, second = await _twice(client, "GET", "/plain")
    assert first == second == (200, "plain GET /plain", "text/plain; charset=utf-8")
    assert general_calls == ["/plain"]  # the second one took the branch
    assert seen[0] == seen[1]
    assert seen[1]["apps"] == [id(app)]
    assert seen[1]["app"] == id(app)
    assert seen[1]["frozen"] is True
    assert seen[1]["dict"] == {}


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/plain?x=1", {}),  # a query: request_path() decides
        ("GET", "/pl%20ain", {}),  # a percent-escape: request_path() decodes
        ("GET", "/other", {}),  # a dynamic route: never remembered
        ("POST", "/plain", {}),  # a method the path's route does not take: 405
        ("GET", "/missing/deeper", {}),  # no route: 404
        ("POST", "/posted", {"data": b"abc", "headers": {"Expect": "100-continue"}}),
    ],
)
async def test_other_requests_take_the_general_path(
    aiohttp_client: Any, general_calls: list[str], method: str, path: str, kwargs: Any
) -> None:
    app, seen = _app()
    client = await aiohttp_client(app)
    await _twice(client, "GET", "/plain")  # the router remembers /plain
    general_calls.clear()
    first, second = await _twice(client, method, path, **kwargs)
    assert first == second
    assert len(general_calls) == 2
    assert all(entry == seen[0] for entry in seen[:2])


async def test_expect_on_a_remembered_route_takes_the_general_path(
    aiohttp_client: Any, general_calls: list[str]
) -> None:
    app, _ = _app()
    client = await aiohttp_client(app)
    first, second = await _twice(
        client, "POST", "/posted", data=b"abc", headers={"Expect": "100-continue"}
    )
    plain = await _twice(client, "POST", "/posted", data=b"abc")
    assert first == second == plain[0] == plain[1] == (200, "posted abc", plain[0][2])
    assert general_calls == ["/posted", "/posted"]  # the two without Expect took the branch


async def test_middlewares_run_on_the_branch(aiohttp_client: Any, general_calls: list[str]) -> None:
    order: list[str] = []

    @web.middleware
    async def outer(request: web.Request, handler: Any) -> web.StreamResponse:
        order.append("outer")
        response = await handler(request)
        response.headers["X-Outer"] = "1"
        return response

    @web.middleware
    async def inner(request: web.Request, handler: Any) -> web.StreamResponse:
        order.append("inner")
        return await handler(request)

    app, seen = _app(middlewares=(outer, inner))
    client = await aiohttp_client(app)
    for _ in range(2):
        async with client.get("/plain") as resp:
            assert resp.status == 200
            assert resp.headers["X-Outer"] == "1"
    assert order == ["outer", "inner", "outer", "inner"]
    assert general_calls == ["/plain"]
    assert seen[0] == seen[1]


async def test_a_handler_that_is_not_a_coroutine_fails_the_same_on_the_branch(
    aiohttp_client: Any, general_calls: list[str]
) -> None:
    app, _ = _app()
    client = await aiohttp_client(app)
    first, second = await _twice(client, "GET", "/generator")
    assert first == second
    assert first[0] == 500
    assert general_calls == ["/generator"]


async def test_subclassed_router_or_handle_keeps_the_general_path(aiohttp_client: Any) -> None:
    class Router(UrlDispatcher):
        pass

    with pytest.warns(DeprecationWarning, match="router argument"):
        app = web.Application(router=Router())
    app.router.add_get("/", _ok)
    client = await aiohttp_client(app)
    assert not isinstance(client.server.runner.server.handler, AppDispatch)
    async with client.get("/") as resp:
        assert resp.status == 200


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def test_on_response_prepare_fires_on_the_branch(
    aiohttp_client: Any, general_calls: list[str]
) -> None:
    app, _ = _app()
    prepared: list[str] = []

    async def hook(request: web.Request, response: web.StreamResponse) -> None:
        prepared.append(request.path)
        response.headers["X-Hook"] = "1"

    app.on_response_prepare.append(hook)
    client = await aiohttp_client(app)
    for _ in range(2):
        async with client.get("/plain") as resp:
            assert resp.headers["X-Hook"] == "1"
    assert prepared == ["/plain", "/plain"]
    assert general_calls == ["/plain"]


async def test_each_request_on_the_branch_gets_its_own_match_info(
    aiohttp_client: Any, general_calls: list[str]
) -> None:
    """The branch builds the match info only when it is read: still one object per request,
    so what a handler writes into it is gone on the next keep-alive request."""
    app = web.Application()
    seen: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(dict(request.match_info))
        request.match_info["written"] = request.headers.get("X-N", "")
        return web.Response(text="ok")

    app.router.add_get("/w", handler)
    client = await aiohttp_client(app)
    for n in range(4):
        async with client.get("/w", headers={"X-N": str(n)}) as resp:
            assert resp.status == 200
    assert general_calls == ["/w"]
    assert seen == [{}, {}, {}, {}]


async def test_app_config_and_clone_on_the_branch_before_match_info(
    aiohttp_client: Any, general_calls: list[str]
) -> None:
    """``request.app``, ``config_dict`` and ``clone()`` read the routing first, on a request
    whose match info the branch has not built yet."""
    app = web.Application()
    name = web.AppKey("name", str)
    app[name] = "outer"
    seen: list[tuple[Any, ...]] = []

    async def handler(request: web.Request) -> web.Response:
        first = (request.app is app, request.config_dict[name])
        clone = request.clone()
        seen.append((*first, clone.match_info is request.match_info, clone.app is app))
        return web.Response(text="ok")

    app.router.add_get("/c", handler)
    client = await aiohttp_client(app)
    for _ in range(3):
        async with client.get("/c") as resp:
            assert resp.status == 200
    assert general_calls == ["/c"]
    assert seen == [(True, "outer", True, True)] * 3

"""Differential test of the warnings (issue 16, group 10): the same deprecated or discouraged
call made with ``aiohttp.web`` and with ``forkloop.web`` must emit the same warnings (category
name, base category and message), at the call (API level) or while a real client is served."""

from __future__ import annotations

import asyncio
import re
import uuid
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp import test_utils as aio_test_utils
from aiohttp import web as aio_web

from forkloop import test_utils as fl_test_utils
from forkloop import web as fl_web

MODULES = {aio_web: aio_test_utils, fl_web: fl_test_utils}


def recorded(caught: list[warnings.WarningMessage]) -> list[tuple[str, str, str]]:
    """What a warning filter or a test sees: the category's name, which of the two standard
    categories it is, and the message (object addresses removed)."""
    out = []
    for w in caught:
        base = "Deprecation" if issubclass(w.category, DeprecationWarning) else "User"
        if not issubclass(w.category, DeprecationWarning | UserWarning):
            base = w.category.__name__
        message = re.sub(r" at 0x[0-9a-f]+", "", str(w.message))
        out.append((w.category.__name__, base, message))
    return out


def key() -> str:
    # aiohttp warns once per plain request/response key and process: a fresh key each run.
    return f"plain-{uuid.uuid4().hex}"


def app_str_key(web: ModuleType) -> None:
    app = web.Application()
    name = key()
    app[name] = 1
    app[name] = 2  # the app warns every time
    app[web.AppKey("typed", int)] = 3


def request_str_key(web: ModuleType) -> None:
    req = MODULES[web].make_mocked_request("GET", "/")
    name = key()
    req[name] = 1
    req[name] = 2  # once per key
    req[web.RequestKey("typed", int)] = 3


def response_str_key(web: ModuleType) -> None:
    resp = web.Response()
    name = key()
    resp[name] = 1
    resp[name] = 2  # once per key
    resp[web.ResponseKey("typed", int)] = 3


def has_body(web: ModuleType) -> None:
    req = MODULES[web].make_mocked_request("GET", "/")
    assert req.has_body is False
    assert req.can_read_body is False  # the replacement does not warn


def app_loop(web: ModuleType) -> None:
    loop = asyncio.new_event_loop()
    try:
        web.Application(loop=loop)
    finally:
        loop.close()


def app_router(web: ModuleType) -> None:
    web.Application(router=web.UrlDispatcher())


def app_subclass(web: ModuleType) -> None:
    type("MyApplication", (web.Application,), {})


def plain_handler(web: ModuleType) -> None:
    def handler(request: Any) -> Any:  # not async
        return web.Response()  # pragma: no cover

    web.Application().router.add_get("/", handler)


def exception_body(web: ModuleType) -> None:
    web.HTTPNotFound(body=b"gone")
    web.HTTPFound("/there", body=b"moved")
    web.HTTPNotFound(text="no warning for text")


def old_style_middleware(web: ModuleType) -> None:
    async def factory(app: Any, handler: Any) -> Any:
        return handler  # pragma: no cover

    web.Application(middlewares=[factory]).freeze()


def app_debug_argument(web: ModuleType) -> None:
    web.Application(debug=True)
    web.Application(debug=False)


def app_debug_property(web: ModuleType) -> None:
    assert web.Application().debug is ...  # unset until the app meets its loop


def app_loop_property(web: ModuleType) -> None:
    assert web.Application().loop is None  # not running yet


def generator_handler(web: ModuleType) -> None:
    def handler(request: Any) -> Any:  # a bare generator
        yield  # pragma: no cover

    web.Application().router.add_get("/", handler)


API_CASES: list[Callable[[ModuleType], None]] = [
    app_str_key,
    request_str_key,
    response_str_key,
    has_body,
    app_loop,
    app_router,
    app_subclass,
    plain_handler,
    exception_body,
    old_style_middleware,
    app_debug_argument,
    app_debug_property,
    app_loop_property,
    generator_handler,
]


def run(case: Callable[[ModuleType], None], web: ModuleType) -> list[tuple[str, str, str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        case(web)
    return recorded(caught)


@pytest.mark.parametrize("case", API_CASES, ids=[c.__name__ for c in API_CASES])
def test_api_warnings_like_aiohttp(case: Callable[[ModuleType], None]) -> None:
    expected = run(case, aio_web)
    assert expected, "aiohttp emits a warning here: the case must exercise it"
    assert run(case, fl_web) == expected


async def test_make_handler_warns_like_aiohttp() -> None:
    for web, expected_type in ((aio_web, "Server"), (fl_web, "Server")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            server = web.Application().make_handler()
        assert type(server).__name__ == expected_type
        assert recorded(caught) == [
            (
                "DeprecationWarning",
                "Deprecation",
                "Application.make_handler(...) is deprecated, use AppRunner API instead",
            )
        ]


async def make_handler_answer(web: ModuleType) -> tuple[int, str]:
    app = web.Application()

    async def hello(request: Any) -> Any:
        return web.Response(text="hello")

    app.router.add_get("/", hello)
    with pytest.warns(DeprecationWarning, match="make_handler"):
        server = app.make_handler()
    listener = await asyncio.get_running_loop().create_server(server, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/") as resp,
        ):
            return resp.status, await resp.text()
    finally:
        await server.shutdown(1.0)
        listener.close()
        await listener.wait_closed()


async def test_make_handler_server_answers_like_aiohttp() -> None:
    expected = await make_handler_answer(aio_web)
    assert expected == (200, "hello")
    assert await make_handler_answer(fl_web) == expected


def build_served_app(web: ModuleType) -> Any:
    async def drained(request: Any) -> Any:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"part")
        await resp.drain()
        return resp

    async def returned(request: Any) -> Any:
        return web.HTTPConflict(text="returned")

    async def raised(request: Any) -> Any:
        raise web.HTTPConflict(text="raised")

    async def loops(request: Any) -> Any:
        same = request.loop is request.loop is asyncio.get_running_loop()  # warns once
        return web.Response(text=f"{same} {request.app.loop is request.loop}")

    app = web.Application()
    app.router.add_get("/drained", drained)
    app.router.add_get("/returned", returned)
    app.router.add_get("/raised", raised)
    app.router.add_get("/loops", loops)
    return app


async def served(web: ModuleType, path: str) -> tuple[Any, ...]:
    test_utils = MODULES[web]
    app = build_served_app(web)
    async with test_utils.TestClient(test_utils.TestServer(app)) as client:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            async with client.get(path) as resp:
                answer = (resp.status, await resp.text())
    return answer, [w for w in recorded(caught) if "unclosed" not in w[2]]


@pytest.mark.parametrize("path", ["/drained", "/returned", "/raised", "/loops"])
async def test_served_warnings_like_aiohttp(path: str) -> None:
    expected = await served(aio_web, path)
    got = await served(fl_web, path)
    if path != "/raised":
        assert expected[1], "aiohttp warns here: the case must exercise it"
    assert got == expected


def test_plain_key_warnings_name_the_callers_line() -> None:
    # The compiled request module has no frame of its own: the warning must still point here.
    request = fl_test_utils.make_mocked_request("GET", "/")
    response = fl_web.Response()
    pairs: list[tuple[Any, str]] = [(request, "attributed-request-key"), (response, "resp-key")]
    for storage, key in pairs:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            storage[key] = 1
        assert [w.filename for w in caught] == [__file__], caught

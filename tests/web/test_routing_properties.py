"""Property test: for random route tables and request paths, forkloop's router picks the same
route (or the same 404/405 with the same allowed methods) and the same path variables as
aiohttp's router -- aiohttp 3.x's resolution order is the specification."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web as aio_web
from aiohttp.test_utils import make_mocked_request as aio_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forkloop import web
from forkloop.test_utils import make_mocked_request

WORDS = ["a", "b", "users", "x1", "files"]
SEGMENTS = st.one_of(
    st.sampled_from(WORDS),
    st.just("{v}"),
    st.just(r"{n:\d+}"),
    st.sampled_from(WORDS).map(lambda w: w + "{s}"),
)
TAIL = st.sampled_from(["", "/", "/{rest:.*}"])
METHODS = st.sampled_from(["GET", "POST", "*"])


@st.composite
def route_patterns(draw: st.DrawFn) -> str:
    segments = draw(st.lists(SEGMENTS, min_size=0, max_size=3))
    path = "/" + "/".join(segments)
    tail = draw(TAIL)
    if path == "/" and tail:
        tail = "{rest:.*}" if tail == "/{rest:.*}" else ""
    path += tail
    names = [s for s in ("{v}", "{n:", "{s}", "{rest:") if path.count(s) > 1]
    if names:  # a variable used twice is a registration error: keep tables valid
        return "/"
    return path


REQUEST_SEGMENT = st.sampled_from(
    [*WORDS, "7", "42", "ab", "x1z", "", "a%20b", "x%2Fy", "%C3%A9", "1%25"]
)


@st.composite
def request_paths(draw: st.DrawFn) -> str:
    segments = draw(st.lists(REQUEST_SEGMENT, min_size=0, max_size=4))
    if segments and not segments[0]:
        # "//x" would be protocol-relative to aiohttp's mocked request (a host, not a path)
        segments[0] = "a"
    return "/" + "/".join(segments)


def make_handler(index: int) -> Callable[..., Any]:
    async def handler(request: Any) -> Any:
        raise NotImplementedError

    handler.index = index  # type: ignore[attr-defined]
    return handler


def register(router: Any, table: list[tuple[str, str]], handlers: list[Any]) -> None:
    for (method, path), handler in zip(table, handlers, strict=True):
        try:
            router.add_route(method, path, handler)
        except RuntimeError:  # "method already registered": both routers refuse alike
            continue


def outcome(match_info: Any) -> tuple[Any, ...]:
    exc = match_info.http_exception
    if exc is not None:
        return ("error", exc.status, frozenset(getattr(exc, "allowed_methods", ())))
    return ("route", match_info.handler.index, dict(match_info))


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    table=st.lists(st.tuples(METHODS, route_patterns()), min_size=1, max_size=8),
    requests=st.lists(st.tuples(st.sampled_from(["GET", "POST", "PUT"]), request_paths()),
                      min_size=1, max_size=6),
)  # fmt: skip
def test_resolution_matches_aiohttp(
    table: list[tuple[str, str]], requests: list[tuple[str, str]]
) -> None:
    async def run() -> None:
        handlers = [make_handler(i) for i in range(len(table))]
        ours = web.UrlDispatcher()
        theirs = aio_web.UrlDispatcher()
        register(ours, table, handlers)
        register(theirs, table, handlers)
        assert len(ours.routes()) == len(theirs.routes())
        for method, path in requests:
            expected = outcome(await theirs.resolve(aio_request(method, path)))
            got = outcome(await ours.resolve(make_mocked_request(method, path)))
            assert got == expected, (table, method, path)

    asyncio.run(run())

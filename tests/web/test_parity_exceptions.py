"""Differential test of the HTTP exceptions (issue 16, group 9): the same handlers built from
``aiohttp.web`` and ``forkloop.web`` build and raise exceptions; what they read back and what a
real client receives must match."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from aiohttp import test_utils as aio_test_utils
from aiohttp import web as aio_web

from forkloop import test_utils as fl_test_utils
from forkloop import web as fl_web

Build = Callable[[ModuleType], Any]

BUILT: list[Build] = [
    lambda web: web.HTTPException(),
    lambda web: web.HTTPException(reason="custom"),
    lambda web: web.HTTPError(text="plain"),
    lambda web: web.HTTPClientError(),
    lambda web: web.HTTPFound("/a\r\nX-Evil: 1"),
    lambda web: web.HTTPFound("/a\nb"),
    lambda web: web.HTTPFound("/a b?x=é"),
    lambda web: web.HTTPFound(""),
    lambda web: web.HTTPUnavailableForLegalReasons(""),
    lambda web: web.HTTPUnavailableForLegalReasons(None),
    lambda web: web.HTTPUnavailableForLegalReasons("http://authority.example/why"),
    lambda web: web.HTTPNotFound(reason="a\r\nb"),
]

RAISED: list[Build] = [
    lambda web: web.HTTPFound("/a\r\nX-Evil: 1"),
    lambda web: web.HTTPMovedPermanently("/a b"),
    lambda web: web.HTTPUnavailableForLegalReasons(""),
    lambda web: web.HTTPUnavailableForLegalReasons("http://authority.example/why"),
]


def describe(exc: Any) -> str:
    link = getattr(exc, "link", "-")
    return repr(
        (
            type(exc).__name__,
            exc.status,
            exc.reason,
            exc.text,
            str(exc),
            repr(exc),
            exc.headers.get("Location"),
            exc.headers.get("Link"),
            None if link is None else str(link),
            isinstance(exc, Exception),
        )
    )


def build_app(web: ModuleType) -> Any:
    async def built(request: Any) -> Any:
        try:
            exc = BUILT[int(request.match_info["case"])](web)
        except Exception as error:  # the exception type is part of the behaviour compared
            return web.Response(text=f"raised {type(error).__name__}")
        return web.Response(text=describe(exc))

    async def raised(request: Any) -> Any:
        raise RAISED[int(request.match_info["case"])](web)

    app = web.Application()
    app.router.add_get("/built/{case}", built)
    app.router.add_get("/raised/{case}", raised)
    return app


async def answers(client: Any) -> list[tuple[Any, ...]]:
    out = []
    paths = [f"/built/{i}" for i in range(len(BUILT))]
    paths += [f"/raised/{i}" for i in range(len(RAISED))]
    for path in paths:
        async with client.get(path, allow_redirects=False) as resp:
            body = await resp.text()
            sent = tuple(resp.headers.get(h) for h in ("Location", "Link", "X-Evil"))
            out.append((path, resp.status, resp.reason, sent, body))
    return out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_exceptions_build_and_answer_like_aiohttp() -> None:
    async with aio_test_utils.TestClient(aio_test_utils.TestServer(build_app(aio_web))) as client:
        expected = await answers(client)
    async with fl_test_utils.TestClient(fl_test_utils.TestServer(build_app(fl_web))) as client:
        got = await answers(client)
    assert {e[1] for e in expected} == {200, 301, 302, 451}
    mismatches = [(e, g) for e, g in zip(expected, got, strict=True) if e != g]
    assert not mismatches, "\n".join(f"aiohttp : {e}\nforkloop: {g}" for e, g in mismatches)

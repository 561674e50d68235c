"""Differential test of response properties (issue 16, group 6): the same handler code built
from ``aiohttp.web`` and ``forkloop.web`` sets ``content_type``, ``charset``, ``etag`` and
``last_modified`` on a response, reads them back, and sends the response; what it read and
what a real client receives must match."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from aiohttp import test_utils as aio_test_utils
from aiohttp import web as aio_web

from forkloop import test_utils as fl_test_utils
from forkloop import web as fl_web

UTC = datetime.UTC
Step = Callable[[Any], None]


def ctype(value: str) -> Step:
    def step(resp: Any) -> None:
        resp.content_type = value

    return step


def charset(value: str | None) -> Step:
    def step(resp: Any) -> None:
        resp.charset = value

    return step


def etag(value: Any) -> Step:
    def step(resp: Any) -> None:
        resp.etag = value

    return step


def header(name: str, value: str) -> Step:
    def step(resp: Any) -> None:
        resp.headers[name] = value

    return step


def last_modified(value: Any) -> Step:
    def step(resp: Any) -> None:
        resp.last_modified = value

    return step


def text(value: str) -> Step:
    def step(resp: Any) -> None:
        resp.text = value

    return step


CASES: list[list[Step]] = [
    [ctype("text/html; charset=utf-8")],
    [ctype("text/plain;charset=latin-1")],
    [ctype("text/plain;charset=latin-1"), charset("utf-8")],
    [ctype("TEXT/HTML")],
    [ctype("TEXT/HTML"), charset("UTF-8")],
    [ctype("text/html; q=1"), charset("utf-8")],
    [ctype("invalid")],
    [ctype("invalid"), charset("utf-8")],
    [ctype("a/b/c")],
    [ctype("")],
    [header("Content-Type", "invalid")],
    [header("Content-Type", "Text/HTML; Charset=UTF-8")],
    [ctype("text/csv"), charset("utf-8"), ctype("text/html")],
    [ctype("application/json"), charset(None)],
    [charset("utf-8")],
    [text("héllo")],
    [ctype("application/octet-stream"), text("héllo")],
    [ctype("text/html"), text("héllo")],
    [header("Content-Type", "text/html;charset=ISO-8859-1"), text("é")],
    [ctype("application/json; v=2"), text("{}")],
    [etag("abc")],
    [etag(123)],
    [etag(1.5)],
    [etag("")],
    [etag('a"b')],
    [etag("a b")],
    [etag("ä")],
    [etag("€")],
    [etag("*")],
    [header("ETag", '"€"')],
    [header("ETag", '"a b"')],
    [header("ETag", '""')],
    [header("ETag", 'W/"x"')],
    [header("ETag", "abc")],
    [last_modified(0)],
    [last_modified(1e9 + 0.2)],
    [last_modified(datetime.datetime(2020, 1, 1, 0, 0, 0, 500000, tzinfo=UTC))],
    [last_modified(datetime.datetime(2020, 1, 1, 0, 0, 0, tzinfo=UTC))],
    [last_modified(datetime.datetime(2020, 1, 1, 12, 0, 0, 1))],  # naive: UTC
    [
        last_modified(
            datetime.datetime(
                2020, 1, 1, 12, 0, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            )
        )
    ],
    [last_modified("garbage")],
    [last_modified([])],
]


def build_app(web: ModuleType) -> Any:
    async def handler(request: Any) -> Any:
        resp = web.Response(body=b"body")
        failed = None
        for step in CASES[int(request.match_info["case"])]:
            try:
                step(resp)
            except Exception as exc:  # the exception type is part of the behaviour compared
                failed = type(exc).__name__
                break
        tag = resp.etag
        modified = resp.last_modified
        resp.headers["X-Read"] = repr(
            (
                failed,
                resp.content_type,
                resp.charset,
                None if tag is None else (tag.value, tag.is_weak),
                None if modified is None else modified.isoformat(),
            )
        )
        return resp

    app = web.Application()
    app.router.add_get("/{case}", handler)
    return app


async def answers(client: Any) -> list[tuple[Any, ...]]:
    out = []
    for case in range(len(CASES)):
        async with client.get(f"/{case}") as resp:
            await resp.read()
            sent = tuple(resp.headers.get(h) for h in ("Content-Type", "ETag", "Last-Modified"))
            out.append((case, resp.status, resp.headers.get("X-Read"), sent))
    return out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_response_properties_read_and_send_like_aiohttp() -> None:
    async with aio_test_utils.TestClient(aio_test_utils.TestServer(build_app(aio_web))) as client:
        expected = await answers(client)
    async with fl_test_utils.TestClient(fl_test_utils.TestServer(build_app(fl_web))) as client:
        got = await answers(client)
    assert all(e[1] == 200 for e in expected)
    mismatches = [(e, g) for e, g in zip(expected, got, strict=True) if e != g]
    assert not mismatches, "\n".join(f"aiohttp : {e}\nforkloop: {g}" for e, g in mismatches)

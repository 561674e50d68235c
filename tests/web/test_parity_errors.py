"""Differential test of unhandled errors (issue 16, group 9): the 500 page (HTML for
``Accept: text/html``, plain text otherwise, the traceback only in debug mode, which follows
the event loop's debug mode as in aiohttp) and a handler raising a ``BaseException`` that is no
``Exception``. The same application is served by ``aiohttp.web`` and ``forkloop.web`` and asked
over raw sockets; status, headers (``Date``/``Server`` values aside) and body must match, the
traceback's lines aside (the frames are each server's own).
"""

from __future__ import annotations

import asyncio
import re
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiohttp import web as aio_web
from parity_server import serving

from forkloop import web as fl_web

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))

from rawhttp import RawClient, parse_all


class Stop(BaseException):
    """Neither an Exception nor a cancellation: what a handler may still raise."""


def build_app(web: ModuleType) -> Any:
    async def boom(request: Any) -> Any:
        raise RuntimeError("boom <b>&</b>")

    async def base(request: Any) -> Any:
        raise Stop("stop")

    async def base_later(request: Any) -> Any:
        await asyncio.sleep(0.01)
        raise Stop("stop later")

    async def none(request: Any) -> Any:
        return None

    async def plain(request: Any) -> Any:
        return web.Response(text="plain")

    def generator(request: Any) -> Any:  # a bare generator: deprecated, fails when called
        yield  # pragma: no cover

    app = web.Application()
    app.router.add_get("/boom", boom)
    app.router.add_get("/base", base)
    app.router.add_get("/base-later", base_later)
    app.router.add_get("/none", none)
    app.router.add_get("/plain", plain)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        app.router.add_get("/generator", generator)
    return app


ACCEPTS = {
    "html": "text/html",
    "browser": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "json": "application/json",
    "none": None,
}


def request(path: str, accept: str | None) -> bytes:
    head = f"GET {path} HTTP/1.1\r\nHost: test\r\n"
    if accept is not None:
        head += f"Accept: {accept}\r\n"
    return (head + "\r\n").encode()


def without_traceback(body: str) -> str:
    """The page with the traceback's text replaced (its frames differ between servers); the
    exception's own line must be there."""
    if "Traceback (most recent call last)" not in body:
        return body
    assert "RuntimeError: boom" in body or "TypeError: " in body, body
    body = re.sub(r"<pre>.*</pre>", "<pre>TRACEBACK</pre>", body, flags=re.S)
    return re.sub(r"\n\nTraceback \(most recent call last\):.*", "\n\nTRACEBACK", body, flags=re.S)


async def exchange(port: int, data: bytes) -> Any:
    """What comes back for ``data`` (then a pipelined request): the responses until the server
    closes, and whether it closed within the wait."""
    client = await RawClient.connect("127.0.0.1", port)
    try:
        await client.send(data + request("/plain", None)[:-2] + b"Connection: close\r\n\r\n")
        try:
            received = await client.read_until_closed(timeout_s=3)
            closed = True
        except TimeoutError:
            received, closed = client.buffer, False
        out = []
        for response in parse_all(received):
            # Date and Server values differ, and so does a traceback's length.
            vary = {"date", "server"}
            if "Traceback (most recent call last)" in response.text():
                vary.add("content-length")
            headers = sorted(
                (name.lower(), "-" if name.lower() in vary else value)
                for name, value in response.raw_headers
            )
            out.append((response.status, headers, without_traceback(response.text())))
        return out, closed
    finally:
        await client.close()


async def answers(web: ModuleType, paths: list[str]) -> dict[str, Any]:
    out = {}
    async with serving(web, build_app(web), shutdown_timeout=1) as port:
        for path in paths:
            for name, accept in ACCEPTS.items():
                out[f"{path} accept={name}"] = await exchange(port, request(path, accept))
    return out


def compare(expected: dict[str, Any], got: dict[str, Any]) -> None:
    mismatches = {k: (expected[k], got[k]) for k in expected if expected[k] != got[k]}
    assert not mismatches, "\n".join(
        f"{k}:\n  aiohttp : {e}\n  forkloop: {g}" for k, (e, g) in mismatches.items()
    )


@pytest.mark.parametrize("debug", [False, True], ids=["loop", "debug-loop"])
async def test_500_pages_like_aiohttp(debug: bool) -> None:
    loop = asyncio.get_running_loop()
    was = loop.get_debug()
    loop.set_debug(debug)
    try:
        expected = await answers(aio_web, ["/boom", "/none", "/generator"])
        got = await answers(fl_web, ["/boom", "/none", "/generator"])
    finally:
        loop.set_debug(was)
    assert expected["/boom accept=html"][0][0][0] == 500
    compare(expected, got)


async def test_base_exception_in_handler_like_aiohttp() -> None:
    expected = await answers(aio_web, ["/base", "/base-later"])
    got = await answers(fl_web, ["/base", "/base-later"])
    assert all(closed for _, closed in expected.values())
    compare(expected, got)

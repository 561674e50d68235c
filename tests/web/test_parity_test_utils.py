"""Differential tests of the test utilities (issue 16, group 12): ``forkloop.test_utils`` and
``aiohttp.test_utils`` used the same way must give the same URLs, requests and answers."""

from __future__ import annotations

import ssl
from types import ModuleType
from typing import Any

import pytest
from aiohttp import HttpVersion10, HttpVersion11
from aiohttp import test_utils as aio_test_utils
from aiohttp import web as aio_web

from forkloop import test_utils as fl_test_utils
from forkloop import web as fl_web

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PATHS = ["/", "/a/b", "//resource1//a//b", "/a?x=1&y=%20", "/caf%C3%A9", "/a b", "/p;q"]


def echo_app(web: ModuleType) -> Any:
    async def echo(request: Any) -> Any:
        low, high = request.content.get_read_buffer_limits()
        limits_ok = isinstance(low, int) and isinstance(high, int) and 0 < low <= high
        return web.Response(text=f"{request.raw_path} {request.path} {limits_ok}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def make_urls(web: ModuleType, tu: ModuleType, skip_url_asserts: bool) -> list[Any]:
    out: list[Any] = []
    server = tu.TestServer(echo_app(web), skip_url_asserts=skip_url_asserts)
    async with tu.TestClient(server) as client:
        root = str(server.make_url(""))
        for path in [*PATHS, "http://elsewhere.example/x"]:
            try:
                url = client.make_url(path)
            except (AssertionError, ValueError):  # aiohttp asserts; forkloop raises ValueError
                out.append((path, "refused"))
                continue
            shown = str(url).replace(root, "<root>")
            if url.host != "127.0.0.1":
                out.append((path, shown))
                continue
            async with client.post(path, data=b"body") as resp:  # a real body stream
                out.append((path, shown, resp.status, await resp.text()))
    return out


@pytest.mark.parametrize("skip_url_asserts", [True, False])
async def test_make_url_and_requests_like_aiohttp(skip_url_asserts: bool) -> None:
    expected = await make_urls(aio_web, aio_test_utils, skip_url_asserts)
    got = await make_urls(fl_web, fl_test_utils, skip_url_asserts)
    assert ("//resource1//a//b" in str(expected)) is True
    assert all(e[2] == 200 for e in expected if len(e) == 4)
    mismatches = [(e, g) for e, g in zip(expected, got, strict=True) if e != g]
    assert not mismatches, "\n".join(f"aiohttp : {e}\nforkloop: {g}" for e, g in mismatches)


def mocked(tu: ModuleType) -> list[Any]:
    out = []
    context = ssl.create_default_context()
    for version in (HttpVersion10, HttpVersion11):
        # Always a Host: without one, request.host differs (issue 16 group 4, request path).
        for headers in (
            {"Host": "example.com"},
            {"Host": "example.com", "Connection": "keep-alive"},
            {"Host": "h:8080", "Connection": "close"},
        ):
            for sslcontext in (None, context):
                req = tu.make_mocked_request(
                    "GET", "/p/q?x=1", headers, version=version, sslcontext=sslcontext
                )
                clone = req.clone()
                out.append(
                    (
                        tuple(version),
                        headers,
                        sslcontext is not None,
                        req.scheme,
                        req.secure,
                        str(req.url),
                        str(clone.url),
                        clone.scheme,
                        str(req.clone(scheme="https").url),
                        req.keep_alive,
                    )
                )
    return out


async def test_make_mocked_request_like_aiohttp() -> None:
    expected = mocked(aio_test_utils)
    got = mocked(fl_test_utils)
    mismatches = [(e, g) for e, g in zip(expected, got, strict=True) if e != g]
    assert not mismatches, "\n".join(f"aiohttp : {e}\nforkloop: {g}" for e, g in mismatches)


async def test_make_url_keeps_double_slashes_as_a_path() -> None:
    # The symptom of the issue, on forkloop alone: the path is never read as a host.
    server = fl_test_utils.TestServer(echo_app(fl_web))
    async with fl_test_utils.TestClient(server) as client:
        url = client.make_url("//resource1//a//b")
        assert url.host == "127.0.0.1"
        assert url.raw_path == "//resource1//a//b"
        async with client.post("//resource1//a//b", data=b"x") as resp:
            assert await resp.text() == "//resource1//a//b //resource1//a//b True"

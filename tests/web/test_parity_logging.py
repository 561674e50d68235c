"""Differential test of access logging (issue 16, group 13).

The same application is served by ``aiohttp.web`` and ``forkloop.web`` with the same access
log format, and the same requests are sent over one raw keep-alive connection; the logged
lines must be the same, but for ``%b``: it is what aiohttp logs, the response's size as
written, head included, so it must equal the bytes the client received for that response
(the heads differ by their ``Server`` value). A custom
``access_log_class`` is called whenever its ``enabled`` says so (aiohttp's base class says
yes), whatever the level of the access logger.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp import web as aio_web

from forkloop import web as fl_web

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))

from rawhttp import Incomplete, RawClient, parse_response

FORMAT = '%b "%r" %s "%{Referer}i" "%{User-Agent}i" "%{X-Out}o" "%{X-Missing}o"'


# What aiohttp's AccessLogger puts in each record's ``extra`` (structured log formatters read
# them): one attribute per atom, header atoms grouped in a dict.
EXTRA_KEYS = (
    "remote_address",
    "first_request_line",
    "response_status",
    "response_size",
    "request_header",
    "response_header",
)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.extras: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.extras.append({key: getattr(record, key, "<none>") for key in EXTRA_KEYS})


def build_app(web: ModuleType) -> Any:
    async def text(request: Any) -> Any:
        return web.Response(text="hello world", headers={"X-Out": "out"})

    async def empty(request: Any) -> Any:
        return web.Response(status=204)

    async def stream(request: Any) -> Any:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"part one,")
        await resp.write(b"part two")
        await resp.write_eof()
        return resp

    async def json(request: Any) -> Any:
        return web.json_response({"a": [1, 2, 3]})

    async def plain(request: Any) -> Any:
        return web.Response(text="plain")

    async def fail(request: Any) -> Any:
        raise web.HTTPBadRequest(text="bad")

    app = web.Application()
    app.router.add_get("/text", text)
    app.router.add_get("/empty", empty)
    app.router.add_get("/stream", stream)
    app.router.add_get("/json", json)
    app.router.add_get("/fail", fail)
    app.router.add_get("/plain", plain)
    return app


@asynccontextmanager
async def serving(web: ModuleType, **kwargs: Any) -> AsyncIterator[str]:
    runner = web.AppRunner(build_app(web), **kwargs)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


REQUESTS = [
    ("GET", "/text", {"Referer": "http://ref.example/"}),
    ("HEAD", "/text", {}),
    ("GET", "/empty", {}),
    ("GET", "/stream", {}),
    ("GET", "/json?x=1", {}),
    ("GET", "/fail", {}),
    ("GET", "/missing", {}),
    ("GET", "/plain", {}),  # forkloop's one-write path
    ("POST", "/text", {"Content-Length": "0"}),  # 405, with Allow
]


async def send_all(base: str) -> None:
    headers = {"User-Agent": "parity-client"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for method, path, extra in REQUESTS:
            async with session.request(method, base + path, headers=extra) as resp:
                await resp.read()


async def send_raw(base: str) -> list[int]:
    """Every request on one keep-alive connection; the size of each response received."""
    host, port = base.removeprefix("http://").split(":")
    client = await RawClient.connect(host, int(port))
    sizes = []
    try:
        for method, path, extra in REQUESTS:
            lines = [f"{method} {path} HTTP/1.1", "Host: test", "User-Agent: parity-client"]
            lines += [f"{name}: {value}" for name, value in extra.items()]
            await client.send(("\r\n".join(lines) + "\r\n\r\n").encode())
            while True:
                try:
                    _, rest = parse_response(client.buffer, method)
                    break
                except Incomplete:
                    assert await client._read_more(5), "the server closed early"
            sizes.append(len(client.buffer) - len(rest))
            client.buffer = rest
    finally:
        await client.close()
    return sizes


async def logged_extras(web: ModuleType) -> list[dict[str, Any]]:
    logger = logging.getLogger(f"{web.__name__.split('.')[0]}.access")
    capture = Capture()
    logger.addHandler(capture)
    level = logger.level
    logger.setLevel(logging.INFO)
    log_format = '%a "%r" %s %b "%{Referer}i" "%{User-Agent}i" "%{X-Out}o"'
    try:
        async with serving(web, access_log=logger, access_log_format=log_format) as base:
            await send_raw(base)
    finally:
        logger.removeHandler(capture)
        logger.setLevel(level)
    for extra in capture.extras:
        assert isinstance(extra["response_size"], int)
        extra["response_size"] = "size"  # the heads differ by their Server value
    return capture.extras


async def test_access_log_record_extras_like_aiohttp() -> None:
    expected = await logged_extras(aio_web)
    got = await logged_extras(fl_web)
    assert expected[0]["request_header"] == {
        "Referer": "http://ref.example/",
        "User-Agent": "parity-client",
    }
    assert got == expected


async def logged_lines(web: ModuleType) -> tuple[list[str], list[int]]:
    logger = logging.getLogger(f"{web.__name__.split('.')[0]}.access")
    capture = Capture()
    logger.addHandler(capture)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        async with serving(web, access_log=logger, access_log_format=FORMAT) as base:
            sizes = await send_raw(base)
    finally:
        logger.removeHandler(capture)
        logger.setLevel(level)
    return capture.lines, sizes


def split_size(line: str) -> tuple[str, int]:
    """The line with its ``%b`` (the first field of FORMAT) taken out, and that size."""
    size, rest = line.split(" ", 1)
    return rest, int(size)


async def test_access_log_lines_like_aiohttp() -> None:
    results = []
    for web in (aio_web, fl_web):
        lines, sizes = await logged_lines(web)
        assert len(lines) == len(REQUESTS), lines
        logged = [split_size(line) for line in lines]
        assert [size for _, size in logged] == sizes, (web.__name__, lines, sizes)
        results.append([text for text, _ in logged])
    expected, got = results
    assert got == expected


def custom_logger_class(web: ModuleType, calls: list[str], enabled: bool | None) -> type:
    base: Any = aiohttp.abc.AbstractAccessLogger if web is aio_web else fl_web.AbstractAccessLogger

    class Recorder(base):  # type: ignore[misc, valid-type]
        def log(self, request: Any, response: Any, time: float) -> None:
            calls.append(f"{request.method} {request.path} {response.status}")

    if enabled is not None:
        Recorder.enabled = property(lambda self: enabled)  # type: ignore[attr-defined]
    return Recorder


@pytest.mark.parametrize("enabled", [None, True, False], ids=["inherited", "yes", "no"])
@pytest.mark.parametrize("level", [logging.WARNING, logging.INFO], ids=["warning", "info"])
async def test_custom_access_log_class_called_like_aiohttp(
    enabled: bool | None, level: int
) -> None:
    results = []
    for web in (aio_web, fl_web):
        calls: list[str] = []
        logger = logging.getLogger(f"parity.custom.{web.__name__}")
        logger.setLevel(level)
        cls = custom_logger_class(web, calls, enabled)
        async with serving(web, access_log=logger, access_log_class=cls) as base:
            await send_all(base)
        results.append(calls)
    expected, got = results
    assert (len(expected) == len(REQUESTS)) is (enabled is not False)
    assert got == expected

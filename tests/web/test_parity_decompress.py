"""Request ``Content-Encoding`` decoding (issue 16, group 1), differential and bounded.

The same handlers on ``aiohttp.web`` and ``forkloop.web`` receive bodies sent by aiohttp's
client with a ``Content-Encoding`` (gzip, deflate as zlib and raw, codings neither decodes,
br/zstd whose module is missing here), read through ``read()``, ``text()``, ``json()``,
``post()`` and the streaming ``request.content``, with ``auto_decompress`` on (the default)
and off on ``AppRunner`` and on the low-level ``web.Server``; what the handler saw must match.

Then forkloop alone: a gzip bomb (megabytes of zeros in a few kilobytes) stops at
``client_max_size`` with 413 in ``read()``, and streamed through ``request.content`` it never
hands the handler more than the read buffer plus one decoded piece at a time; a corrupt,
truncated or trailing-garbage stream answers 400 (deliberately: aiohttp answers 500, or
accepts a truncated gzip body as if complete; docs/migrating-from-aiohttp.md).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import zlib
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp import web as aio_web

from forkloop import web as fl_web
from forkloop.core.http.decoding import DEFAULT_PIECE_BYTES
from forkloop.core.http.limits import Limits

TEXT = ("h\u00e9llo w\u00f6rld " * 500).encode()
FORM = b"a=1&b=" + b"x" * 3000 + b"&c=%C3%A9"
JSON = json.dumps({"k": list(range(500))}).encode()


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


CASES: list[tuple[str, str, bytes, str]] = [
    # (name, route, body as sent, Content-Encoding)
    ("gzip read", "read", gzip.compress(TEXT), "gzip"),
    ("GZIP upper case", "read", gzip.compress(TEXT), "GZIP"),
    ("deflate zlib", "read", zlib.compress(TEXT), "deflate"),
    ("deflate raw", "read", raw_deflate(TEXT), "deflate"),
    ("x-gzip left alone", "read", gzip.compress(TEXT), "x-gzip"),
    ("two codings left alone", "read", gzip.compress(gzip.compress(b"hi")), "gzip, gzip"),
    ("unknown left alone", "read", b"plain bytes", "foo"),
    ("identity", "read", b"plain bytes", "identity"),
    ("empty gzip body", "read", b"", "gzip"),
    ("gzip text", "text", gzip.compress(TEXT), "gzip"),
    ("gzip json", "json", gzip.compress(JSON), "gzip"),
    ("gzip form", "post", gzip.compress(FORM), "gzip"),
    ("deflate form", "post", zlib.compress(FORM), "deflate"),
    ("gzip stream", "stream", gzip.compress(TEXT * 20), "gzip"),
    ("gzip over client_max_size", "read", gzip.compress(b"\0" * 3_000_000), "gzip"),
    ("gzip stream over client_max_size", "stream", gzip.compress(b"\0" * 3_000_000), "gzip"),
]
MISSING = [
    coding
    for coding, modules in (("br", ("brotli", "brotlicffi")), ("zstd", ("backports.zstd",)))
    if not any(importlib.util.find_spec(m.split(".")[0]) for m in modules)
]


def handlers(web: ModuleType) -> dict[str, Any]:
    async def read(request: Any) -> Any:
        try:
            body = await request.read()
        except web.HTTPException as exc:
            return web.Response(status=exc.status, text=type(exc).__name__)
        return web.Response(body=b"%d:" % len(body) + body[:64])

    async def text(request: Any) -> Any:
        return web.Response(text=(await request.text())[:64])

    async def as_json(request: Any) -> Any:
        return web.json_response(await request.json())

    async def post(request: Any) -> Any:
        form = await request.post()
        return web.json_response(sorted((k, str(v)[:20]) for k, v in form.items()))

    async def stream(request: Any) -> Any:
        total = 0
        async for chunk in request.content.iter_chunked(4096):
            total += len(chunk)
        return web.Response(text=f"streamed {total}")

    return {"read": read, "text": text, "json": as_json, "post": post, "stream": stream}


def build_app(web: ModuleType) -> Any:
    app = web.Application()
    for route, handler in handlers(web).items():
        app.router.add_post(f"/{route}", handler)
    return app


def build_lowlevel(web: ModuleType) -> Any:
    routes = handlers(web)

    async def dispatch(request: Any) -> Any:
        return await routes[request.path.strip("/")](request)

    return dispatch


async def serve(web: ModuleType, mode: str) -> tuple[Any, str]:
    if mode == "lowlevel-raw":
        server = web.Server(build_lowlevel(web), auto_decompress=False)
        runner: Any = web.ServerRunner(server)
    elif mode == "runner-raw":
        runner = web.AppRunner(build_app(web), auto_decompress=False)
    else:
        runner = web.AppRunner(build_app(web))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


async def answers(base: str, *, raw: bool) -> list[Any]:
    out = []
    async with aiohttp.ClientSession() as session:
        for name, route, data, coding in CASES:
            if raw and route == "post":
                continue  # a form left compressed: neither can parse it (aiohttp: 500)
            headers = {"Content-Encoding": coding}
            if route == "post":
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            elif route == "json":
                headers["Content-Type"] = "application/json"
            async with session.post(f"{base}/{route}", data=data, headers=headers) as resp:
                out.append((name, resp.status, await resp.read()))
        for coding in MISSING:  # a coding aiohttp knows, whose module is not installed
            headers = {"Content-Encoding": coding}
            async with session.post(f"{base}/read", data=b"xx", headers=headers) as resp:
                body = await resp.text()
                out.append((coding, resp.status, "Can not decode content-encoding" in body))
    return out


@pytest.mark.filterwarnings("ignore:Sending a large body:ResourceWarning")
@pytest.mark.parametrize("mode", ["default", "runner-raw", "lowlevel-raw"])
async def test_request_content_encoding_like_aiohttp(mode: str) -> None:
    runner, base = await serve(aio_web, mode)
    try:
        expected = await answers(base, raw=mode != "default")
    finally:
        await runner.cleanup()
    runner, base = await serve(fl_web, mode)
    try:
        got = await answers(base, raw=mode != "default")
    finally:
        await runner.cleanup()
    mismatches = [(e, g) for e, g in zip(expected, got, strict=True) if e != g]
    assert not mismatches, "\n".join(f"aiohttp : {e}\nforkloop: {g}" for e, g in mismatches)


# -- forkloop alone: bounded decoding, and 400 for a bad stream ----------------------------


def bomb(size: int) -> bytes:
    c = zlib.compressobj(9, wbits=16 + zlib.MAX_WBITS)
    out = [c.compress(b"\0" * (1 << 20)) for _ in range(size >> 20)]
    return b"".join(out) + c.flush()


async def gen(data: bytes, piece: int = 16384) -> AsyncIterator[bytes]:
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


async def test_gzip_bomb_stops_at_client_max_size_and_streams_in_bounded_pieces() -> None:
    body = bomb(64 << 20)  # 64 MiB of zeros
    assert len(body) < 100_000
    seen: dict[str, Any] = {}

    async def read(request: Any) -> Any:
        try:
            await request.read()
        except fl_web.HTTPRequestEntityTooLarge:
            seen["read"] = ("413", request.content.total_bytes)
            raise
        return fl_web.Response(text="read it all")

    async def stream(request: Any) -> Any:
        largest = total = 0
        while chunk := await request.content.readany():
            largest = max(largest, len(chunk))
            total += len(chunk)
        seen["stream"] = (largest, total)
        return fl_web.Response(text=str(total))

    app = fl_web.Application()  # client_max_size: 1 MiB
    app.router.add_post("/read", read)
    app.router.add_post("/stream", stream)
    runner = fl_web.AppRunner(app)
    await runner.setup()
    site = fl_web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    try:
        async with aiohttp.ClientSession() as session:
            headers = {"Content-Encoding": "gzip"}
            async with session.post(f"{base}/read", data=gen(body), headers=headers) as resp:
                assert resp.status == 413
            async with session.post(f"{base}/stream", data=gen(body), headers=headers) as resp:
                assert resp.status == 200
                assert await resp.text() == str(64 << 20)
    finally:
        await runner.cleanup()
    status, decoded = seen["read"]
    assert status == "413"
    # Decoding stopped soon after the limit: what read() took (the limit plus at most one
    # buffer's worth, read at once) and what waited in the buffer, never the 64 MiB.
    high = Limits().read_buffer_high_bytes
    assert 1 << 20 < decoded <= (1 << 20) + 2 * (high + DEFAULT_PIECE_BYTES)
    largest, total = seen["stream"]
    assert total == 64 << 20
    assert largest <= high + DEFAULT_PIECE_BYTES


BAD = [
    ("corrupt", b"not gzip at all", "gzip"),
    ("truncated gzip", gzip.compress(TEXT)[:-10], "gzip"),
    ("truncated deflate", zlib.compress(TEXT)[:-10], "deflate"),
    ("trailing garbage", gzip.compress(TEXT) + b"junk", "gzip"),
]


@pytest.mark.parametrize(("name", "data", "coding"), BAD, ids=[b[0] for b in BAD])
async def test_a_bad_compressed_stream_answers_400(name: str, data: bytes, coding: str) -> None:
    runner, base = await serve(fl_web, "default")
    try:
        async with aiohttp.ClientSession() as session:
            headers = {"Content-Encoding": coding}
            async with session.post(f"{base}/read", data=data, headers=headers) as resp:
                assert resp.status == 400
                assert "Can not decode content-encoding" in await resp.text()
                assert resp.headers.get("Connection") == "close"
    finally:
        await runner.cleanup()


async def test_gzip_members_in_a_row_are_one_body() -> None:
    runner, base = await serve(fl_web, "default")
    try:
        async with aiohttp.ClientSession() as session:
            data = gzip.compress(b"first ") + gzip.compress(b"second")
            headers = {"Content-Encoding": "gzip"}
            async with session.post(f"{base}/read", data=data, headers=headers) as resp:
                assert await resp.read() == b"12:first second"
    finally:
        await runner.cleanup()

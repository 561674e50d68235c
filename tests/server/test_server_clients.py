"""Real HTTP clients against the low-level server: aiohttp's ClientSession, httpx, curl."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

import aiohttp
import httpx
import pytest

from forkloop.core.web.response import Response, StreamResponse, json_response


async def _app(request: Any) -> StreamResponse:
    if request.path == "/json":
        return json_response({"method": request.method, "query": dict(request.query)})
    if request.path == "/echo":
        body = await request.read()
        return Response(body=body, content_type=request.content_type)
    if request.path == "/stream":
        response = StreamResponse()
        if request.version >= (1, 1):  # like aiohttp, chunked on 1.0 is a RuntimeError
            response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(100):
            await response.write(b"%d\n" % i)
        await response.write_eof()
        return response
    if request.path == "/gzip":
        response = Response(text="z" * 10000)
        response.enable_compression()
        return response
    if request.path == "/cookie":
        response = Response(text=request.cookies.get("in", "none"))
        response.set_cookie("out", "cookie-value")
        return response
    return Response(text=f"peer {request.remote} {request.path}")


async def test_aiohttp_client_reuses_one_connection(serve: Any) -> None:
    served = await serve(_app)
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(served.url, connector=connector) as session:
        for i in range(20):
            async with session.get(f"/p{i}") as response:
                assert response.status == 200
                assert await response.text() == f"peer 127.0.0.1 /p{i}"
        async with session.get("/json", params={"a": "1"}) as response:
            assert await response.json() == {"method": "GET", "query": {"a": "1"}}
        async with session.post("/echo", data=b"x" * 100_000) as response:
            assert await response.read() == b"x" * 100_000
        async with session.get("/stream") as response:
            assert response.headers["Transfer-Encoding"] == "chunked"
            lines = [line async for line in response.content]
            assert lines == [b"%d\n" % i for i in range(100)]
        async with session.get("/gzip", headers={"Accept-Encoding": "gzip"}) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert await response.text() == "z" * 10000
        session.cookie_jar.update_cookies({"in": "jar"})
        async with session.get("/cookie") as response:
            assert await response.text() == "jar"
            assert response.cookies["out"].value == "cookie-value"
    assert served.server.requests_count == 25
    # One connection served them all (the connector's limit is 1 and keep-alive held).
    assert len(served.server.connections) <= 1


async def test_aiohttp_client_chunked_upload(serve: Any) -> None:
    served = await serve(_app)

    async def gen() -> Any:
        for _ in range(50):
            yield b"c" * 1000
            await asyncio.sleep(0)

    async with (
        aiohttp.ClientSession(served.url) as session,
        session.post("/echo", data=gen()) as response,
    ):
        assert await response.read() == b"c" * 50_000


async def test_aiohttp_client_expect_continue(serve: Any) -> None:
    served = await serve(_app)
    async with (
        aiohttp.ClientSession(served.url) as session,
        session.post("/echo", data=b"e" * 5000, expect100=True) as response,
    ):
        assert response.status == 200
        assert await response.read() == b"e" * 5000


async def test_httpx_client(serve: Any) -> None:
    served = await serve(_app)
    async with httpx.AsyncClient(base_url=served.url) as client:
        response = await client.get("/json", params={"q": "v"})
        assert response.json() == {"method": "GET", "query": {"q": "v"}}
        response = await client.get("/gzip")
        assert response.headers["content-encoding"] in ("gzip", "deflate")
        assert response.text == "z" * 10000
        async with client.stream("GET", "/stream") as stream:
            text = "".join([chunk async for chunk in stream.aiter_text()])
        assert text == "".join(f"{i}\n" for i in range(100))
        response = await client.post("/echo", content=b"h" * 3000)
        assert response.content == b"h" * 3000
        response = await client.head("/")
        assert response.status_code == 200
        assert response.content == b""


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_curl(serve: Any) -> None:
    served = await serve(_app)

    async def curl(*args: str) -> tuple[int, bytes]:
        process = await asyncio.create_subprocess_exec(
            "curl",
            "-sS",
            "--max-time",
            "10",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0, err
        return process.returncode, out

    _, out = await curl(f"{served.url}/hello")
    assert out == b"peer 127.0.0.1 /hello"
    _, out = await curl("--compressed", f"{served.url}/gzip")
    assert out == b"z" * 10000
    _, out = await curl("--http1.0", f"{served.url}/stream")
    assert out == b"".join(b"%d\n" % i for i in range(100))
    _, out = await curl("-X", "POST", "--data-binary", "@-", f"{served.url}/echo")
    assert out == b""
    _, out = await curl("-H", "Transfer-Encoding: chunked", "-d", "abc", f"{served.url}/echo")
    assert out == b"abc"
    # Several URLs on one connection.
    _, out = await curl(f"{served.url}/a", f"{served.url}/b", f"{served.url}/c")
    assert out == b"peer 127.0.0.1 /apeer 127.0.0.1 /bpeer 127.0.0.1 /c"

"""Differential test of response bodies (issue 16, group 1): the same handlers built from
``aiohttp.web`` and ``forkloop.web`` answer with ``Response(body=...)`` of every kind aiohttp
takes -- bytes-likes, file objects binary and text, ``io.BytesIO``/``io.StringIO``, an async
generator, a request's stream and a multipart part being forwarded, aiohttp's payload types
(``aiohttp.payload`` there, ``forkloop.core.web.payload`` here) -- and a real client compares
status, framing headers, body, what the handler read back, and that files were closed."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp import payload as aio_payload
from aiohttp import test_utils as aio_test_utils
from aiohttp import web as aio_web

from forkloop import test_utils as fl_test_utils
from forkloop import web as fl_web
from forkloop.core.web import payload as fl_payload

HEADERS = (
    "Content-Type",
    "Content-Length",
    "Transfer-Encoding",
    "Content-Disposition",
    "Content-Encoding",
)
BIG = bytes(range(256)) * 1200  # 300 KiB: more than one file chunk


async def agen() -> AsyncIterator[bytes]:
    for piece in (b"one ", b"two ", b"three"):
        await asyncio.sleep(0)
        yield piece


Body = Callable[[ModuleType, Path, Any], Any]

BODIES: dict[str, Body] = {
    "bytes": lambda p, d, r: b"plain",
    "bytearray": lambda p, d, r: bytearray(b"array"),
    "memoryview": lambda p, d, r: memoryview(b"view"),
    "str": lambda p, d, r: "h\u00e9llo",
    "bytesio": lambda p, d, r: io.BytesIO(BIG),
    "bytesio-moved": lambda p, d, r: _moved(io.BytesIO(b"0123456789"), 4),
    "stringio": lambda p, d, r: io.StringIO("h\u00e9llo"),
    "file-binary": lambda p, d, r: open(d / "data.txt", "rb"),  # noqa: SIM115
    "file-big": lambda p, d, r: open(d / "big.bin", "rb"),  # noqa: SIM115
    "file-unbuffered": lambda p, d, r: open(d / "page.html", "rb", buffering=0),  # noqa: SIM115
    "file-text": lambda p, d, r: open(d / "data.txt", encoding="utf-8"),  # noqa: SIM115
    "file-noext": lambda p, d, r: open(d / "blob", "rb"),  # noqa: SIM115
    "async-generator": lambda p, d, r: agen(),
    "bytes-payload": lambda p, d, r: p.BytesPayload(b"xyz", content_type="application/x-t"),
    "string-payload": lambda p, d, r: p.StringPayload("abc", content_type="text/csv"),
    "registry": lambda p, d, r: p.PAYLOAD_REGISTRY.get(io.BytesIO(b"reg")),
    "unsupported": lambda p, d, r: object(),
    "int": lambda p, d, r: 42,
}


def _moved(f: io.BytesIO, pos: int) -> io.BytesIO:
    f.seek(pos)
    return f


def build_app(web: ModuleType, payload: ModuleType, files: Path) -> Any:
    opened: list[Any] = []

    async def body(request: Any) -> Any:
        case = request.match_info["case"]
        try:
            value = BODIES[case](payload, files, request)
            resp = web.Response(body=value)
        except Exception as exc:  # the exception type is part of the behaviour compared
            return web.Response(text=f"refused: {type(exc).__name__}")
        if isinstance(value, io.IOBase):
            opened.append(value)
        if "z" in request.query:
            resp.enable_compression()
        body = resp.body
        kind = type(body).__name__ if not isinstance(body, bytes | bytearray) else "bytes"
        text = resp.text if case in ("str", "stringio", "bytes-payload") else None
        if case == "str":
            # Deliberate (docs/migrating-from-aiohttp.md): a str body is kept as its encoded
            # bytes, not a StringPayload; what is sent is the same.
            resp.headers["X-Read"] = repr((resp.content_type, text))
        else:
            resp.headers["X-Read"] = repr((kind, resp.content_length, resp.content_type, text))
        return resp

    async def closed(request: Any) -> Any:
        for _ in range(200):  # closing runs in the executor, after the response went out
            if all(f.closed for f in opened if not isinstance(f, io.BytesIO | io.StringIO)):
                break
            await asyncio.sleep(0.01)
        states = [(type(f).__name__, f.closed) for f in opened]
        for f in opened:
            f.close()  # what the server left open (a HEAD response never sends it)
        opened.clear()
        return web.Response(text=repr(states))

    async def echo_stream(request: Any) -> Any:
        return web.Response(body=request.content)

    async def forward_part(request: Any) -> Any:
        reader = await request.multipart()
        part = await reader.next()
        return web.Response(body=part)

    async def on_prepare(request: Any, response: Any) -> None:
        response.headers["X-Prepared"] = repr((response.content_length, response.chunked))

    app = web.Application()
    app.on_response_prepare.append(on_prepare)
    app.router.add_route("*", "/body/{case}", body)
    app.router.add_get("/closed", closed)
    app.router.add_post("/echo", echo_stream)
    app.router.add_post("/part", forward_part)
    return app


async def answers(client: Any) -> list[Any]:
    out: list[Any] = []

    async def record(name: str, resp: Any) -> None:
        data = await resp.read()
        headers = tuple(resp.headers.get(h) for h in HEADERS)
        read = (resp.headers.get("X-Read"), resp.headers.get("X-Prepared"))
        out.append((name, resp.status, headers, read, data))

    for case in BODIES:
        async with client.get(f"/body/{case}") as resp:
            await record(case, resp)
        async with client.get("/closed") as resp:
            out.append((case, "closed", await resp.text()))
    for case in ("file-binary", "bytesio", "async-generator"):
        async with client.head(f"/body/{case}") as resp:
            await record(f"HEAD {case}", resp)
        async with client.get("/closed") as resp:
            out.append((case, "closed after HEAD", await resp.text()))
    for case in ("file-big", "async-generator", "bytesio"):
        headers = {"Accept-Encoding": "gzip"}
        async with client.get(f"/body/{case}?z", headers=headers) as resp:
            await record(f"gzip {case}", resp)
    async with client.post("/echo", data=b"streamed back " * 1000) as resp:
        await record("echo", resp)
    form = aiohttp.FormData()
    form.add_field("upload", b"part body", filename="up.bin", content_type="image/png")
    async with client.post("/part", data=form) as resp:
        await record("part", resp)
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("field", "value")
    async with client.post("/part", data=form) as resp:
        await record("part-field", resp)
    return out


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "data.txt").write_text("text file\nh\u00e9llo\n", encoding="utf-8")
    (tmp_path / "big.bin").write_bytes(BIG)
    (tmp_path / "page.html").write_bytes(b"<p>hi</p>")
    (tmp_path / "blob").write_bytes(b"no extension")
    return tmp_path


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_response_bodies_of_every_kind_like_aiohttp(files: Path) -> None:
    aio_app = build_app(aio_web, aio_payload, files)
    async with aio_test_utils.TestClient(aio_test_utils.TestServer(aio_app)) as client:
        expected = await answers(client)
    fl_app = build_app(fl_web, fl_payload, files)
    async with fl_test_utils.TestClient(fl_test_utils.TestServer(fl_app)) as client:
        got = await answers(client)
    mismatches = [(e, g) for e, g in zip(expected, got, strict=True) if e != g]
    assert not mismatches, "\n".join(f"aiohttp : {e}\nforkloop: {g}" for e, g in mismatches)


class _WatchedFile(io.BufferedReader):
    """A binary file that records which thread reads it, and how much each read asks for."""

    reads: list[tuple[int, int]]

    def read(self, size: int | None = -1) -> bytes:
        self.reads.append((threading.get_ident(), -1 if size is None else size))
        return super().read(size)


async def test_a_file_body_is_read_in_bounded_chunks_off_the_event_loop(files: Path) -> None:
    watched = _WatchedFile(io.FileIO(files / "big.bin", "rb"))
    watched.reads = []
    loop_thread = threading.get_ident()

    async def handler(request: Any) -> Any:
        return fl_web.Response(body=watched)

    app = fl_web.Application()
    app.router.add_get("/", handler)
    async with fl_test_utils.TestClient(fl_test_utils.TestServer(app)) as client:
        async with client.get("/") as resp:
            assert resp.headers["Content-Length"] == str(len(BIG))
            assert await resp.read() == BIG
        for _ in range(200):
            if watched.closed:
                break
            await asyncio.sleep(0.01)
    assert watched.closed  # closed once sent, as aiohttp does
    assert len(watched.reads) >= 2  # 300 KiB in chunks, not at once
    assert all(thread != loop_thread for thread, _ in watched.reads)
    assert all(0 < size <= fl_payload.DEFAULT_CHUNK_SIZE for _, size in watched.reads)

"""``await request.post()`` with real clients: curl -F, aiohttp FormData, httpx, a browser body."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from mp_helpers import Serve, body_of, raw_request, status_of

from forkloop import web

SEEN: list[Any] = []


async def echo_form(request: web.Request) -> web.Response:
    data = await request.post()
    assert data is await request.post()  # cached on the request
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, web.FileField):
            SEEN.append(value)
            content = value.file.read()
            out.setdefault(key, []).append(
                {
                    "filename": value.filename,
                    "ctype": value.content_type,
                    "sha256": hashlib.sha256(content).hexdigest(),
                    "size": len(content),
                    "rolled": bool(getattr(value.file, "_rolled", True)),
                }
            )
        elif isinstance(value, str):
            out.setdefault(key, []).append(value)
        else:
            out.setdefault(key, []).append({"bytes": bytes(value).hex()})
    return web.json_response(out)


def make_app(**kwargs: Any) -> web.Application:
    app = web.Application(**kwargs)
    app.router.add_route("*", "/form", echo_form)
    return app


@pytest.fixture
async def base(serve: Serve) -> str:
    SEEN.clear()
    return await serve(make_app(client_max_size=8 << 20))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def wait_closed(files: list[Any]) -> None:
    for _ in range(100):
        if all(f.file.closed for f in files):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("temporary upload files were not closed after the request")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
async def test_curl_dash_f(base: str, tmp_path: Path) -> None:
    small = tmp_path / "notes é.txt"
    small.write_text("hello from curl\n")
    big = tmp_path / "big.bin"
    big_data = os.urandom(3 << 20)  # past the spool threshold: rolled to disk
    big.write_bytes(big_data)
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--max-time", "30",
        "-F", "name=José",
        "-F", f"doc=@{small};type=text/plain",
        "-F", f"blob=@{big}",
        base + "/form",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    got = __import__("json").loads(out)
    assert got["name"] == ["José"]
    assert got["doc"][0]["filename"] == "notes é.txt"
    assert got["doc"][0]["ctype"] == "text/plain"
    assert got["doc"][0]["sha256"] == sha(b"hello from curl\n")
    assert got["doc"][0]["rolled"] is False
    assert got["blob"][0]["sha256"] == sha(big_data)
    assert got["blob"][0]["rolled"] is True
    await wait_closed(SEEN)


async def test_aiohttp_formdata_and_urlencoded(base: str) -> None:
    payload = os.urandom(100_000)
    form = aiohttp.FormData()
    form.add_field("title", "a title")
    form.add_field("title", "second")
    form.add_field("file", payload, filename="x.bin", content_type="application/x-thing")
    form.add_field("raw", '{"a":1}', content_type="application/json")
    async with aiohttp.ClientSession() as session:
        async with session.post(base + "/form", data=form) as r:
            assert r.status == 200
            got = await r.json()
        assert got["title"] == ["a title", "second"]
        assert got["file"][0] == {
            "filename": "x.bin",
            "ctype": "application/x-thing",
            "sha256": sha(payload),
            "size": 100_000,
            "rolled": False,
        }
        assert got["raw"] == [{"bytes": b'{"a":1}'.hex()}]  # not text/*: bytes, as aiohttp
        async with session.put(base + "/form", data={"a": "1", "b": "x y&z"}) as r:
            assert await r.json() == {"a": ["1"], "b": ["x y&z"]}
        async with session.get(base + "/form") as r:  # not a POST method: empty
            assert await r.json() == {}
        async with session.post(base + "/form", json={"a": 1}) as r:  # not a form type
            assert await r.json() == {}
    await wait_closed(SEEN)


async def test_httpx_files_and_data(base: str) -> None:
    payload = os.urandom(2 << 20)
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.patch(
            base + "/form",
            data={"k": "v", "multi": ["1", "2"]},
            files={"up": ("report.pdf", payload, "application/pdf")},
        )
        assert r.status_code == 200
        got = r.json()
        r2 = await client.delete(base + "/form")  # DELETE without body
        assert r2.json() == {}
    assert got["k"] == ["v"]
    assert got["multi"] == ["1", "2"]
    assert got["up"][0]["filename"] == "report.pdf"
    assert got["up"][0]["sha256"] == sha(payload)
    assert got["up"][0]["rolled"] is True
    await wait_closed(SEEN)


async def test_browser_style_form_body(base: str) -> None:
    """What Chrome sends for a form with a UTF-8 text field, a file and an empty file input."""
    b = "----WebKitFormBoundaryePkpFF7tjBAqx29L"
    body = (
        (
            f"--{b}\r\n"
            'Content-Disposition: form-data; name="comment"\r\n\r\n'
            "naïve café 😀\r\n"
            f"--{b}\r\n"
            'Content-Disposition: form-data; name="avatar"; filename="ph%22oto é.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + b"\x89PNG\r\n\x1a\n"
        + (
            f"\r\n--{b}\r\n"
            'Content-Disposition: form-data; name="nofile"; filename=""\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
            f"\r\n--{b}--\r\n"
        ).encode()
    )
    head = (
        "POST /form HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0\r\n"
        "Origin: http://t\r\nAccept-Language: en\r\n"
        f"Content-Type: multipart/form-data; boundary={b}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    resp = await raw_request(base, head + body)
    assert status_of(resp) == 200, resp
    got = __import__("json").loads(body_of(resp))
    assert got["comment"] == ["naïve café 😀"]
    # Browsers escape '"' as %22 (HTML spec); the server keeps the name as sent.
    assert got["avatar"][0]["filename"] == "ph%22oto é.png"
    assert got["avatar"][0]["sha256"] == sha(b"\x89PNG\r\n\x1a\n")
    assert got["nofile"] == [{"bytes": ""}]  # no file chosen: aiohttp gives b""


async def test_client_max_size_413_multipart_and_urlencoded(serve: Serve) -> None:
    base = await serve(make_app(client_max_size=64 * 1024))
    form = aiohttp.FormData()
    form.add_field("f", os.urandom(200_000), filename="big.bin")
    async with aiohttp.ClientSession() as session:
        async with session.post(base + "/form", data=form) as r:
            assert r.status == 413
            assert "65536" in await r.text()
        async with session.post(base + "/form", data={"a": "x" * 100_000}) as r:
            assert r.status == 413
        async with session.post(base + "/form", data={"a": "x" * 1000}) as r:
            assert r.status == 200


async def test_max_field_count_413(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        fields = [("f", str(i)) for i in range(1001)]
        async with session.post(base + "/form", data=fields) as r:
            assert r.status == 413
            assert "form fields 1000 exceeded" in await r.text()  # aiohttp's text
        form = aiohttp.FormData(fields)
        form._is_multipart = True  # force multipart/form-data for plain fields
        async with session.post(base + "/form", data=form) as r:
            assert r.status == 413
        async with session.post(base + "/form", data=fields[:1000]) as r:
            assert r.status == 200
            assert len((await r.json())["f"]) == 1000


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_failed_uploads_leave_no_temp_files(
    serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """413 mid-file and truncated bodies close every temporary file at once."""
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))  # this test's own temp directory
    base = await serve(make_app(client_max_size=3 << 20))
    before = open_fds()
    big = os.urandom(2 << 20)
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            form = aiohttp.FormData()
            form.add_field("a", io.BytesIO(big), filename="a.bin")  # rolled to disk
            form.add_field("b", io.BytesIO(big), filename="b.bin")  # crosses client_max_size
            async with session.post(base + "/form", data=form) as r:
                assert r.status == 413
    b = "bb"
    body = (f'--{b}\r\nContent-Disposition: form-data; name="f"; filename="x"\r\n\r\n').encode()
    body += os.urandom(1 << 21)  # no closing boundary
    head = (
        f"POST /form HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
        f"Content-Type: multipart/form-data; boundary={b}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    resp = await raw_request(base, head + body)
    assert status_of(resp) == 400
    await asyncio.sleep(0.1)
    assert open_fds() <= before + 2  # allow for the event loop's own churn
    assert list(spool.iterdir()) == []


async def test_gzip_bomb_field_is_bounded_by_client_max_size(serve: Serve) -> None:
    """A tiny gzip part that inflates past client_max_size is refused, not inflated."""
    base = await serve(make_app(client_max_size=1 << 20))
    bomb = gzip.compress(b"\0" * (64 << 20))  # 64 MiB of zeros in ~64 KiB
    assert len(bomb) < 100_000
    b = "bomb"
    body = (
        (
            f'--{b}\r\nContent-Disposition: form-data; name="f"\r\nContent-Encoding: gzip\r\n\r\n'
        ).encode()
        + bomb
        + f"\r\n--{b}--\r\n".encode()
    )
    head = (
        f"POST /form HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
        f"Content-Type: multipart/form-data; boundary={b}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    resp = await raw_request(base, head + body)
    assert status_of(resp) == 413


async def test_files_closed_even_when_the_handler_fails(serve: Serve) -> None:
    kept: list[web.FileField] = []

    async def failing(request: web.Request) -> web.Response:
        data = await request.post()
        field = data["f"]
        assert isinstance(field, web.FileField)
        kept.append(field)
        raise RuntimeError("handler bug")

    app = web.Application(client_max_size=8 << 20)
    app.router.add_post("/fail", failing)
    base = await serve(app)
    form = aiohttp.FormData()
    form.add_field("f", io.BytesIO(os.urandom(2 << 20)), filename="f.bin")
    async with aiohttp.ClientSession() as session, session.post(base + "/fail", data=form) as r:
        assert r.status == 500
    await wait_closed(kept)  # type: ignore[arg-type]


async def test_declared_oversize_upload_refused_before_the_body(serve: Serve) -> None:
    """curl-style ``Expect: 100-continue`` with a too large Content-Length: 413, no 100."""
    base = await serve(make_app(client_max_size=1 << 20))
    head = (
        "POST /form HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
        "Content-Type: multipart/form-data; boundary=xx\r\n"
        f"Content-Length: {50 << 20}\r\n\r\n"
    ).encode()
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 413"), status_line

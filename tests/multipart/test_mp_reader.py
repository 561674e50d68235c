"""``await request.multipart()``: aiohttp's reader API over real sockets."""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from typing import Any

import aiohttp
import pytest
from mp_helpers import Serve, body_of, raw_request, status_of

from forkloop import web
from forkloop.core.web.multipart import BodyPartReader, MultipartReader

B = "b0undary"


def http_post(
    body: bytes, ctype: str = f"multipart/form-data; boundary={B}", path: str = "/"
) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def mp(*parts: tuple[str, bytes], boundary: str = B) -> bytes:
    """Parts as (header block, body)."""
    out = b""
    for headers, body in parts:
        block = f"{headers}\r\n" if headers else ""
        out += f"--{boundary}\r\n{block}\r\n".encode() + body + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


async def describe(reader: MultipartReader) -> list[Any]:
    out: list[Any] = []
    async for part in reader:
        if isinstance(part, MultipartReader):
            out.append({"nested": await describe(part)})
            continue
        assert isinstance(part, BodyPartReader)
        assert not part.at_eof()
        data = await part.read(decode=True)
        assert part.at_eof()
        out.append(
            {
                "name": part.name,
                "filename": part.filename,
                "data": data.decode("latin-1"),
                "ctype": part.headers.get("Content-Type"),
            }
        )
    assert reader.at_eof()
    assert await reader.next() is None
    return out


async def describe_handler(request: web.Request) -> web.Response:
    return web.json_response(await describe(await request.multipart()))


@pytest.fixture
async def base(serve: Serve) -> str:
    app = web.Application()
    app.router.add_post("/", describe_handler)
    return await serve(app)


async def test_parts_names_filenames_and_rfc5987(base: str) -> None:
    body = mp(
        ('Content-Disposition: form-data; name="plain"', b"v1"),
        (
            'Content-Disposition: form-data; name="f"; filename="fallback.txt"; '
            "filename*=UTF-8''%E2%82%AC%20r%C3%A9sum%C3%A9.txt\r\nContent-Type: text/plain",
            b"euro",
        ),
        ('Content-Disposition: form-data; name="empty"', b""),
    )
    resp = await raw_request(base, http_post(body))
    assert status_of(resp) == 200
    assert json.loads(body_of(resp)) == [
        {"name": "plain", "filename": None, "data": "v1", "ctype": None},
        {"name": "f", "filename": "€ résumé.txt", "data": "euro", "ctype": "text/plain"},
        {"name": "empty", "filename": None, "data": "", "ctype": None},
    ]


async def test_decode_transfer_and_content_encodings(base: str) -> None:
    payload = b"hello = world\r\n\xe9"
    qp = b"hello =3D world=0D=0A=E9"
    raw_deflate = zlib.compressobj(wbits=-15)
    deflated = raw_deflate.compress(payload) + raw_deflate.flush()
    body = mp(
        (
            "Content-Disposition: form-data; name=b64\r\nContent-Transfer-Encoding: base64",
            base64.encodebytes(payload),
        ),
        (
            "Content-Disposition: form-data; name=qp\r\n"
            "Content-Transfer-Encoding: quoted-printable",
            qp,
        ),
        (
            "Content-Disposition: form-data; name=gz\r\nContent-Encoding: gzip",
            gzip.compress(payload),
        ),
        (
            "Content-Disposition: form-data; name=zl\r\nContent-Encoding: deflate",
            zlib.compress(payload),
        ),
        ("Content-Disposition: form-data; name=rd\r\nContent-Encoding: deflate", deflated),
        ("Content-Disposition: form-data; name=bin\r\nContent-Transfer-Encoding: binary", payload),
    )
    resp = await raw_request(base, http_post(body))
    assert status_of(resp) == 200, resp
    assert [p["data"] for p in json.loads(body_of(resp))] == [payload.decode("latin-1")] * 6


async def test_nested_multipart_returns_a_reader(base: str) -> None:
    inner = mp(
        ('Content-Disposition: file; filename="a.txt"', b"AAA"),
        ('Content-Disposition: file; filename="b.txt"', b"BBB"),
        boundary="inner",
    )
    body = mp(
        ('Content-Disposition: form-data; name="title"', b"t"),
        (
            'Content-Disposition: form-data; name="files"\r\n'
            "Content-Type: multipart/mixed; boundary=inner",
            inner,
        ),
        ('Content-Disposition: form-data; name="after"', b"z"),
    )
    resp = await raw_request(base, http_post(body))
    assert status_of(resp) == 200, resp
    got = json.loads(body_of(resp))
    assert got[0]["data"] == "t"
    assert [p["data"] for p in got[1]["nested"]] == ["AAA", "BBB"]
    assert [p["filename"] for p in got[1]["nested"]] == ["a.txt", "b.txt"]
    assert got[2]["data"] == "z"


async def test_text_json_form_readline_release_and_chunks(serve: Serve) -> None:
    async def handler(request: web.Request) -> web.Response:
        reader = await request.multipart()
        out: dict[str, Any] = {}
        part = await reader.next()
        assert isinstance(part, BodyPartReader)
        out["text"] = await part.text()
        part = await reader.next()
        assert isinstance(part, BodyPartReader)
        out["json"] = await part.json()
        part = await reader.next()
        assert isinstance(part, BodyPartReader)
        out["form"] = await part.form()
        part = await reader.next()
        assert isinstance(part, BodyPartReader)
        out["lines"] = [(await part.readline()).decode(), (await part.readline()).decode()]
        out["rest"] = (await part.read()).decode()
        part = await reader.next()  # released without reading by the next next()
        assert isinstance(part, BodyPartReader)
        first = await part.read_chunk(3)
        out["first"] = first.decode()
        part = await reader.next()
        assert isinstance(part, BodyPartReader)
        sizes = [len(c) async for c in part]
        out["chunk_sizes"] = sizes
        await reader.release()
        out["eof"] = reader.at_eof()
        return web.json_response(out)

    app = web.Application()
    app.router.add_post("/", handler)
    base = await serve(app)
    body = mp(
        ("Content-Type: text/plain; charset=latin-1", "café".encode("latin-1")),
        ("Content-Type: application/json", b'{"a": [1, 2]}'),
        ("Content-Type: application/x-www-form-urlencoded", b"x=1&y=%C3%A9&z="),
        ("", b"line1\nline2\nrest"),
        ("", b"skipped entirely"),
        ("", b"q" * 20000),
        ("", b"never read"),
    )
    resp = await raw_request(base, http_post(body, "multipart/mixed; boundary=" + B))
    assert status_of(resp) == 200, resp
    assert json.loads(body_of(resp)) == {
        "text": "café",
        "json": {"a": [1, 2]},
        "form": [["x", "1"], ["y", "é"], ["z", ""]],
        "lines": ["line1\n", "line2\n"],
        "rest": "rest",
        "first": "ski",
        "chunk_sizes": [8192, 8192, 3616],
        "eof": True,
    }


async def test_body_split_into_tiny_tcp_segments(base: str) -> None:
    body = mp(
        *[
            (f'Content-Disposition: form-data; name="f{i}"', bytes([65 + i]) * (i * 37))
            for i in range(10)
        ]
    )
    request = http_post(body)
    pieces = [request[i : i + 7] for i in range(0, len(request), 7)]
    resp = await raw_request(base, pieces)
    assert status_of(resp) == 200
    got = json.loads(body_of(resp))
    assert [p["data"] for p in got] == [chr(65 + i) * (i * 37) for i in range(10)]


async def test_aiohttp_client_multipart_writer(base: str) -> None:
    with aiohttp.MultipartWriter("form-data") as writer:
        part = writer.append("hello")
        part.set_content_disposition("form-data", name="greeting")
        part = writer.append_json({"k": "v"})
        part.set_content_disposition("form-data", name="meta")
        part = writer.append(b"\x00\x01" * 5000, {"Content-Type": "application/octet-stream"})
        part.set_content_disposition("form-data", name="blob", filename="blob.bin")
    async with aiohttp.ClientSession() as session, session.post(base + "/", data=writer) as r:
        assert r.status == 200
        got = await r.json()
    assert [p["name"] for p in got] == ["greeting", "meta", "blob"]
    assert got[1]["data"] == '{"k": "v"}'
    assert got[2]["data"] == ("\x00\x01" * 5000)


MALFORMED = [
    ("no boundary parameter", mp(("", b"x")), "multipart/form-data", "boundary is missing"),
    (
        "overlong boundary",
        mp(("", b"x"), boundary="a" * 71),
        "multipart/form-data; boundary=" + "a" * 71,
        "boundary is 71 bytes",
    ),
    (
        "truncated part",
        b"--b0undary\r\nContent-Disposition: form-data; name=a\r\n\r\npartial data",
        None,
        "truncated inside a part",
    ),
    (
        "truncated headers",
        b"--b0undary\r\nContent-Disposition: form-data",
        None,
        "inside part headers",
    ),
    ("no closing boundary", b"--b0undary\r\n\r\nx\r\n", None, "truncated"),
    ("garbage", b"this is not multipart at all", None, "before the first boundary"),
    (
        "too many part headers",
        mp(("\r\n".join(f"X-H{i}: v" for i in range(40)), b"x")),
        None,
        "too many multipart part headers",
    ),
    ("too large part headers", mp(("X-Big: " + "a" * 20000, b"x")), None, "exceed 16384 bytes"),
    ("bad header line", mp(("no colon here", b"x")), None, "malformed multipart part header"),
    ("bad base64", mp(("Content-Transfer-Encoding: base64", b"@@@")), None, "invalid base64"),
    ("bad gzip", mp(("Content-Encoding: gzip", b"not gzip")), None, "invalid gzip"),
]


@pytest.mark.parametrize(
    ("body", "ctype", "message"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
async def test_malformed_bodies_answer_400(
    base: str, body: bytes, ctype: str | None, message: str
) -> None:
    resp = await raw_request(base, http_post(body, ctype or f"multipart/form-data; boundary={B}"))
    assert status_of(resp) == 400, resp
    assert message.encode() in body_of(resp)


async def test_client_that_stops_sending_does_not_hang_the_server(serve: Serve) -> None:
    """A body cut short by the client closing: the handler gets an error, the server lives on."""
    import asyncio

    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        try:
            await describe(await request.multipart())
        except BaseException as exc:
            seen.append(type(exc).__name__)
            raise
        return web.Response(text="unexpected")

    app = web.Application()
    app.router.add_post("/", handler)

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/ok", ok)
    base = await serve(app)
    host, port = base.removeprefix("http://").split(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    full = http_post(mp(("", b"x" * 100000)))
    writer.write(full[: len(full) // 2])
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    for _ in range(50):
        if seen:
            break
        await asyncio.sleep(0.05)
    assert seen  # the handler did not hang waiting for the rest
    async with aiohttp.ClientSession() as session, session.get(base + "/ok") as r:
        assert await r.text() == "ok"


async def test_reader_subclass_hooks(serve: Serve) -> None:
    """aiohttp's customisation points: ``part_reader_cls`` and ``multipart_reader_cls``."""

    class LoudPart(BodyPartReader):
        async def text(self, *, encoding: str | None = None) -> str:
            return (await super().text(encoding=encoding)).upper()

    class MyReader(MultipartReader):
        part_reader_cls = LoudPart

    async def handler(request: web.Request) -> web.Response:
        reader = MyReader(request.headers, request.content)
        out = []
        async for part in reader:
            if isinstance(part, MultipartReader):
                assert type(part) is MyReader  # nested readers keep the subclass
                out += [await p.text() async for p in part if isinstance(p, LoudPart)]
            else:
                out.append(await part.text())
        return web.Response(text=",".join(out))

    app = web.Application()
    app.router.add_post("/", handler)
    base = await serve(app)
    inner = mp(("", b"nested"), boundary="in")
    body = mp(("", b"plain"), ("Content-Type: multipart/mixed; boundary=in", inner))
    resp = await raw_request(base, http_post(body))
    assert body_of(resp) == b"PLAIN,NESTED"

"""FileResponse: validators, preconditions, ranges, precompressed siblings, sendfile."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from static_helpers import Serve, raw_get, serve_in_thread, split_response

from forkloop import web
from forkloop.core.multipart import MultipartParser, PartData, PartHeaders
from forkloop.core.web import fileresponse as fr
from forkloop.core.web.fileresponse import Plan, accepted_encodings, parse_ranges, plan

# -- pure decisions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size", "expected"),
    [
        ("bytes=0-0", 10, [(0, 1)]),
        ("bytes=0-9", 10, [(0, 10)]),
        ("bytes=0-100", 10, [(0, 10)]),
        ("bytes=5-", 10, [(5, 10)]),
        ("bytes=-3", 10, [(7, 10)]),
        ("bytes=-30", 10, [(0, 10)]),
        ("bytes=10-", 10, []),
        ("bytes=-0", 10, []),
        ("bytes=0-1, 4-5", 10, [(0, 2), (4, 6)]),
        ("bytes=4-5,0-1", 10, [(0, 2), (4, 6)]),
        ("bytes=0-4,2-6", 10, [(0, 7)]),
        ("bytes=0-1,2-3", 10, [(0, 4)]),
        ("BYTES = 1-2", 10, [(1, 3)]),
        ("bytes=0-1,20-30", 10, [(0, 2)]),
        ("bytes=0-", 0, []),
    ],
)
def test_parse_ranges(value: str, size: int, expected: list[tuple[int, int]]) -> None:
    assert parse_ranges(value, size) == expected


@pytest.mark.parametrize(
    "value", ["bytes", "bytes=", "bytes=a-b", "bytes=5-2", "bytes=--1", "bytes=-", "bytes=1-2-3",
              "bytes=" + ",".join(["0-1"] * 101), "bytes=+1-2",
              "items=0-1", "bytes=\u0661-2"],
)  # fmt: skip
def test_parse_ranges_malformed(value: str) -> None:
    with pytest.raises(ValueError, match=r"range|Range"):
        parse_ranges(value, 10)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gzip, deflate, br", {"gzip", "deflate", "br"}),
        ("br;q=0, gzip;q=0.5", {"gzip"}),
        ("*", {"br", "gzip"}),
        ("*;q=1, br;q=0", {"gzip"}),
        ("GZIP;Q=1.0", {"gzip"}),
        ("identity", {"identity"}),
        ("gzip;q=bad", set()),
        ("", set()),
    ],
)
def test_accepted_encodings(value: str, expected: set[str]) -> None:
    assert accepted_encodings(value) == expected


MTIME = 1_700_000_000
BEFORE = email.utils.formatdate(MTIME - 10, usegmt=True)
AT = email.utils.formatdate(MTIME, usegmt=True)
AFTER = email.utils.formatdate(MTIME + 10, usegmt=True)


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("GET", {}, Plan(200)),
        ("GET", {"If-None-Match": '"tag"'}, Plan(304)),
        ("GET", {"If-None-Match": 'W/"tag"'}, Plan(304)),  # weak comparison
        ("GET", {"If-None-Match": '"other", "tag"'}, Plan(304)),
        ("GET", {"If-None-Match": "*"}, Plan(304)),
        ("GET", {"If-None-Match": '"other"'}, Plan(200)),
        ("POST", {"If-None-Match": '"tag"'}, Plan(412)),
        ("HEAD", {"If-Modified-Since": AT}, Plan(304)),
        ("GET", {"If-Modified-Since": AFTER}, Plan(304)),
        ("GET", {"If-Modified-Since": BEFORE}, Plan(200)),
        ("GET", {"If-Modified-Since": "garbage"}, Plan(200)),
        # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2 step 4).
        ("GET", {"If-None-Match": '"other"', "If-Modified-Since": AFTER}, Plan(200)),
        ("GET", {"If-Match": '"tag"'}, Plan(200)),
        ("GET", {"If-Match": "*"}, Plan(200)),
        ("GET", {"If-Match": '"other"'}, Plan(412)),
        ("GET", {"If-Match": 'W/"tag"'}, Plan(412)),  # strong comparison
        ("GET", {"If-Unmodified-Since": BEFORE}, Plan(412)),
        ("GET", {"If-Unmodified-Since": AT}, Plan(200)),
        ("GET", {"If-Match": '"tag"', "If-Unmodified-Since": BEFORE}, Plan(200)),
        ("GET", {"Range": "bytes=0-9"}, Plan(206, ((0, 10),))),
        ("GET", {"Range": "bytes=0-"}, Plan(206, ((0, 100),))),
        ("HEAD", {"Range": "bytes=0-9"}, Plan(200)),
        ("GET", {"Range": "bytes=0-1,5-6"}, Plan(206, ((0, 2), (5, 7)))),
        ("GET", {"Range": "bytes=200-"}, Plan(416)),
        ("GET", {"Range": "bytes=x"}, Plan(416)),
        ("GET", {"Range": "lines=1-2"}, Plan(416)),  # as aiohttp: not ignored
        ("GET", {"Range": "bytes=0-9", "If-Range": '"tag"'}, Plan(206, ((0, 10),))),
        ("GET", {"Range": "bytes=0-9", "If-Range": '"other"'}, Plan(200)),
        ("GET", {"Range": "bytes=0-9", "If-Range": 'W/"tag"'}, Plan(200)),
        ("GET", {"Range": "bytes=0-9", "If-Range": AT}, Plan(206, ((0, 10),))),
        ("GET", {"Range": "bytes=0-9", "If-Range": BEFORE}, Plan(200)),
        ("GET", {"Range": "bytes=0-9", "If-None-Match": '"tag"'}, Plan(304)),
    ],
)
def test_plan(method: str, headers: dict[str, str], expected: Plan) -> None:
    assert plan(method, headers, "tag", MTIME, 100) == expected


# -- over the wire ---------------------------------------------------------------------------


@pytest.fixture
async def files(serve: Serve, tmp_path: Path) -> tuple[str, Path]:
    d = tmp_path / "files"
    d.mkdir()
    (d / "data.bin").write_bytes(bytes(range(256)) * 4)  # 1024 bytes
    (d / "app.js").write_text("console.log('plain');\n" * 50)
    (d / "app.js.gz").write_bytes(gzip.compress((d / "app.js").read_bytes()))
    (d / "app.js.br").write_bytes(b"pretend-brotli")
    (d / "only.css").write_text("a{}")
    (d / "only.css.gz").write_bytes(gzip.compress(b"a{}"))
    (d / "archive.tar.gz").write_bytes(gzip.compress(b"tar"))
    (d / "noext").write_bytes(b"?")
    (d / "empty.txt").write_bytes(b"")
    os.mkfifo(d / "fifo")
    (d / "dir").mkdir()

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(d / request.match_info["name"], chunk_size=100)

    app = web.Application()
    app.router.add_get("/f/{name}", handler)
    return await serve(app), d


async def get(base: str, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    extra = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
    return split_response(await raw_get(base, path, extra=extra))


async def test_validators_and_types(files: tuple[str, Path]) -> None:
    base, d = files
    status, h, body = await get(base, "/f/data.bin")
    assert status == 200
    assert body == (d / "data.bin").read_bytes()
    st = (d / "data.bin").stat()
    assert h["etag"] == f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
    assert h["last-modified"] == email.utils.formatdate(int(st.st_mtime), usegmt=True)
    assert h["accept-ranges"] == "bytes"
    assert h["content-length"] == "1024"
    assert h["content-type"] == "application/octet-stream"
    assert "vary" not in h
    assert (await get(base, "/f/app.js"))[1]["content-type"] == "text/javascript"
    # A compressed file asked for by name is that archive type, not a Content-Encoding.
    _, h, _ = await get(base, "/f/archive.tar.gz", Accept_Encoding="gzip")
    assert h["content-type"] == "application/gzip"
    assert "content-encoding" not in h
    status, h, body = await get(base, "/f/empty.txt")
    assert (status, h["content-length"], body) == (200, "0", b"")


async def test_missing_directory_and_special_files(files: tuple[str, Path]) -> None:
    base, d = files
    assert (await get(base, "/f/missing"))[0] == 404
    assert (await get(base, "/f/dir"))[0] == 403
    assert (await get(base, "/f/fifo"))[0] == 403  # never blocks on a FIFO
    if os.geteuid() != 0:  # root reads anything
        (d / "secret").write_bytes(b"x")
        (d / "secret").chmod(0)
        assert (await get(base, "/f/secret"))[0] == 403


async def test_conditional_requests(files: tuple[str, Path]) -> None:
    base, _ = files
    _, h, _ = await get(base, "/f/data.bin")
    etag, lm = h["etag"], h["last-modified"]
    status, h304, body = await get(base, "/f/data.bin", If_None_Match=etag)
    assert (status, body) == (304, b"")
    assert h304["etag"] == etag
    assert "content-length" not in h304 or h304["content-length"] == "0"
    assert (await get(base, "/f/data.bin", If_None_Match=f"W/{etag}"))[0] == 304
    assert (await get(base, "/f/data.bin", If_Modified_Since=lm))[0] == 304
    future = email.utils.formatdate(time.time() + 3600, usegmt=True)
    assert (await get(base, "/f/data.bin", If_Modified_Since=future))[0] == 304
    past = email.utils.formatdate(0, usegmt=True)
    assert (await get(base, "/f/data.bin", If_Modified_Since=past))[0] == 200
    assert (await get(base, "/f/data.bin", If_Match='"nope"'))[0] == 412
    assert (await get(base, "/f/data.bin", If_Match=etag))[0] == 200
    assert (await get(base, "/f/data.bin", If_Unmodified_Since=past))[0] == 412


async def test_ranges(files: tuple[str, Path]) -> None:
    base, d = files
    data = (d / "data.bin").read_bytes()
    status, h, body = await get(base, "/f/data.bin", Range="bytes=10-19")
    assert (status, body) == (206, data[10:20])
    assert h["content-range"] == "bytes 10-19/1024"
    assert h["content-length"] == "10"
    status, h, body = await get(base, "/f/data.bin", Range="bytes=-4")
    assert (status, body, h["content-range"]) == (206, data[-4:], "bytes 1020-1023/1024")
    status, h, body = await get(base, "/f/data.bin", Range="bytes=1000-")
    assert (status, body) == (206, data[1000:])
    status, h, body = await get(base, "/f/data.bin", Range="bytes=2000-")
    assert (status, h["content-range"], body) == (416, "bytes */1024", b"")
    assert (await get(base, "/f/data.bin", Range="bytes=oops"))[0] == 416
    _, h, _ = await get(base, "/f/data.bin")
    assert (await get(base, "/f/data.bin", Range="bytes=0-3", If_Range=h["etag"]))[0] == 206
    status, _, body = await get(base, "/f/data.bin", Range="bytes=0-3", If_Range='"stale"')
    assert (status, body) == (200, data)


async def test_multiple_ranges_are_multipart_byteranges(files: tuple[str, Path]) -> None:
    base, d = files
    data = (d / "data.bin").read_bytes()
    async with (
        aiohttp.ClientSession() as session,
        session.get(base + "/f/data.bin", headers={"Range": "bytes=0-9, 500-599, -5"}) as r,
    ):
        assert r.status == 206
        assert r.headers["Content-Type"].startswith("multipart/byteranges; boundary=")
        raw = await r.read()
        assert int(r.headers["Content-Length"]) == len(raw)
        boundary = r.headers["Content-Type"].partition("boundary=")[2]
    parser = MultipartParser(boundary)
    got: list[tuple[str, bytes]] = []
    for event in parser.feed(raw) + parser.feed_eof():
        if isinstance(event, PartHeaders):
            headers = dict(event.headers)
            assert headers["Content-Type"] == "application/octet-stream"
            got.append((headers["Content-Range"], b""))
        elif isinstance(event, PartData):
            got[-1] = (got[-1][0], got[-1][1] + event.data)
    assert parser.done
    assert got == [
        ("bytes 0-9/1024", data[0:10]),
        ("bytes 500-599/1024", data[500:600]),
        ("bytes 1019-1023/1024", data[-5:]),
    ]


async def test_precompressed_siblings(files: tuple[str, Path]) -> None:
    base, d = files
    plain = (d / "app.js").read_bytes()
    status, h, body = await get(base, "/f/app.js", Accept_Encoding="gzip, br")
    assert (status, h["content-encoding"], body) == (200, "br", b"pretend-brotli")
    assert h["vary"] == "Accept-Encoding"
    assert h["content-type"] == "text/javascript"
    status, h, body = await get(base, "/f/app.js", Accept_Encoding="gzip")
    assert h["content-encoding"] == "gzip"
    assert gzip.decompress(body) == plain
    status, h, body = await get(base, "/f/app.js", Accept_Encoding="br;q=0, gzip;q=0.1")
    assert h["content-encoding"] == "gzip"
    status, h, body = await get(base, "/f/app.js")
    assert "content-encoding" not in h
    assert h["vary"] == "Accept-Encoding"
    assert body == plain
    _, h_plain, _ = await get(base, "/f/app.js")
    _, h_gz, _ = await get(base, "/f/app.js", Accept_Encoding="gzip")
    assert h_plain["etag"] != h_gz["etag"]  # different representations, different tags
    status, h, body = await get(base, "/f/only.css", Accept_Encoding="br")
    assert "content-encoding" not in h
    assert body == b"a{}"


# -- sendfile and the chunked fallback -------------------------------------------------------


BIG = 24 * 1024 * 1024


def big_file_app(path: Path, used: list[Any], finished: list[str] | None = None) -> web.Application:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.FileResponse(path)
        if request.query.get("compress"):
            resp.enable_compression()
        used.append(resp)
        if finished is None:
            return resp
        try:
            await resp.prepare(request)  # sending happens here
        except BaseException as exc:
            finished.append(type(exc).__name__)
            raise
        finished.append("ok")
        return resp

    app = web.Application()
    app.router.add_get("/big", handler)
    return app


@pytest.fixture(scope="module")
def big_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.bin"
    with path.open("wb") as f:
        block = os.urandom(1 << 20)
        for i in range(BIG >> 20):
            f.write(i.to_bytes(4, "big") + block[4:])
    return path


@pytest.fixture(scope="module")
def big_data(big_path: Path) -> bytes:
    return big_path.read_bytes()


async def fetch_sha(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, int]:
    digest = hashlib.sha256()
    size = 0
    async with (
        aiohttp.ClientSession(auto_decompress=True) as session,
        session.get(url, headers=headers) as r,
    ):
        async for chunk in r.content.iter_chunked(1 << 16):
            digest.update(chunk)
            size += len(chunk)
        return r.status, digest.hexdigest(), size


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
@pytest.mark.parametrize("mode", ["sendfile", "nosendfile", "compressed", "range"])
async def test_big_file_integrity(
    big_path: Path,
    big_data: bytes,
    use_uvloop: bool,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if mode == "nosendfile":
        monkeypatch.setenv("FORKLOOP_NOSENDFILE", "1")
    used: list[Any] = []
    expected = hashlib.sha256(big_data).hexdigest()
    with serve_in_thread(lambda: big_file_app(big_path, used), use_uvloop=use_uvloop) as base:
        if mode == "range":
            start, end = 12345, BIG - 4321
            status, sha, size = await fetch_sha(
                base + "/big", {"Range": f"bytes={start}-{end - 1}"}
            )
            want = hashlib.sha256(big_data[start:end]).hexdigest()
            assert (status, sha, size) == (206, want, end - start)
        else:
            query = "?compress=1" if mode == "compressed" else ""
            headers = {"Accept-Encoding": "gzip"} if mode == "compressed" else {}
            status, sha, size = await fetch_sha(base + "/big" + query, headers)
            assert (status, sha, size) == (200, expected, BIG)
    assert used[0].sendfile_used is (mode in ("sendfile", "range"))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
async def test_client_gone_mid_file_frees_the_handler(
    big_path: Path, big_data: bytes, use_uvloop: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that reads a little then disconnects: the send ends, the server keeps serving."""
    used: list[Any] = []
    finished: list[str] = []
    app = lambda: big_file_app(big_path, used, finished)  # noqa: E731
    with serve_in_thread(app, use_uvloop=use_uvloop) as base:
        host, port = base.removeprefix("http://").split(":")
        for _ in range(3):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
            await reader.readexactly(100_000)
            writer.transport.abort()
        for _ in range(100):  # each send notices the reset and ends (no hang, no busy loop)
            if len(finished) == 3:
                break
            await asyncio.sleep(0.05)
        assert len(finished) == 3
        assert "ok" not in finished
        status, sha, size = await fetch_sha(base + "/big", {"Range": "bytes=0-99"})
        assert (status, size) == (206, 100)
        assert sha == hashlib.sha256(big_data[:100]).hexdigest()
    # Waiting for writability must not misfire (add_writer is level-triggered).
    assert not [r for r in caplog.records if "InvalidStateError" in (r.exc_text or r.getMessage())]
    assert not [
        r
        for r in caplog.records
        if r.exc_info
        and r.exc_info[0] is not None
        and r.exc_info[0].__name__ == "InvalidStateError"
    ]


def test_sendfile_loop_cache_is_per_loop_type() -> None:
    assert isinstance(fr._LOOP_SENDFILE, dict)


async def test_compression_is_skipped_for_ranges_and_precompressed(
    serve: Serve, tmp_path: Path
) -> None:
    (tmp_path / "t.txt").write_bytes(b"0123456789" * 100)
    (tmp_path / "p.js").write_text("x" * 100)
    (tmp_path / "p.js.gz").write_bytes(gzip.compress(b"x" * 100))

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.FileResponse(tmp_path / request.match_info["name"])
        resp.enable_compression()
        return resp

    app = web.Application()
    app.router.add_get("/{name}", handler)
    base = await serve(app)
    status, h, body = await get(base, "/t.txt", Accept_Encoding="gzip", Range="bytes=0-9")
    assert (status, body, h.get("content-encoding")) == (206, b"0123456789", None)
    status, h, body = await get(base, "/p.js", Accept_Encoding="gzip")
    assert h["content-encoding"] == "gzip"
    assert gzip.decompress(body) == b"x" * 100  # compressed once, not twice
    status, h, body = await get(base, "/t.txt", Accept_Encoding="gzip")
    assert status == 200
    assert h["content-encoding"] == "gzip"
    assert h["transfer-encoding"] == "chunked"
    assert gzip.decompress(dechunk(body)) == b"0123456789" * 100


def dechunk(body: bytes) -> bytes:
    out = b""
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return out
        out, body = out + body[:size], body[size + 2 :]


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
async def test_slow_reader_gets_every_byte_without_loop_errors(
    big_path: Path, big_data: bytes, use_uvloop: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A client slower than the server: sendfile waits for writability many times."""
    used: list[Any] = []
    with serve_in_thread(lambda: big_file_app(big_path, used), use_uvloop=use_uvloop) as base:
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port), limit=1 << 16)
        want = 6 << 20
        writer.write(f"GET /big HTTP/1.1\r\nHost: t\r\nRange: bytes=0-{want - 1}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 206")
        got = bytearray()
        while len(got) < want:
            got += await reader.read(1 << 16)
            await asyncio.sleep(0.0005)
        writer.close()
    assert bytes(got) == big_data[:want]
    assert used[0].sendfile_used
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]

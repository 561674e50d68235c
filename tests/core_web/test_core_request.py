"""The Request API (forkloop.core.web.request) over real sockets.

Most checks are differential: the same raw request is sent to forkloop's low-level ``Server``
and to aiohttp's, the same probe reads the request's properties in both, and the results must
match (our public API is aiohttp's). Where forkloop deliberately differs, the test says so.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import socket
import struct
import warnings
from typing import Any

import pytest
from rawhttp import request_bytes

from forkloop.core.web.app import RequestKey
from forkloop.core.web.request import BaseRequest
from forkloop.core.web.response import Response, json_response


def _lib_json(request: Any, data: Any) -> Any:
    if type(request).__module__.startswith("aiohttp"):
        from aiohttp import web

        return web.json_response(data)
    return json_response(data)


def _etags(value: Any) -> Any:
    if value is None:
        return None
    return [[tag.value, tag.is_weak] for tag in value]


def _date(value: datetime.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _range(request: Any) -> Any:
    try:
        rng = request.http_range
    except ValueError as exc:
        return f"ValueError: {type(exc).__name__}"
    return [rng.start, rng.stop]  # step: see test_http_range_step_is_1


def _has_body(request: Any) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # aiohttp deprecates has_body
        return bool(request.has_body)


def probe(request: Any) -> dict[str, Any]:
    return {
        "method": request.method,
        "version": list(request.version),
        "path": request.path,
        "raw_path": request.raw_path,
        "path_qs": request.path_qs,
        "query_string": request.query_string,
        "query": list(request.query.items()),
        "rel_url": str(request.rel_url),
        "url": str(request.url),
        "host": request.host,
        "remote": request.remote,
        "scheme": request.scheme,
        "secure": request.secure,
        "forwarded": [dict(item) for item in request.forwarded],
        "cookies": dict(request.cookies),
        "content_type": request.content_type,
        "charset": request.charset,
        "content_length": request.content_length,
        "keep_alive": request.keep_alive,
        "if_modified_since": _date(request.if_modified_since),
        "if_unmodified_since": _date(request.if_unmodified_since),
        "if_range": _date(request.if_range),
        "if_match": _etags(request.if_match),
        "if_none_match": _etags(request.if_none_match),
        "http_range": _range(request),
        "has_body": _has_body(request),
        "body_exists": request.body_exists,
        "can_read_body": request.can_read_body,
        "headers": list(request.headers.items()),
        "raw_headers": [[n.decode(), v.decode()] for n, v in request.raw_headers],
    }


async def probe_handler(request: Any) -> Any:
    return _lib_json(request, probe(request))


def _h(**headers: str) -> dict[str, str]:
    return {name.replace("_", "-"): value for name, value in headers.items()}


TARGETS = [
    "/",
    "/plain/path",
    "/caf%C3%A9/a%20b",
    "/a%2Fb/c",
    "/q?a=1&a=2&b=%20x&c=",
    "/q?x=%E2%82%AC&y=a+b",
    "/p;param?k=v",
    "/trailing/",
    "/dot/./seg/../x",
    "//double//slash",
    "/plus+sign",
    "/%7Euser",
]


@pytest.mark.parametrize("target", TARGETS)
async def test_url_parts_match_aiohttp(both: Any, target: str) -> None:
    ours, theirs = await both(probe_handler, request_bytes(target))
    a, b = json.loads(ours.body), json.loads(theirs.body)
    for key in ("path", "raw_path", "path_qs", "query_string", "query", "rel_url", "method"):
        assert a[key] == b[key], key
    assert a["url"] == b["url"]


async def test_asterisk_form_matches_aiohttp(both: Any) -> None:
    ours, theirs = await both(probe_handler, request_bytes("*", "OPTIONS"))
    a, b = json.loads(ours.body), json.loads(theirs.body)
    for key in ("path", "raw_path", "path_qs", "query_string", "rel_url", "method", "url"):
        assert a[key] == b[key], key


async def test_absolute_form_path_matches_aiohttp(both: Any) -> None:
    target = "http://example.com/abs/path?q=1"
    ours, theirs = await both(probe_handler, request_bytes(target))
    a, b = json.loads(ours.body), json.loads(theirs.body)
    for key in ("path", "raw_path", "path_qs", "query_string", "query", "rel_url", "method"):
        assert a[key] == b[key], key


async def test_absolute_form_url_uses_target_authority(both: Any) -> None:
    target = "http://example.com/abs/path?q=1"
    ours, theirs = await both(probe_handler, request_bytes(target))  # Host: test
    a, b = json.loads(ours.body), json.loads(theirs.body)
    assert b["url"] == "http://example.com/abs/path?q=1"
    assert a["url"] == b["url"]
    assert a["host"] == b["host"]


HEADER_CASES = {
    "plain": {},
    "content-type": _h(Content_Type="text/html; charset=ISO-8859-1"),
    "content-type-quoted": _h(Content_Type='multipart/form-data; boundary="x y"; charset="utf-8"'),
    "json-type": _h(Content_Type="application/json"),
    "cookies": _h(Cookie='a=1; b=two; c="quoted"'),
    "two-cookie-lines": {"Cookie": "a=1"},
    "forwarded": _h(Forwarded='for=192.0.2.60;proto=https;by=203.0.113.43, for="[2001:db8::1]:80"'),
    "forwarded-two-lines": _h(Forwarded="for=1.2.3.4"),
    "dates": _h(
        If_Modified_Since="Sun, 06 Nov 1994 08:49:37 GMT",
        If_Unmodified_Since="Sunday, 06-Nov-94 08:49:37 GMT",
        If_Range="Sun, 06 Nov 1994 08:49:37 GMT",
    ),
    "bad-date": _h(If_Modified_Since="not a date"),
    "etags": _h(If_Match='"abc", W/"def"', If_None_Match="*"),
    "range": _h(Range="bytes=10-20"),
    "range-open": _h(Range="bytes=10-"),
    "range-suffix": _h(Range="bytes=-5"),
    "range-bad": _h(Range="items=1-2"),
    "range-reversed": _h(Range="bytes=20-10"),
    "host-port": _h(Host="example.com:8080"),
    "connection-close": _h(Connection="close"),
    "duplicates": {"X-Dup": "1", "x-dup": "2"},
}


@pytest.mark.parametrize("name", list(HEADER_CASES))
async def test_header_derived_properties_match_aiohttp(both: Any, name: str) -> None:
    headers = dict(HEADER_CASES[name])
    data = request_bytes("/h", headers=headers)
    if name == "host-port":
        data = data.replace(b"Host: test\r\n", b"")
    if name == "two-cookie-lines":
        data = data.replace(b"Cookie: a=1\r\n", b"Cookie: a=1\r\nCookie: b=2\r\n")
    if name == "forwarded-two-lines":
        data = data.replace(
            b"Forwarded: for=1.2.3.4\r\n", b"Forwarded: for=1.2.3.4\r\nForwarded: for=5.6.7.8\r\n"
        )
    if name == "duplicates":
        data = data.replace(b"X-Dup: 1\r\nx-dup: 2\r\n", b"X-Dup: 1\r\nx-dup: 2\r\nX-DUP: 3\r\n")
    ours, theirs = await both(probe_handler, data)
    a, b = json.loads(ours.body), json.loads(theirs.body)
    for key in sorted(a):
        if key == "remote":
            continue
        if key == "cookies" and name == "two-cookie-lines":
            # Deliberate: forkloop merges every Cookie line (a proxy may split them, RFC 9113
            # §8.2.3); aiohttp reads only the first.
            assert a[key] == {"a": "1", "b": "2"}
            assert b[key] == {"a": "1"}
            continue
        assert a[key] == b[key], key


@pytest.mark.parametrize(
    ("version", "connection"),
    [("1.1", None), ("1.1", "close"), ("1.0", None), ("1.0", "keep-alive")],
)
async def test_version_and_keep_alive_match_aiohttp(
    both: Any, version: str, connection: str | None
) -> None:
    headers = {"Connection": connection} if connection else {}
    ours, theirs = await both(probe_handler, request_bytes("/", version=version, headers=headers))
    a, b = json.loads(ours.body), json.loads(theirs.body)
    assert a["version"] == b["version"] == [1, int(version[-1])]
    assert a["keep_alive"] == b["keep_alive"]


@pytest.mark.parametrize(
    "body_headers",
    [
        {"Content-Length": "5"},
        {"Transfer-Encoding": "chunked"},
        {"Content-Length": "0"},
        {},
    ],
    ids=["length", "chunked", "empty-length", "none"],
)
async def test_body_flags_match_aiohttp(both: Any, body_headers: dict[str, str]) -> None:
    body: bytes | None = None
    if "Content-Length" in body_headers:
        body = b"x" * int(body_headers["Content-Length"])
    elif body_headers:
        body = b"5\r\nhello\r\n0\r\n\r\n"
    headers = {k: v for k, v in body_headers.items() if k != "Content-Length"}
    ours, theirs = await both(probe_handler, request_bytes("/", "POST", headers=headers, body=body))
    a, b = json.loads(ours.body), json.loads(theirs.body)
    for key in ("has_body", "body_exists", "can_read_body", "content_length"):
        assert a[key] == b[key], key


async def test_basic_properties(serve: Any) -> None:
    seen: dict[str, Any] = {}

    async def handler(request: BaseRequest) -> Response:
        seen.update(probe(request))
        seen["transport"] = request.transport
        seen["peername"] = request.get_extra_info("peername")
        seen["missing"] = request.get_extra_info("no-such-info", "dflt")
        seen["task"] = request.task
        seen["current"] = asyncio.current_task()
        return Response(text="ok")

    served = await serve(handler)
    client = await served.client()
    await client.send(
        request_bytes("/x?y=1", headers={"Host": "example.org"}).replace(b"Host: test\r\n", b"")
    )
    await client.response()
    assert seen["method"] == "GET"
    assert seen["version"] == [1, 1]
    assert seen["host"] == "example.org"
    assert seen["url"] == "http://example.org/x?y=1"
    assert seen["scheme"] == "http"
    assert seen["secure"] is False
    assert seen["remote"] == "127.0.0.1"
    assert seen["transport"] is not None
    assert seen["peername"][0] == "127.0.0.1"
    local = client.writer.get_extra_info("sockname")
    assert seen["peername"][1] == local[1]
    assert seen["missing"] == "dflt"
    assert seen["task"] is seen["current"]
    assert seen["content_type"] == "application/octet-stream"
    assert seen["charset"] is None
    assert seen["content_length"] is None


async def test_host_falls_back_to_local_address(serve: Any) -> None:
    seen: dict[str, Any] = {}

    async def handler(request: BaseRequest) -> Response:
        seen["host"] = request.host
        seen["url"] = str(request.url)
        return Response()

    served = await serve(handler)
    client = await served.client()
    await client.send(b"GET /p HTTP/1.0\r\n\r\n")
    await client.response()
    assert seen["host"]  # aiohttp uses socket.getfqdn(); ours is the local address
    assert seen["url"].endswith("/p")


async def test_body_reading_methods(serve: Any) -> None:
    results: dict[str, Any] = {}

    async def handler(request: BaseRequest) -> Response:
        kind = request.path.strip("/")
        if kind == "read":
            results[kind] = [await request.read(), await request.read()]  # cached
        elif kind == "text":
            results[kind] = await request.text()
        elif kind == "json":
            results[kind] = await request.json()
        elif kind == "json-wrong-type":
            try:
                await request.json()
            except Exception as exc:
                results[kind] = type(exc).__name__
        elif kind == "json-any-type":
            results[kind] = await request.json(content_type=None)
        elif kind == "readany":
            parts = []
            while chunk := await request.content.readany():
                parts.append(chunk)
            results[kind] = b"".join(parts)
        elif kind == "iter_any":
            results[kind] = b"".join([c async for c in request.content.iter_any()])
        elif kind == "readline":
            results[kind] = [line async for line in request.content]
        elif kind == "readexactly":
            try:
                await request.content.readexactly(100)
            except asyncio.IncompleteReadError as exc:
                results[kind] = exc.partial
        elif kind == "read_n":
            results[kind] = [await request.content.read(3), await request.content.read()]
        elif kind == "at_eof":
            before = request.content.at_eof()
            await request.read()
            results[kind] = [before, request.content.at_eof(), request.can_read_body]
        return Response(text="ok")

    served = await serve(handler)
    client = await served.client()
    latin = "café".encode("latin-1")
    sends = [
        request_bytes("/read", "POST", body=b"raw bytes"),
        request_bytes(
            "/text", "POST", headers={"Content-Type": "text/plain; charset=latin-1"}, body=latin
        ),
        request_bytes(
            "/json", "POST", headers={"Content-Type": "application/json"}, body=b'{"a": [1, 2]}'
        ),
        request_bytes(
            "/json-wrong-type", "POST", headers={"Content-Type": "text/plain"}, body=b"{}"
        ),
        request_bytes(
            "/json-any-type", "POST", headers={"Content-Type": "text/plain"}, body=b"[1]"
        ),
        request_bytes("/readany", "POST", body=b"any" * 1000),
        request_bytes(
            "/iter_any",
            "POST",
            headers={"Transfer-Encoding": "chunked"},
            body=b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n",
        ),
        request_bytes("/readline", "POST", body=b"one\ntwo\nthree"),
        request_bytes("/readexactly", "POST", body=b"short"),
        request_bytes("/read_n", "POST", body=b"abcdef"),
        request_bytes("/at_eof", "POST", body=b"xyz"),
    ]
    for data in sends:
        await client.send(data)
        assert (await client.response()).status == 200
    assert results["read"] == [b"raw bytes", b"raw bytes"]
    assert results["text"] == "café"
    assert results["json"] == {"a": [1, 2]}
    assert results["json-wrong-type"] == "HTTPBadRequest"
    assert results["json-any-type"] == [1]
    assert results["readany"] == b"any" * 1000
    assert results["iter_any"] == b"abcde"
    assert results["readline"] == [b"one\n", b"two\n", b"three"]
    assert results["readexactly"] == b"short"
    assert results["read_n"] == [b"abc", b"def"]
    assert results["at_eof"] == [False, True, False]


async def test_dict_storage_and_clone(serve: Any) -> None:
    seen: dict[str, Any] = {}
    user = RequestKey("user", str)
    n = RequestKey("n", int)

    async def handler(request: BaseRequest) -> Response:
        request[user] = "alice"
        request[n] = 1
        del request[n]
        seen["items"] = dict(request)
        seen["len"] = len(request)
        clone = request.clone(
            method="POST",
            rel_url="/other?z=9",
            headers={"X-New": "1"},
            scheme="https",
            host="clone.example",
            remote="10.0.0.1",
        )
        seen["clone"] = {
            "method": clone.method,
            "path": clone.path,
            "query": dict(clone.query),
            "headers": dict(clone.headers),
            "url": str(clone.url),
            "secure": clone.secure,
            "remote": clone.remote,
            "storage": dict(clone),
            "same_content": clone.content is request.content,
        }
        seen["original"] = [request.method, request.path, request.scheme, request.host]
        plain = request.clone()
        seen["plain"] = [plain.method, plain.path, str(plain.url), plain is request]
        try:
            request.clone(rel_url="http://absolute.example/x")
        except ValueError:
            seen["absolute"] = "ValueError"
        await request.read()
        try:
            request.clone()
        except RuntimeError:
            seen["after_read"] = "RuntimeError"
        return Response()

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/orig?a=1", body=b"b"))
    await client.response()
    assert seen["items"] == {user: "alice"}
    assert seen["len"] == 1
    assert seen["clone"] == {
        "method": "POST",
        "path": "/other",
        "query": {"z": "9"},
        "headers": {"X-New": "1"},
        "url": "https://clone.example/other?z=9",
        "secure": True,
        "remote": "10.0.0.1",
        "storage": {user: "alice"},
        "same_content": True,
    }
    assert seen["original"] == ["GET", "/orig", "http", "test"]
    assert seen["plain"] == ["GET", "/orig", "http://test/orig?a=1", False]
    assert seen["absolute"] == "ValueError"
    assert seen["after_read"] == "RuntimeError"


async def test_request_is_a_mutable_mapping_and_hashable(serve: Any) -> None:
    seen: dict[str, Any] = {}

    async def handler(request: BaseRequest) -> Response:
        seen["in_set"] = request in {request}
        seen["bool"] = bool(request)
        seen["eq_self"] = request == request
        seen["repr"] = repr(request)
        seen["get"] = request.get("absent", "default")
        return Response()

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/r"))
    await client.response()
    assert seen["in_set"] is True
    assert seen["bool"] is True
    assert seen["eq_self"] is True
    assert "GET" in seen["repr"]
    assert "/r" in seen["repr"]
    assert seen["get"] == "default"


async def test_read_over_client_max_size_raises_413(serve: Any) -> None:
    from forkloop.core.http.limits import Limits

    seen: dict[str, Any] = {}

    async def handler(request: BaseRequest) -> Response:
        seen["client_max_size"] = request.client_max_size
        try:
            await request.read()
        except Exception as exc:
            seen["error"] = (type(exc).__name__, getattr(exc, "status", None))
            raise
        return Response()

    served = await serve(handler, limits=Limits(client_max_size=10))
    client = await served.client()
    await client.send(request_bytes("/", "POST", body=b"x" * 11))
    assert (await client.response()).status == 413
    assert seen["client_max_size"] == 10
    assert seen["error"] == ("HTTPRequestEntityTooLarge", 413)


async def test_forwarded_is_parsed_per_element(serve: Any) -> None:
    seen: dict[str, Any] = {}

    async def handler(request: BaseRequest) -> Response:
        seen["fwd"] = [dict(f) for f in request.forwarded]
        return Response()

    served = await serve(handler)
    client = await served.client()
    await client.send(
        request_bytes(
            "/", headers={"Forwarded": 'for=192.0.2.60;proto=https, for="[2001:db8::1]";by=x'}
        )
    )
    await client.response()
    assert seen["fwd"] == [
        {"for": "192.0.2.60", "proto": "https"},
        {"for": "[2001:db8::1]", "by": "x"},
    ]


async def test_wait_for_disconnection(serve: Any) -> None:
    await _disconnect_while_waiting(serve, reset=False)


async def test_wait_for_disconnection_on_reset(serve: Any) -> None:
    await _disconnect_while_waiting(serve, reset=True)


async def _disconnect_while_waiting(serve: Any, *, reset: bool) -> None:
    done = asyncio.Event()

    async def handler(request: BaseRequest) -> Response:
        await request.wait_for_disconnection()
        done.set()
        return Response()

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/"))
    await asyncio.sleep(0.1)
    if reset:
        sock = client.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await client.close()
    await asyncio.wait_for(done.wait(), 2)


@pytest.mark.parametrize("range_header", [None, "bytes=0-9", "bytes=-5"])
async def test_http_range_step_is_1(both: Any, range_header: str | None) -> None:
    async def handler(request: Any) -> Any:
        rng = request.http_range
        return _lib_json(request, [rng.start, rng.stop, rng.step])

    headers = {"Range": range_header} if range_header else {}
    ours, theirs = await both(handler, request_bytes("/", headers=headers))
    assert json.loads(theirs.body)[2] == 1
    assert json.loads(ours.body) == json.loads(theirs.body)

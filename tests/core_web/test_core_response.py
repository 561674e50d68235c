"""The Response API (forkloop.core.web.response): objects and the bytes they put on the wire.

Differential like the request tests: each scenario builds a response with the same calls on
forkloop's classes and on aiohttp's; the objects' properties and the responses on the wire
(headers other than Date/Server, body) must match.
"""

from __future__ import annotations

import datetime
import gzip
import json
import zlib
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web as aioweb
from hypothesis import given
from hypothesis import strategies as st
from rawhttp import parse_all, request_bytes

from forkloop.core.web import response as ours_module
from forkloop.core.web.app import ResponseKey
from forkloop.core.web.helpers import ETag

OURS = SimpleNamespace(
    Response=ours_module.Response,
    StreamResponse=ours_module.StreamResponse,
    json_response=ours_module.json_response,
    ContentCoding=ours_module.ContentCoding,
    ETag=ETag,
)
THEIRS = SimpleNamespace(
    Response=aioweb.Response,
    StreamResponse=aioweb.StreamResponse,
    json_response=aioweb.json_response,
    ContentCoding=aioweb.ContentCoding,
    ETag=aioweb.ETag if hasattr(aioweb, "ETag") else None,
)

WHEN = datetime.datetime(2024, 2, 29, 12, 30, 45, tzinfo=datetime.UTC)


def _set_last_modified(w: Any) -> Any:
    response = w.Response(text="x")
    response.last_modified = WHEN
    return response


def _set_last_modified_ts(w: Any) -> Any:
    response = w.Response(text="x")
    response.last_modified = WHEN.timestamp()
    return response


def _set_etag(w: Any) -> Any:
    response = w.Response(text="x")
    response.etag = "abc"
    return response


def _set_weak_etag(w: Any) -> Any:
    from aiohttp.helpers import ETag as AioETag

    response = w.Response(text="x")
    response.etag = (AioETag if w is THEIRS else ETag)(value="w1", is_weak=True)
    return response


def _cookies(w: Any) -> Any:
    response = w.Response(text="c")
    response.set_cookie("plain", "v1")
    response.set_cookie(
        "full",
        "v2",
        domain="example.com",
        path="/app",
        max_age=3600,
        secure=True,
        httponly=True,
        samesite="Strict",
    )
    response.set_cookie("expiring", "v3", expires="Wed, 21 Oct 2037 07:28:00 GMT")
    response.del_cookie("gone", path="/old")
    return response


def _set_then_delete_cookie(w: Any) -> Any:
    response = w.Response(text="c")
    response.set_cookie("k", "v")
    response.del_cookie("k")
    return response


def _delete_then_set_cookie(w: Any) -> Any:
    response = w.Response(text="c")
    response.del_cookie("k")
    response.set_cookie("k", "again")
    return response


def _content_type_then_charset(w: Any) -> Any:
    response = w.Response(body=b"<p>")
    response.content_type = "text/html"
    response.charset = "utf-8"
    return response


def _text_setter(w: Any) -> Any:
    response = w.Response()
    response.text = "set later"
    return response


def _body_setter(w: Any) -> Any:
    response = w.Response(content_type="application/x-thing")
    response.body = b"\x00\x01"
    return response


def _headers_arg(w: Any) -> Any:
    return w.Response(text="h", headers={"X-One": "1", "Cache-Control": "no-store"})


def _custom_header_ctype(w: Any) -> Any:
    return w.Response(body=b"{}", headers={"Content-Type": "application/vnd.x+json"})


SCENARIOS: dict[str, Callable[[Any], Any]] = {
    "text": lambda w: w.Response(text="hello"),
    "text-html": lambda w: w.Response(text="<b>x</b>", content_type="text/html"),
    "text-latin1": lambda w: w.Response(text="café", charset="latin-1"),
    "body-bytes": lambda w: w.Response(body=b"\xff\x00bytes"),
    "body-with-type": lambda w: w.Response(body=b"a,b", content_type="text/csv"),
    "empty": lambda w: w.Response(),
    "status-reason": lambda w: w.Response(status=201, reason="Made It", text="c"),
    "status-only": lambda w: w.Response(status=418),
    "status-202": lambda w: w.Response(status=202, text="later"),
    "json": lambda w: w.json_response({"a": [1, 2, None], "é": True}),
    "json-status": lambda w: w.json_response([], status=404),
    "json-text": lambda w: w.json_response(text='{"pre": 1}'),
    "headers-arg": _headers_arg,
    "header-content-type": _custom_header_ctype,
    "content-type-then-charset": _content_type_then_charset,
    "text-setter": _text_setter,
    "body-setter": _body_setter,
    "last-modified": _set_last_modified,
    "last-modified-ts": _set_last_modified_ts,
    "etag": _set_etag,
    "weak-etag": _set_weak_etag,
    "cookies": _cookies,
    "set-then-delete-cookie": _set_then_delete_cookie,
    "delete-then-set-cookie": _delete_then_set_cookie,
}


def _text(response: Any) -> str | None:
    try:
        return response.text  # type: ignore[no-any-return]
    except UnicodeDecodeError:
        return "UnicodeDecodeError"


def object_view(response: Any) -> dict[str, Any]:
    etag = response.etag
    return {
        "status": response.status,
        "reason": response.reason,
        "content_type": response.content_type,
        "charset": response.charset,
        "content_length": response.content_length,
        "body": response.body,
        "text": _text(response),
        "etag": None if etag is None else (etag.value, etag.is_weak),
        "last_modified": response.last_modified,
        "keep_alive": response.keep_alive,
        "chunked": response.chunked,
        "compression": response.compression,
        "prepared": response.prepared,
        "headers": sorted((k.lower(), v) for k, v in response.headers.items()),
        "cookies": sorted((k, m.OutputString()) for k, m in response.cookies.items()),
    }


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_response_object_matches_aiohttp(name: str) -> None:
    ours = object_view(SCENARIOS[name](OURS))
    theirs = object_view(SCENARIOS[name](THEIRS))
    for key in ours:
        assert ours[key] == theirs[key], key


def _wire(response: Any) -> tuple[bytes, list[tuple[str, str]], bytes]:
    headers = sorted(
        (k.lower(), v) for k, v in response.raw_headers if k.lower() not in ("date", "server")
    )
    return response.status_line, headers, response.body


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_response_on_the_wire_matches_aiohttp(both: Any, name: str) -> None:
    async def handler(request: Any) -> Any:
        lib = THEIRS if type(request).__module__.startswith("aiohttp") else OURS
        return SCENARIOS[name](lib)

    ours, theirs = await both(handler, request_bytes("/"))
    assert _wire(ours) == _wire(theirs)


EMPTY_BODY = ("empty", "status-only")


@pytest.mark.parametrize("name", EMPTY_BODY)
async def test_empty_body_has_no_content_type(both: Any, name: str) -> None:
    async def handler(request: Any) -> Any:
        lib = THEIRS if type(request).__module__.startswith("aiohttp") else OURS
        return SCENARIOS[name](lib)

    ours, theirs = await both(handler, request_bytes("/"))
    assert "Content-Type" not in theirs.headers
    assert _wire(ours) == _wire(theirs)


@pytest.mark.parametrize(
    ("method", "status"), [("HEAD", 200), ("GET", 204), ("HEAD", 204), ("GET", 304), ("HEAD", 304)]
)
async def test_bodiless_on_the_wire_matches_aiohttp(both: Any, method: str, status: int) -> None:
    async def handler(request: Any) -> Any:
        lib = THEIRS if type(request).__module__.startswith("aiohttp") else OURS
        return lib.Response(status=status, text="dropped")

    ours, theirs = await both(handler, request_bytes("/", method), method)
    assert ours.body == theirs.body == b""
    assert ours.status_line == theirs.status_line
    assert ("Content-Length" in ours.headers) == ("Content-Length" in theirs.headers)
    assert "Transfer-Encoding" not in ours.headers


# -- behaviour checked on our objects alone ----------------------------------------------


def test_status_validation() -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        OURS.Response(status=99)
    with pytest.raises(ValueError):  # noqa: PT011
        OURS.Response(reason="bad\r\nInjected: yes")
    response = OURS.StreamResponse()
    response.set_status(404, "Gone Fishing")
    assert (response.status, response.reason) == (404, "Gone Fishing")
    response.set_status(500)
    assert response.reason == "Internal Server Error"


def test_text_and_body_are_exclusive() -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        OURS.Response(text="a", body=b"b")
    with pytest.raises(TypeError):
        OURS.Response(text=b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):  # noqa: PT011
        OURS.Response(text="a", content_type="text/plain; charset=utf-8")
    with pytest.raises(ValueError):  # noqa: PT011
        OURS.Response(text="a", headers={"Content-Type": "text/plain"}, content_type="text/html")


def test_content_length_rules() -> None:
    response = OURS.Response(text="four")
    assert response.content_length == 4
    with pytest.raises(RuntimeError):
        response.content_length = 10
    stream = OURS.StreamResponse()
    assert stream.content_length is None
    stream.content_length = 42
    assert stream.content_length == 42
    assert stream.headers["Content-Length"] == "42"
    stream.content_length = None
    assert "Content-Length" not in stream.headers
    stream.enable_chunked_encoding()
    assert stream.chunked is True
    with pytest.raises(RuntimeError):
        stream.content_length = 5
    other = OURS.StreamResponse()
    other.content_length = 5
    with pytest.raises(RuntimeError):
        other.enable_chunked_encoding()


def test_charset_needs_a_content_type() -> None:
    stream = OURS.StreamResponse()
    with pytest.raises(RuntimeError):
        stream.charset = "utf-8"
    stream.content_type = "text/plain"
    stream.charset = "UTF-8"
    assert stream.charset == "utf-8"
    assert stream.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_etag_values() -> None:
    response = OURS.Response()
    response.etag = "*"
    assert response.headers["ETag"] == "*"
    response.etag = ETag("v", is_weak=True)
    assert response.headers["ETag"] == 'W/"v"'
    assert response.etag == ETag("v", True)
    with pytest.raises(ValueError):  # noqa: PT011
        response.etag = 'has"quote'
    response.etag = None
    assert "ETag" not in response.headers
    assert response.etag is None


def test_last_modified_values() -> None:
    response = OURS.Response()
    response.last_modified = "Mon, 01 Jan 2024 00:00:00 GMT"
    assert response.last_modified == datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    response.last_modified = 0
    assert response.headers["Last-Modified"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    response.last_modified = None
    assert response.last_modified is None
    with pytest.raises(TypeError):
        response.last_modified = object()  # type: ignore[assignment]


def test_dict_storage_and_identity() -> None:
    response = OURS.StreamResponse()
    assert len(response) == 0
    key = ResponseKey("key", str)
    response[key] = "value"
    assert response[key] == "value"
    assert dict(response) == {key: "value"}
    del response[key]
    assert key not in response
    assert bool(response) is True
    assert response in {response}
    assert response != OURS.StreamResponse()
    assert "not prepared" in repr(response)


def test_force_close_and_compression_flags() -> None:
    response = OURS.Response(text="x")
    assert response.keep_alive is None
    response.force_close()
    assert response.keep_alive is False
    response.enable_compression(OURS.ContentCoding.gzip)
    assert response.compression is True


def test_json_response_arguments() -> None:
    response = OURS.json_response(
        {"k": 1}, dumps=lambda obj: json.dumps(obj, separators=(",", ":"))
    )
    assert response.body == b'{"k":1}'
    assert response.content_type == "application/json"
    with pytest.raises(ValueError):  # noqa: PT011
        OURS.json_response({"a": 1}, text="also text")


_JSON_KEYS = st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.none())
_JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(_JSON_KEYS, inner, max_size=4),
    ),
    max_leaves=12,
)


@given(_JSON_VALUES)
def test_json_response_text_is_json_dumps(value: Any) -> None:
    """json_response's own use of the C encoder gives json.dumps' text, NaN and all."""
    assert OURS.json_response(value).text == json.dumps(value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"status": 404},
        {"status": 418},
        {"content_type": "application/problem+json"},
        {"content_type": "text/plain"},
        {"reason": "Fine"},
        {"headers": {"X-A": "1"}},
    ],
)
def test_json_response_is_the_response_it_would_construct(kwargs: dict[str, Any]) -> None:
    """json_response builds its common case without Response's keyword arguments: the result
    is the same response as Response(text=json.dumps(data), content_type=..., ...)."""
    data = {"a": [1, "é"]}
    ours = OURS.json_response(data, **kwargs)
    built = OURS.Response(text=json.dumps(data), **{"content_type": "application/json", **kwargs})
    assert type(ours) is type(built)
    for name in ("status", "reason", "content_type", "charset", "body", "text", "keep_alive"):
        assert getattr(ours, name) == getattr(built, name), name
    assert dict(ours.headers) == dict(built.headers)
    assert vars(ours) == vars(built)


def test_json_response_errors_are_json_dumps_errors() -> None:
    circular: list[Any] = [1]
    circular.append({"again": circular})
    for bad in (circular, {"x": object()}, {(1, 2): 3}):
        with pytest.raises((ValueError, TypeError)) as expected:
            json.dumps(bad)
        with pytest.raises(expected.type, match=str(expected.value)[:20]):
            OURS.json_response(bad)
        # A failure leaves nothing behind: the same containers encode again afterwards.
        assert OURS.json_response([1, circular[0]]).text == "[1, 1]"


async def test_write_rules(serve: Any) -> None:
    errors: dict[str, str] = {}

    async def handler(request: Any) -> Any:
        response = OURS.StreamResponse()
        for label, call in (
            ("write-before-prepare", lambda: response.write(b"x")),
            ("drain-before-prepare", response.drain),
            ("eof-before-prepare", response.write_eof),
        ):
            try:
                await call()
            except RuntimeError:
                errors[label] = "RuntimeError"
        writer = await response.prepare(request)
        assert writer is not None
        assert await response.prepare(request) is writer  # idempotent
        try:
            response.set_status(500)
        except RuntimeError:
            errors["status-after-prepare"] = "RuntimeError"
        try:
            await response.write("text")  # type: ignore[arg-type]
        except TypeError:
            errors["write-str"] = "TypeError"
        await response.write(b"abc")
        await response.write(bytearray(b"def"))
        await response.write(memoryview(b"ghi"))
        await response.write_eof(b"!")
        await response.write_eof()  # idempotent
        try:
            await response.write(b"late")
        except RuntimeError:
            errors["write-after-eof"] = "RuntimeError"
        errors["body_length"] = str(response.body_length)
        errors["prepared"] = str(response.prepared)
        return response

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/", headers={"Connection": "close"}))
    raw = await client.read_until_closed()
    response = parse_all(raw)[0]
    assert response.body == b"abcdefghi!"
    # As aiohttp: body_length counts every byte written, head and chunk framing included.
    assert errors.pop("body_length") == str(len(raw))
    assert errors == {
        "write-before-prepare": "RuntimeError",
        "drain-before-prepare": "RuntimeError",
        "eof-before-prepare": "RuntimeError",
        "status-after-prepare": "RuntimeError",
        "write-str": "TypeError",
        "write-after-eof": "RuntimeError",
        "prepared": "True",
    }


async def test_payload_writer_contract(serve: Any) -> None:
    seen: dict[str, Any] = {}

    async def handler(request: Any) -> Any:
        response = OURS.StreamResponse()
        response.content_length = 6
        writer = await response.prepare(request)
        await writer.write(b"abc")
        await writer.drain()
        seen["transport"] = writer.transport is request.transport
        await writer.write_eof(b"def")
        seen["buffer_size"] = writer.buffer_size
        seen["output_size"] = writer.output_size
        return response

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/"))
    response = await client.response()
    assert response.body == b"abcdef"
    assert seen["transport"] is True
    assert seen["buffer_size"] == 6
    assert seen["output_size"] > 6  # the head counts too


@pytest.mark.parametrize(
    ("force", "accept", "expected"),
    [
        (None, "gzip", "gzip"),
        (None, "deflate", "deflate"),
        (None, "br", None),
        ("gzip", "deflate, gzip", "gzip"),
        ("deflate", "gzip, deflate", "deflate"),
        ("identity", "gzip", None),
    ],
)
async def test_enable_compression(
    serve: Any, force: str | None, accept: str, expected: str | None
) -> None:
    text = "squeeze " * 500

    async def handler(request: Any) -> Any:
        response = OURS.Response(text=text)
        response.enable_compression(OURS.ContentCoding(force) if force else None)
        return response

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/", headers={"Accept-Encoding": accept}))
    response = await client.response()
    assert response.headers.get("Content-Encoding") == expected
    if expected == "gzip":
        assert gzip.decompress(response.body).decode() == text
    elif expected == "deflate":
        assert zlib.decompress(response.body).decode() == text
    else:
        assert response.text() == text
    if expected:
        assert int(response.headers["Content-Length"]) == len(response.body)


async def test_on_wire_cookie_headers(serve: Any) -> None:
    async def handler(request: Any) -> Any:
        return _cookies(OURS)

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/"))
    response = await client.response()
    cookies = response.headers.getall("Set-Cookie")
    assert len(cookies) == 4
    full = next(c for c in cookies if c.startswith("full="))
    for part in ("Domain=example.com", "Path=/app", "Max-Age=3600", "Secure", "HttpOnly"):
        assert part in full
    assert "SameSite=Strict" in full

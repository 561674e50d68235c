"""The sans-I/O request parser (forkloop.core.http.parser): limits, framing, events, splits.

Table-driven: every limit and every ambiguous-framing case of issue 2 is one row, checked fed
whole and fed byte by byte. Valid requests are fed split at every offset and must give the same
events; a hypothesis property does the same for random requests, bodies and pipelines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from typing import Any

import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forkloop.core.http.errors import HttpError
from forkloop.core.http.limits import Limits
from forkloop.core.http.parser import (
    END,
    HTTP10,
    HTTP11,
    RequestHead,
    RequestParser,
    Upgrade,
)

# -- helpers ------------------------------------------------------------------------------


def head_tuple(head: RequestHead) -> tuple[Any, ...]:
    return (
        "head",
        head.method,
        head.target,
        tuple(head.version),
        tuple(head.headers.items()),
        tuple(head.raw_headers),
        head.keep_alive,
        head.upgrade,
        head.chunked,
        head.content_length,
        head.expect,
    )


def normalize(events: list[Any]) -> list[Any]:
    """Events as comparable values; adjacent body chunks merged (split points move them)."""
    out: list[Any] = []
    for event in events:
        if isinstance(event, RequestHead):
            out.append(head_tuple(event))
        elif isinstance(event, bytes):
            assert event, "the parser must not emit empty body chunks"
            if out and isinstance(out[-1], bytes):
                out[-1] += event
            else:
                out.append(event)
        elif event is END:
            out.append("end")
        elif isinstance(event, Upgrade):
            out.append(("upgrade", event.data))
        else:  # pragma: no cover - a new event type is a contract change
            raise AssertionError(f"unknown event {event!r}")
    return out


def feed_pieces(pieces: list[bytes], limits: Limits | None = None) -> list[Any]:
    """Feed ``pieces`` in order; after an Upgrade the rest of the input is upgrade data."""
    parser = RequestParser(limits)
    events: list[Any] = []
    for index, piece in enumerate(pieces):
        got = parser.feed(piece)
        events.extend(got)
        if got and isinstance(got[-1], Upgrade):
            rest = b"".join(pieces[index + 1 :])
            events[-1] = Upgrade(got[-1].data + rest)
            if rest:
                with pytest.raises(RuntimeError):
                    parser.feed(rest)
            break
    return normalize(events)


def split_at(data: bytes, *offsets: int) -> list[bytes]:
    points = [0, *sorted(offsets), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


def feed_all(parser: RequestParser, pieces: list[bytes]) -> None:
    for piece in pieces:
        parser.feed(piece)


def parse_error(pieces: list[bytes], limits: Limits | None = None) -> HttpError:
    parser = RequestParser(limits)
    with pytest.raises(HttpError) as info:
        feed_all(parser, pieces)
    error = info.value
    # The parser is unusable afterwards: it keeps refusing with the same error.
    with pytest.raises(HttpError) as again:
        parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert again.value.status == error.status
    return error


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def req(head: str, body: bytes = b"") -> bytes:
    return head.replace("\n", "\r\n").encode() + body


# -- limits -------------------------------------------------------------------------------

SMALL = Limits(
    max_request_line_bytes=100,
    max_header_field_bytes=200,
    max_header_bytes=1000,
    max_header_count=10,
)


def _headers(count: int, value_len: int = 1) -> bytes:
    return b"".join(b"X-%03d: %s\r\n" % (i, b"v" * value_len) for i in range(count))


LIMIT_CASES = [
    # (id, limits, request bytes, status or None when it must be accepted)
    (
        "default-line-at-limit",
        None,
        b"GET /" + b"a" * (8190 - 16) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        None,
    ),
    ("default-target-over", None, b"GET /" + b"a" * 8190 + b" HTTP/1.1\r\n\r\n", 414),
    ("small-target-fits", SMALL, b"GET /" + b"a" * 80 + b" HTTP/1.1\r\nHost: x\r\n\r\n", None),
    ("small-target-over", SMALL, b"GET /" + b"a" * 100 + b" HTTP/1.1\r\n\r\n", 414),
    ("small-query-over", SMALL, b"GET /?" + b"q" * 100 + b" HTTP/1.1\r\n\r\n", 414),
    (
        "default-field-at-limit",
        None,
        b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * (8190 - 3) + b"\r\n\r\n",
        None,
    ),
    ("default-field-over", None, b"GET / HTTP/1.1\r\nX: " + b"a" * (8190 - 2) + b"\r\n\r\n", 431),
    ("default-long-name", None, b"GET / HTTP/1.1\r\n" + b"X" * 8200 + b": a\r\n\r\n", 431),
    ("small-field-over", SMALL, b"GET / HTTP/1.1\r\nX: " + b"a" * 199 + b"\r\n\r\n", 431),
    (
        "default-count-at-limit",
        None,
        b"GET / HTTP/1.1\r\nHost: x\r\n" + _headers(127) + b"\r\n",
        None,
    ),
    ("default-count-over", None, b"GET / HTTP/1.1\r\n" + _headers(129) + b"\r\n", 431),
    ("small-count-over", SMALL, b"GET / HTTP/1.1\r\n" + _headers(11) + b"\r\n", 431),
    # 70 headers of ~1 KiB: each under the field limit, together over 64 KiB.
    ("default-section-over", None, b"GET / HTTP/1.1\r\n" + _headers(70, 1000) + b"\r\n", 431),
    (
        "default-section-fits",
        None,
        b"GET / HTTP/1.1\r\nHost: x\r\n" + _headers(60, 1000) + b"\r\n",
        None,
    ),
    ("small-section-over", SMALL, b"GET / HTTP/1.1\r\n" + _headers(8, 150) + b"\r\n", 431),
]


@pytest.mark.parametrize(
    ("limits", "data", "status"),
    [case[1:] for case in LIMIT_CASES],
    ids=[case[0] for case in LIMIT_CASES],
)
def test_limits_whole(limits: Limits | None, data: bytes, status: int | None) -> None:
    if status is None:
        events = feed_pieces([data], limits)
        assert events[0][0] == "head"
        assert events[-1] == "end"
    else:
        assert parse_error([data], limits).status == status


@pytest.mark.parametrize(
    ("limits", "data", "status"),
    [case[1:] for case in LIMIT_CASES if case[3] is not None],
    ids=[case[0] for case in LIMIT_CASES if case[3] is not None],
)
def test_limits_in_small_pieces(limits: Limits | None, data: bytes, status: int) -> None:
    pieces = [data[i : i + 7] for i in range(0, len(data), 7)]
    assert parse_error(pieces, limits).status == status


def test_endless_request_line_in_pieces_is_414() -> None:
    # Never terminated: the limit must trip while the line is still arriving.
    pieces = [b"GET /"] + [b"a" * 1000] * 200
    assert parse_error(pieces).status == 414


def test_endless_header_line_in_pieces_is_431() -> None:
    pieces = [b"GET / HTTP/1.1\r\nX-Long: "] + [b"a" * 1000] * 200
    assert parse_error(pieces).status == 431


def test_endless_header_section_small_lines_is_431() -> None:
    # Many small header lines, the head never finishing: bounded by max_header_bytes.
    pieces = [b"GET / HTTP/1.1\r\n"] + [b"X-%d: v\r\n" % i for i in range(20000)]
    assert parse_error(pieces).status == 431


def test_endless_head_in_one_big_feed_trips_on_the_next_feed() -> None:
    # The feed in which a head begins is not counted (its share is unknown); later feeds are,
    # so memory stays bounded by one read plus the head limits.
    parser = RequestParser()
    assert parser.feed(b"GET / HTTP/1.1\r\nX: " + b"a" * 100_000) == []
    with pytest.raises(HttpError) as info:
        feed_all(parser, [b"a" * 1000] * 80)
    assert info.value.status == 431


def test_limits_apply_to_each_pipelined_request() -> None:
    ok = b"GET /a HTTP/1.1\r\nHost: x\r\n" + _headers(9) + b"\r\n"
    bad = b"GET /b HTTP/1.1\r\n" + _headers(11) + b"\r\n"
    parser = RequestParser(SMALL)
    events = parser.feed(ok * 3 + bad)
    # The three complete requests come out; the error is known at once and raised next.
    assert [e for e in events if e is END] == [END] * 3
    assert [e.target for e in events if isinstance(e, RequestHead)] == ["/a"] * 3
    assert parser.error is not None
    assert parser.error.status == 431
    with pytest.raises(HttpError) as info:
        parser.feed(b"")
    assert info.value.status == 431


def test_error_in_same_feed_keeps_only_complete_requests() -> None:
    # The broken request's own partial events (its head, part of its body) are dropped.
    good = req("POST /1 HTTP/1.1\nHost: x\nContent-Length: 2\n\n", b"ok")
    broken = chunked(b"3\r\nabc\r\nzz\r\n")
    parser = RequestParser()
    events = normalize(parser.feed(good + broken))
    assert [e if not isinstance(e, tuple) else e[2] for e in events] == ["/1", b"ok", "end"]
    assert parser.error is not None
    assert parser.error.status == 400
    with pytest.raises(HttpError):
        parser.feed(b"")


def test_error_with_nothing_complete_is_raised_at_once() -> None:
    parser = RequestParser()
    assert parser.error is None
    with pytest.raises(HttpError) as info:
        parser.feed(req("GET / HTTP/1.1\nContent-Length: 1\nContent-Length: 2\n\n"))
    assert parser.error is info.value


def test_trailer_section_is_bounded_by_header_bytes() -> None:
    data = (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
        + _headers(70, 1000)
        + b"\r\n"
    )
    assert parse_error([data]).status == 431


def test_trailer_fields_are_bounded_by_header_count() -> None:
    data = (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
        + _headers(200)
        + b"\r\n"
    )
    assert parse_error([data]).status == 431


def test_limits_is_frozen_and_validated() -> None:
    limits = Limits()
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.max_header_count = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="max_header_count"):
        Limits(max_header_count=0)
    with pytest.raises(ValueError, match="write_buffer_low_bytes"):
        Limits(write_buffer_low_bytes=10, write_buffer_high_bytes=5)
    assert dataclasses.replace(limits, header_timeout_s=1.5).header_timeout_s == 1.5
    assert limits.max_request_line_bytes == 8190
    assert limits.max_header_bytes == 65536
    assert limits.max_header_count == 128
    assert limits.client_max_size == 1024 * 1024
    assert limits.header_timeout_s == 10
    assert limits.keepalive_timeout_s == 75


# -- ambiguous framing and malformed input ----------------------------------------------

P = "POST / HTTP/1.1\nHost: x\n"
WS = "GET / HTTP/1.1\nHost: x\nConnection: upgrade\nUpgrade: websocket\n"


def chunked(body: bytes) -> bytes:
    return req(P + "Transfer-Encoding: chunked\n\n", body)


BAD_CASES = [
    ("cl-and-te", req(P + "Content-Length: 5\nTransfer-Encoding: chunked\n\n", b"0\r\n\r\n"), 400),
    ("te-and-cl", req(P + "Transfer-Encoding: chunked\nContent-Length: 5\n\n", b"0\r\n\r\n"), 400),
    ("cl-differing-duplicate", req(P + "Content-Length: 5\nContent-Length: 6\n\n", b"hello!"), 400),
    ("cl-identical-duplicate", req(P + "Content-Length: 5\nContent-Length: 5\n\n", b"hello"), 400),
    ("cl-list", req(P + "Content-Length: 5, 5\n\n", b"hello"), 400),
    ("cl-non-numeric", req(P + "Content-Length: abc\n\n", b"hello"), 400),
    ("cl-trailing-garbage", req(P + "Content-Length: 5a\n\n", b"hello"), 400),
    ("cl-hex", req(P + "Content-Length: 0x5\n\n", b"hello"), 400),
    ("cl-plus", req(P + "Content-Length: +5\n\n", b"hello"), 400),
    ("cl-minus", req(P + "Content-Length: -5\n\n", b"hello"), 400),
    ("cl-empty", req(P + "Content-Length: \n\n", b"hello"), 400),
    ("cl-inner-space", req(P + "Content-Length: 1 2\n\n", b"hello"), 400),
    ("cl-overflow", req(P + "Content-Length: 99999999999999999999999\n\n", b"x"), 400),
    (
        "chunk-size-not-hex",
        chunked(b"zz\r\nhello\r\n0\r\n\r\n"),
        400,
    ),
    (
        "chunk-size-negative",
        chunked(b"-1\r\nhello\r\n0\r\n\r\n"),
        400,
    ),
    ("chunk-size-0x", chunked(b"0x5\r\nhello\r\n0\r\n\r\n"), 400),
    (
        "chunk-size-space",
        chunked(b"5 \r\nhello\r\n0\r\n\r\n"),
        400,
    ),
    ("chunk-size-empty", chunked(b"\r\nhello\r\n0\r\n\r\n"), 400),
    (
        "chunk-size-overflow",
        chunked(b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
        400,
    ),
    (
        "chunk-data-too-long",
        chunked(b"3\r\nhello\r\n0\r\n\r\n"),
        400,
    ),
    (
        "chunk-size-bare-lf",
        chunked(b"5\nhello\r\n0\r\n\r\n"),
        400,
    ),
    ("obs-fold", req("GET / HTTP/1.1\nHost: x\nX-A: a\n b\n\n"), 400),
    ("obs-fold-tab", req("GET / HTTP/1.1\nHost: x\nX-A: a\n\tb\n\n"), 400),
    ("nul-in-value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
    ("cr-in-value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400),
    ("del-in-value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n", 400),
    ("nul-in-target", b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("space-before-colon", req("GET / HTTP/1.1\nHost : x\n\n"), 400),
    ("space-in-name", req("GET / HTTP/1.1\nX A: b\n\n"), 400),
    ("empty-name", req("GET / HTTP/1.1\n: b\n\n"), 400),
    ("space-in-target", req("GET /a b HTTP/1.1\nHost: x\n\n"), 400),
    ("te-gzip", req(P + "Transfer-Encoding: gzip\n\n", b"abc"), 400),
    ("te-identity", req(P + "Transfer-Encoding: identity\n\n", b"abc"), 400),
    ("te-xchunked", req(P + "Transfer-Encoding: xchunked\n\n", b"0\r\n\r\n"), 400),
    ("te-chunked-then-gzip", req(P + "Transfer-Encoding: chunked, gzip\n\n", b"0\r\n\r\n"), 400),
    ("te-gzip-then-chunked", req(P + "Transfer-Encoding: gzip, chunked\n\n", b"0\r\n\r\n"), 400),
    ("te-chunked-twice", req(P + "Transfer-Encoding: chunked, chunked\n\n", b"0\r\n\r\n"), 400),
    (
        "te-two-lines-chunked",
        req(P + "Transfer-Encoding: chunked\nTransfer-Encoding: chunked\n\n", b"0\r\n\r\n"),
        400,
    ),
    ("te-on-http10", req("POST / HTTP/1.0\nTransfer-Encoding: chunked\n\n", b"0\r\n\r\n"), 400),
    (
        "upgrade-with-chunked-body",
        req(WS + "Transfer-Encoding: chunked\n\n", b"3\r\nabc\r\n0\r\n\r\n"),
        400,
    ),
    ("http09", b"GET /\r\n\r\n", 505),
    ("http2-request-line", req("GET / HTTP/2.0\nHost: x\n\n"), 505),
    ("http3-request-line", req("GET / HTTP/3.0\nHost: x\n\n"), 400),
    ("http12-request-line", req("GET / HTTP/1.2\nHost: x\n\n"), 400),
    ("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    ("bad-version-token", req("GET / HTTX/1.1\nHost: x\n\n"), 400),
    ("unknown-method", req("FOO / HTTP/1.1\nHost: x\n\n"), 400),
    ("lowercase-method", req("get / HTTP/1.1\nHost: x\n\n"), 400),
    ("method-with-digit", req("GET1 / HTTP/1.1\nHost: x\n\n"), 400),
]


@pytest.mark.parametrize(
    ("data", "status"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES]
)
def test_refused_whole(data: bytes, status: int) -> None:
    error = parse_error([data])
    assert error.status == status
    assert error.reason
    assert str(error)


@pytest.mark.parametrize(
    ("data", "status"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES]
)
def test_refused_byte_by_byte(data: bytes, status: int) -> None:
    assert parse_error(bytewise(data)).status == status


@pytest.mark.parametrize(
    "data",
    [
        req("GET / HTTP/1.1\n\n"),
        req("GET / HTTP/1.1\nHost: a\nHost: b\n\n"),
        req("GET / HTTP/1.1\nHost: a b\n\n"),
    ],
    ids=["missing", "duplicate", "invalid"],
)
def test_host_rules(data: bytes) -> None:
    assert parse_error([data]).status == 400


def test_binary_garbage_is_refused() -> None:
    # A TLS ClientHello sent to the plain-HTTP port: llhttp reports it as an invalid method.
    tls_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
    assert parse_error([tls_hello]).status == 400


def test_te_split_over_two_lines_is_refused() -> None:
    # The field's value is the list 'gzip, chunked' (RFC 9110 §5.3): not a lone chunked.
    data = req(P + "Transfer-Encoding: gzip\nTransfer-Encoding: chunked\n\n", b"0\r\n\r\n")
    assert parse_error([data]).status == 400


def test_error_after_good_requests_keeps_their_events() -> None:
    good = req("GET /1 HTTP/1.1\nHost: x\n\n")
    parser = RequestParser()
    events = parser.feed(good)
    assert normalize(events)[-1] == "end"
    with pytest.raises(HttpError) as info:
        parser.feed(req("GET /2 HTTP/1.1\nHost: x\nContent-Length: 1\nContent-Length: 2\n\n"))
    assert info.value.status == 400


# -- valid requests: events, and the same events for every split -------------------------

VALID = {
    "get": req("GET /path?q=1 HTTP/1.1\nHost: example.com\nAccept: */*\n\n"),
    "post-content-length": req(
        "POST /submit HTTP/1.1\nHost: x\nContent-Type: text/plain\nContent-Length: 11\n\n",
        b"hello world",
    ),
    "post-chunked-ext-trailers": req(
        "POST /c HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n",
        b"5;name=value\r\nhello\r\n6\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
    ),
    "te-case-and-ows": req(
        "PUT /u HTTP/1.1\nHost: x\nTransfer-Encoding:  Chunked \n\n", b"3\r\nabc\r\n0\r\n\r\n"
    ),
    "cl-ows": req("POST / HTTP/1.1\nHost: x\nContent-Length:  5 \n\n", b"hello"),
    "zero-length": req("POST / HTTP/1.1\nHost: x\nContent-Length: 0\n\n"),
    "http10": req("GET /old HTTP/1.0\nUser-Agent: t\n\n"),
    "http10-body": req("POST /old HTTP/1.0\nContent-Length: 3\n\n", b"abc"),
    "pipeline": req("GET /1 HTTP/1.1\nHost: x\n\n")
    + req("POST /2 HTTP/1.1\nHost: x\nContent-Length: 3\n\n", b"abc")
    + req("POST /3 HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n", b"2\r\nhi\r\n0\r\n\r\n")
    + req("DELETE /4 HTTP/1.1\nHost: x\nConnection: close\n\n"),
    "trailing-ows": req("GET / HTTP/1.1\nHost: x\nX-A:   a b \t \nX-B:\t\n\n"),
    "expect": req("PUT / HTTP/1.1\nHost: x\nExpect: 100-continue\nContent-Length: 2\n\n", b"ok"),
    "obs-text-value": b"GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf\xc3\xa9\r\n\r\n",
    "percent-encoded-target": req("GET /caf%C3%A9/a%20b?x=%20 HTTP/1.1\nHost: x\n\n"),
    "absolute-form": req("GET http://example.com/a?b HTTP/1.1\nHost: example.com\n\n"),
    "asterisk-form": req("OPTIONS * HTTP/1.1\nHost: x\n\n"),
    "upgrade-websocket": req(
        "GET /ws HTTP/1.1\nHost: x\nConnection: Upgrade\nUpgrade: websocket\n\n"
    )
    + b"\x81\x85frame",
    # As aiohttp: the body is the request's, the upgraded protocol starts after it.
    "upgrade-websocket-with-body": req(WS + "Content-Length: 3\n\n", b"abc") + b"\x81\x85frame",
    "connect": req("CONNECT example.com:443 HTTP/1.1\nHost: example.com:443\n\n") + b"tls",
}


@pytest.mark.parametrize("name", list(VALID))
def test_valid_split_at_every_offset(name: str) -> None:
    data = VALID[name]
    whole = feed_pieces([data])
    assert feed_pieces(bytewise(data)) == whole
    for offset in range(1, len(data)):
        assert feed_pieces(split_at(data, offset)) == whole, offset


@pytest.mark.parametrize("name", ["pipeline", "post-chunked-ext-trailers", "upgrade-websocket"])
def test_valid_split_at_two_offsets(name: str) -> None:
    data = VALID[name]
    whole = feed_pieces([data])
    step = max(1, len(data) // 40)
    for a in range(1, len(data), step):
        for b in range(a + 1, len(data), step):
            assert feed_pieces(split_at(data, a, b)) == whole, (a, b)


def _head(events: list[Any], index: int = 0) -> tuple[Any, ...]:
    heads = [e for e in events if isinstance(e, tuple) and e[0] == "head"]
    return heads[index]


def test_get_event_fields() -> None:
    events = feed_pieces([VALID["get"]])
    assert len(events) == 2
    assert events[1] == "end"
    parser = RequestParser()
    head = parser.feed(VALID["get"])[0]
    assert isinstance(head, RequestHead)
    assert head.method == "GET"
    assert head.target == "/path?q=1"
    assert head.version == HTTP11
    assert head.version == (1, 1)
    assert head.version.major == 1
    assert head.version.minor == 1
    assert head.headers["host"] == "example.com"
    assert head.raw_headers == ((b"Host", b"example.com"), (b"Accept", b"*/*"))
    assert head.keep_alive is True
    assert head.upgrade is False
    assert head.chunked is False
    assert head.content_length is None
    assert head.expect is None


def test_content_length_body() -> None:
    events = feed_pieces([VALID["post-content-length"]])
    assert events[1:] == [b"hello world", "end"]
    assert _head(events)[9] == 11


def test_chunked_body_extensions_ignored_and_trailers_dropped() -> None:
    parser = RequestParser()
    events = parser.feed(VALID["post-chunked-ext-trailers"])
    head = events[0]
    assert isinstance(head, RequestHead)
    assert head.chunked is True
    assert head.content_length is None
    assert b"".join(e for e in events if isinstance(e, bytes)) == b"hello world0123456789"
    assert events[-1] is END
    # The trailer field is dropped: neither in the head nor its raw headers.
    assert "X-Trailer" not in head.headers
    assert all(name != b"X-Trailer" for name, _ in head.raw_headers)


def test_transfer_encoding_is_case_insensitive_with_ows() -> None:
    parser = RequestParser()
    events = parser.feed(VALID["te-case-and-ows"])
    assert isinstance(events[0], RequestHead)
    assert events[0].chunked is True
    assert events[1:] == [b"abc", END]


def test_trailing_whitespace_stripped_from_values() -> None:
    parser = RequestParser()
    head = parser.feed(VALID["trailing-ows"])[0]
    assert isinstance(head, RequestHead)
    assert head.headers["X-A"] == "a b"
    assert head.headers["X-B"] == ""
    assert head.raw_headers[1] == (b"X-A", b"a b")
    assert head.raw_headers[2] == (b"X-B", b"")


def test_obs_text_value_is_kept() -> None:
    parser = RequestParser()
    head = parser.feed(VALID["obs-text-value"])[0]
    assert isinstance(head, RequestHead)
    assert head.raw_headers[1] == (b"X-Name", b"caf\xc3\xa9")
    assert head.headers["X-Name"] == "café"


def test_expect_field() -> None:
    parser = RequestParser()
    head = parser.feed(VALID["expect"])[0]
    assert isinstance(head, RequestHead)
    assert head.expect == "100-continue"


def test_pipeline_events_in_order() -> None:
    events = feed_pieces([VALID["pipeline"]])
    shape = [e if not isinstance(e, tuple) else (e[1], e[2]) for e in events]
    assert shape == [
        ("GET", "/1"),
        "end",
        ("POST", "/2"),
        b"abc",
        "end",
        ("POST", "/3"),
        b"hi",
        "end",
        ("DELETE", "/4"),
        "end",
    ]
    assert _head(events, 3)[6] is False  # Connection: close


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        ("1.1", None, True),
        ("1.1", "close", False),
        ("1.1", "Close", False),
        ("1.1", "keep-alive", True),
        ("1.1", "foo, close", False),
        ("1.0", None, False),
        ("1.0", "keep-alive", True),
        ("1.0", "Keep-Alive", True),
        ("1.0", "close", False),
    ],
)
def test_keep_alive_rules(version: str, connection: str | None, keep_alive: bool) -> None:
    head_text = f"GET / HTTP/{version}\nHost: x\n"
    if connection is not None:
        head_text += f"Connection: {connection}\n"
    parser = RequestParser()
    head = parser.feed(req(head_text + "\n"))[0]
    assert isinstance(head, RequestHead)
    assert head.version == (HTTP11 if version == "1.1" else HTTP10)
    assert head.keep_alive is keep_alive


def test_upgrade_event_carries_following_bytes() -> None:
    parser = RequestParser()
    events = parser.feed(VALID["upgrade-websocket"])
    head = events[0]
    assert isinstance(head, RequestHead)
    assert head.upgrade is True
    assert head.headers["Upgrade"] == "websocket"
    assert events[1] is END
    assert isinstance(events[2], Upgrade)
    assert events[2].data == b"\x81\x85frame"
    assert len(events) == 3
    with pytest.raises(RuntimeError):
        parser.feed(b"more")


def test_upgrade_request_body_comes_before_the_upgraded_bytes() -> None:
    events = feed_pieces([VALID["upgrade-websocket-with-body"]])
    assert _head(events)[7] is True
    assert events[1:] == [b"abc", "end", ("upgrade", b"\x81\x85frame")]
    # The body alone, then the rest in a later feed.
    parser = RequestParser()
    data = VALID["upgrade-websocket-with-body"]
    cut = data.index(b"abc") + 2
    first = normalize(parser.feed(data[:cut]))
    assert first[1:] == [b"ab"]
    assert normalize(parser.feed(data[cut:])) == [b"c", "end", ("upgrade", b"\x81\x85frame")]
    with pytest.raises(RuntimeError):
        parser.feed(b"more")


def test_upgrade_without_following_bytes() -> None:
    data = req("GET /ws HTTP/1.1\nHost: x\nConnection: Upgrade\nUpgrade: websocket\n\n")
    events = feed_pieces([data])
    assert events[1:] == ["end", ("upgrade", b"")]


def test_upgrade_header_without_connection_upgrade_is_plain_request() -> None:
    data = req("GET / HTTP/1.1\nHost: x\nUpgrade: websocket\n\n") + req(
        "GET /next HTTP/1.1\nHost: x\n\n"
    )
    events = feed_pieces([data])
    assert _head(events)[7] is False
    assert _head(events, 1)[2] == "/next"


def test_connect_is_an_upgrade() -> None:
    events = feed_pieces([VALID["connect"]])
    assert _head(events)[1] == "CONNECT"
    assert _head(events)[2] == "example.com:443"
    assert _head(events)[7] is True
    assert events[-1] == ("upgrade", b"tls")


def test_raw_target_is_kept_encoded() -> None:
    events = feed_pieces([VALID["percent-encoded-target"]])
    assert _head(events)[2] == "/caf%C3%A9/a%20b?x=%20"
    events = feed_pieces([VALID["absolute-form"]])
    assert _head(events)[2] == "http://example.com/a?b"
    events = feed_pieces([VALID["asterisk-form"]])
    assert _head(events)[2] == "*"


def test_headers_multidict_keeps_duplicates_in_order() -> None:
    parser = RequestParser()
    data = req("GET / HTTP/1.1\nHost: x\nX-Dup: 1\nx-dup: 2\nX-DUP: 3\n\n")
    head = parser.feed(data)[0]
    assert isinstance(head, RequestHead)
    assert head.headers.getall("X-Dup") == ["1", "2", "3"]
    assert [n for n, _ in head.raw_headers] == [b"Host", b"X-Dup", b"x-dup", b"X-DUP"]


@pytest.mark.parametrize(
    "closing",
    [
        "GET /1 HTTP/1.1\nHost: x\nConnection: close\n\n",
        "GET /1 HTTP/1.0\n\n",
    ],
    ids=["http11-close", "http10"],
)
def test_bytes_after_a_closing_request_are_ignored(closing: str) -> None:
    # RFC 9112 §9.6: after a request that closes the connection the server processes no
    # further requests; whatever follows (valid or not) yields no events and no error.
    parser = RequestParser()
    events = parser.feed(req(closing) + req("GET /2 HTTP/1.1\nHost: x\n\n"))
    assert [e.target for e in events if isinstance(e, RequestHead)] == ["/1"]
    assert events[-1] is END
    assert parser.feed(b"GARBAGE \x00\r\n\r\n") == []
    assert parser.feed(req("GET /3 HTTP/1.1\nHost: x\n\n")) == []
    assert parser.error is None


def test_in_request_tracks_partial_head() -> None:
    parser = RequestParser()
    assert parser.in_request is False
    parser.feed(b"GET / HT")
    assert parser.in_request is True
    parser.feed(b"TP/1.1\r\nHost: x\r\n\r\n")
    assert parser.in_request is False


# -- property: random requests, random splits ---------------------------------------------

TOKEN = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
    min_size=1,
    max_size=12,
)
VALUE = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=0, max_size=20
).map(lambda s: s.strip())
PATH = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~/%=&?", min_size=0, max_size=30
).map(lambda s: "/" + s)
RESERVED = {"content-length", "transfer-encoding", "connection", "upgrade", "expect", "host"}


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, list[Any]]:
    """One valid request: its bytes and the events it must produce."""
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
    path = draw(PATH)
    version = draw(st.sampled_from(["1.1", "1.1", "1.0"]))
    fields = draw(
        st.lists(
            st.tuples(TOKEN, VALUE).filter(lambda f: f[0].lower() not in RESERVED),
            max_size=6,
        )
    )
    body = draw(st.binary(max_size=64))
    framing = draw(st.sampled_from(["none", "length", "chunked"]))
    if framing == "chunked" and version == "1.0":
        framing = "length"
    if framing == "none":
        body = b""
    fields = [("Host", "example.test"), *fields]
    lines = [f"{method} {path} HTTP/{version}", *(f"{n}: {v}" for n, v in fields)]
    payload = b""
    if framing == "length":
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    elif framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=False)]
        for piece in pieces:
            if piece:
                payload += b"%x\r\n%s\r\n" % (len(piece), piece)
        payload += b"0\r\n"
        if draw(st.booleans()):
            payload += b"X-Trailer: t\r\n"
        payload += b"\r\n"
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
    keep_alive = version == "1.1"
    expected: list[Any] = [("head", method, path, version, fields, keep_alive, framing)]
    if body:
        expected.append(body)
    expected.append("end")
    return data, expected


def summarize(events: list[Any]) -> list[Any]:
    out: list[Any] = []
    for event in events:
        if isinstance(event, tuple) and event[0] == "head":
            _, method, target, version, headers, _raw, keep_alive, _u, chunked, length, _e = event
            framing = "chunked" if chunked else ("length" if length is not None else "none")
            fields = [
                (n, v)
                for n, v in headers
                if n.lower() not in ("content-length", "transfer-encoding")
            ]
            out.append(
                ("head", method, target, f"{version[0]}.{version[1]}", fields, keep_alive, framing)
            )
        else:
            out.append(event)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.lists(requests(), min_size=1, max_size=5),
    cuts=st.lists(st.floats(0, 1, exclude_max=True), max_size=8),
)
def test_property_random_pipelines_random_splits(
    batch: list[tuple[bytes, list[Any]]], cuts: list[float]
) -> None:
    # A request that closes the connection (HTTP/1.0 without keep-alive) ends the pipeline:
    # the bytes after it give no events (tested separately).
    data = b"".join(d for d, _ in batch)
    for index, (_, events) in enumerate(batch):
        if not events[0][5]:
            batch = batch[: index + 1]
            break
    expected = [event for _, events in batch for event in events]
    offsets = sorted({int(c * len(data)) for c in cuts} - {0})
    got = summarize(feed_pieces(split_at(data, *offsets)))
    assert got == expected
    assert summarize(feed_pieces([data])) == expected


# -- the version read from the fed request line -------------------------------------------

_ONE_ZERO = req("GET /a HTTP/1.0\nHost: x\n\n")
_ONE_ONE = req("POST /b?c=%20 HTTP/1.1\nHost: x\nContent-Length: 2\n\n", b"hi")


@pytest.mark.parametrize(
    ("label", "pieces", "versions"),
    [
        ("1.0 whole", [_ONE_ZERO], [(1, 0)]),
        ("1.1 whole", [_ONE_ONE], [(1, 1)]),
        ("1.0 byte by byte", bytewise(_ONE_ZERO), [(1, 0)]),
        ("1.1 split in the version", split_at(_ONE_ONE, 18), [(1, 1)]),
        ("1.1 split after the line", split_at(_ONE_ONE, 24), [(1, 1)]),
        ("pipelined 1.1 then 1.0", [_ONE_ONE + _ONE_ZERO], [(1, 1), (1, 0)]),
        (
            "pipelined 1.0 then 1.1",
            [req("GET / HTTP/1.0\nHost: x\nConnection: keep-alive\n\n") + _ONE_ONE],
            [(1, 0), (1, 1)],
        ),
        ("second request fed alone", [_ONE_ONE, _ONE_ZERO], [(1, 1), (1, 0)]),
        ("long target", [req(f"GET /{'x' * 3000} HTTP/1.0\nHost: x\n\n")], [(1, 0)]),
        ("absolute form", [req("GET http://x/y HTTP/1.0\nHost: x\n\n")], [(1, 0)]),
        ("asterisk form", [req("OPTIONS * HTTP/1.1\nHost: x\n\n")], [(1, 1)]),
    ],
)
def test_version_from_the_line_matches_llhttp(
    label: str, pieces: list[bytes], versions: list[tuple[int, int]]
) -> None:
    """Read from the fed bytes where the request began there whole, else asked of llhttp:
    the same version either way, whatever the split or pipelining."""
    heads = [e for e in feed_pieces(pieces) if isinstance(e, tuple) and e[0] == "head"]
    assert [h[3] for h in heads] == versions, label


# The head's method, upgrade flag and keep-alive are read from the request line and the header
# names when that is enough (a GET at the start of the bytes fed; no Upgrade header and not
# CONNECT; HTTP/1.1 without a (Proxy-)Connection header), and asked of llhttp otherwise: each
# answer must be llhttp's own, whole and byte by byte.
UPGRADE_CASES = [
    "GET / HTTP/1.1\nHost: x\n\n",
    "GET / HTTP/1.1\nHost: x\nConnection: upgrade\n\n",
    "GET / HTTP/1.1\nHost: x\nUpgrade: websocket\n\n",
    "GET / HTTP/1.1\nHost: x\nConnection: Upgrade\nUpgrade: websocket\n\n",
    "GET / HTTP/1.1\nHost: x\nconnection: keep-alive, UPGRADE\nUPGRADE: h2c\n\n",
    "GET / HTTP/1.1\nHost: x\nupgrade: websocket\nConnection: upgrade\n\n",
    "GET / HTTP/1.0\nConnection: upgrade\nUpgrade: websocket\n\n",
    "POST / HTTP/1.1\nHost: x\nConnection: upgrade\nUpgrade: h2c\nContent-Length: 2\n\nab",
    "PUT / HTTP/1.1\nHost: x\nContent-Length: 0\n\n",
    "CONNECT example.com:443 HTTP/1.1\nHost: example.com:443\n\n",
    "HEAD / HTTP/1.1\nHost: x\n\n",
    "OPTIONS * HTTP/1.1\nHost: x\n\n",
    "\nGET / HTTP/1.1\nHost: x\n\n",  # an empty line before the request line
    "GET /a HTTP/1.1\nHost: x\n\nGET /b HTTP/1.1\nHost: x\nConnection: upgrade\nUpgrade: ws\n\n",
    "GET / HTTP/1.1\nHost: x\nConnection: close\n\n",
    "GET / HTTP/1.1\nHost: x\nCONNECTION: Close\n\n",
    "GET / HTTP/1.1\nHost: x\nProxy-Connection: close\n\n",
    "GET / HTTP/1.1\nHost: x\nConnection: keep-alive\n\n",
    "GET / HTTP/1.0\n\n",
    "GET / HTTP/1.0\nConnection: keep-alive\n\n",
    "GET / HTTP/1.0\nProxy-Connection: keep-alive\n\n",
    "POST / HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n0\n\n",
]


class _Llhttp:
    """What llhttp itself says of each head: its method and its upgrade flag."""

    def __init__(self) -> None:
        self.heads: list[tuple[str, bool, bool]] = []
        self.parser = httptools.HttpRequestParser(self)

    def on_headers_complete(self) -> None:
        parser = self.parser
        self.heads.append(
            (parser.get_method().decode(), parser.should_upgrade(), parser.should_keep_alive())
        )


def _llhttp_heads(data: bytes) -> list[tuple[str, bool, bool]]:
    reference = _Llhttp()
    with contextlib.suppress(httptools.HttpParserUpgrade):  # the head came before it
        reference.parser.feed_data(data)
    return reference.heads


@pytest.mark.parametrize("text", UPGRADE_CASES)
@pytest.mark.parametrize("split", ["whole", "bytewise"])
def test_method_upgrade_and_keep_alive_are_llhttps(text: str, split: str) -> None:
    data = req(text)
    expected = _llhttp_heads(data)
    assert expected, "the reference parsed no head"
    events = feed_pieces([data] if split == "whole" else bytewise(data))
    heads = [e for e in events if isinstance(e, tuple) and e[0] == "head"]
    assert [(h[1], h[7], h[6]) for h in heads] == expected

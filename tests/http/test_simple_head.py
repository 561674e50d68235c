"""The simple-head branch of the request parser (``_simplehead.scan`` and
``RequestParser._simple_heads``) against the llhttp path it stands in for.

Differential: every input is parsed twice, once as shipped and once with the branch switched off
(``scan`` answering None, so llhttp parses everything), and the events and errors must be the
same, fed whole and byte by byte. The scan's C twin and its Python definition must give the same
answers. Table rows take each rule of the simple subset and break it once; a hypothesis property
draws heads near those rules (methods, targets, names, values, spaces, line ends, Host and
Connection variants, limits) and pipelines of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import twins
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import forkloop.core.http
import forkloop.core.http._simplehead as shipped_scan
import forkloop.core.http.parser as parser_module
from forkloop.core.http.errors import HttpError
from forkloop.core.http.limits import Limits
from forkloop.core.http.parser import RequestParser, Upgrade

from .test_http_parser import normalize

definition = twins.definition(forkloop.core.http, "_simplehead")

COMPILED = not shipped_scan.__file__.endswith(".py")
LIMITS = Limits()
SMALL = Limits(
    max_request_line_bytes=40,
    max_header_field_bytes=60,
    max_header_bytes=200,
    max_header_count=4,
)


def _limits(limits: Limits) -> tuple[int, int, int, int, int]:
    return (
        limits.max_request_line_bytes + limits.max_header_bytes,
        limits.max_request_line_bytes,
        limits.max_header_field_bytes,
        limits.max_header_bytes,
        limits.max_header_count,
    )


@pytest.fixture(autouse=True)
def branch_on() -> Iterator[None]:
    """The branch on in both builds: in the pure one (off as shipped) with the definition."""
    saved = parser_module._SIMPLE_BRANCH
    parser_module._SIMPLE_BRANCH = True
    try:
        yield
    finally:
        parser_module._SIMPLE_BRANCH = saved


def test_the_branch_is_on_where_the_scan_is_compiled() -> None:
    assert shipped_scan.CHEAPER is COMPILED
    assert definition.CHEAPER is False


@contextmanager
def llhttp_only() -> Iterator[None]:
    """The parser with the simple-head branch off: llhttp parses every request."""
    saved = parser_module._scan_simple
    parser_module._scan_simple = lambda *args: None
    try:
        yield
    finally:
        parser_module._scan_simple = saved


def outcome(pieces: list[bytes], limits: Limits) -> tuple[list[Any], int | None]:
    """The events (normalized) and the status of the error, if any, feeding ``pieces``."""
    parser = RequestParser(limits)
    events: list[Any] = []
    status = None
    for index, piece in enumerate(pieces):
        try:
            got = parser.feed(piece)
        except HttpError as error:
            status = error.status
            break
        events.extend(got)
        if got and isinstance(got[-1], Upgrade):  # the rest is the upgraded protocol's
            events[-1] = Upgrade(got[-1].data + b"".join(pieces[index + 1 :]))
            break
    if status is None and parser.error is not None:
        status = parser.error.status
    return normalize(events), status


def both_paths(data: bytes, limits: Limits = LIMITS) -> tuple[list[Any], int | None]:
    """Parse ``data`` with and without the branch, whole and byte by byte; all must agree."""
    got = outcome([data], limits)
    with llhttp_only():
        expected = outcome([data], limits)
        expected_bytewise = outcome([data[i : i + 1] for i in range(len(data))], limits)
    assert got == expected, data
    assert outcome([data[i : i + 1] for i in range(len(data))], limits) == expected_bytewise
    return got


def scans(data: bytes, limits: Limits = LIMITS) -> Any:
    """``scan(data, 0)`` by the shipped module; the definition must give the same answer."""
    answer = shipped_scan.scan(data, 0, _limits(limits))
    assert definition.scan(data, 0, _limits(limits)) == answer
    return answer


def req(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


# -- heads the branch takes ----------------------------------------------------------------

SIMPLE = {
    "wrk": req("GET / HTTP/1.1\nHost: 127.0.0.1:8080\n\n"),
    "browser-ish": req(
        "GET /a/b?c=1&d=%20 HTTP/1.1\nHost: example.com\nUser-Agent: t/1.0 (x; y)\n"
        "Accept: */*\nAccept-Encoding: gzip, deflate\nConnection: keep-alive\n\n"
    ),
    "close": req("GET /bye HTTP/1.1\nHost: x\nConnection: Close\n\n"),
    "ows": req("DELETE /r HTTP/1.1\nhost: \t x\nX-A:\t a b \t\nX-B:\nX-C: \t \n\n"),
    "every-method": b"".join(
        req(f"{m} /{m.lower()} HTTP/1.1\nHost: x\n\n")
        for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
    ),
    "tokens": req("GET /~a!$&'()*+,;=:@ HTTP/1.1\nHost: x\nX-!#$%&'*+.^_`|~: v\n\n"),
    "empty-host": req("GET / HTTP/1.1\nHost:\n\n"),
}


@pytest.mark.parametrize("name", list(SIMPLE))
def test_simple_heads_are_taken_as_llhttp_parses_them(name: str) -> None:
    data = SIMPLE[name]
    found = scans(data)
    assert found is not None
    assert found[0] == data.index(b"\r\n\r\n") + 4
    events, status = both_paths(data)
    assert status is None
    assert "end" in events


def test_scan_splits_the_head() -> None:
    data = req("GET /p?q HTTP/1.1\nHost: h:1\nX-A:  a  b \nConnection: keep-alive\n\nGET")
    assert scans(data) == (
        len(data) - 3,
        "GET",
        "/p?q",
        [(b"Host", b"h:1"), (b"X-A", b"a  b"), (b"Connection", b"keep-alive")],
        b"h:1",
        True,
    )


def test_scan_starts_where_told() -> None:
    first = req("GET /1 HTTP/1.1\nHost: x\n\n")
    data = first + req("HEAD /2 HTTP/1.1\nHost: y\nConnection: close\n\n")
    found = shipped_scan.scan(data, len(first), _limits(LIMITS))
    assert found == definition.scan(data, len(first), _limits(LIMITS))
    assert found is not None
    assert found[:3] == (len(data), "HEAD", "/2")
    assert found[4:] == (b"y", False)


def test_the_branch_really_takes_simple_heads() -> None:
    # Not just equal events: the shipped parser asks the scan, and it answers.
    taken: list[Any] = []
    saved = parser_module._scan_simple

    def spy(*args: Any) -> Any:
        taken.append(found := saved(*args))
        return found

    parser_module._scan_simple = spy
    try:
        events = RequestParser().feed(SIMPLE["browser-ish"] + SIMPLE["wrk"])
    finally:
        parser_module._scan_simple = saved
    assert len(events) == 4
    assert len(taken) == 2
    assert all(found is not None for found in taken)


# -- heads the branch leaves to llhttp: each rule broken once --------------------------------

NOT_SIMPLE = {
    "lower-method": "get / HTTP/1.1\nHost: x\n\n",
    "unknown-method": "BREW / HTTP/1.1\nHost: x\n\n",
    "connect": "CONNECT x:443 HTTP/1.1\nHost: x:443\n\n",
    "trace": "TRACE / HTTP/1.1\nHost: x\n\n",
    "asterisk": "OPTIONS * HTTP/1.1\nHost: x\n\n",
    "absolute-form": "GET http://x/ HTTP/1.1\nHost: x\n\n",
    "fragment": "GET /a#b HTTP/1.1\nHost: x\n\n",
    "quote-in-target": 'GET /"a" HTTP/1.1\nHost: x\n\n',
    "two-spaces": "GET  / HTTP/1.1\nHost: x\n\n",
    "http10": "GET / HTTP/1.0\nHost: x\n\n",
    "http12": "GET / HTTP/1.2\nHost: x\n\n",
    "lower-version": "GET / http/1.1\nHost: x\n\n",
    "no-host": "GET / HTTP/1.1\nX: y\n\n",
    "two-hosts": "GET / HTTP/1.1\nHost: x\nhost: x\n\n",
    "content-length": "POST / HTTP/1.1\nHost: x\nContent-Length: 2\n\nhi",
    "content-length-zero": "POST / HTTP/1.1\nHost: x\ncontent-length: 0\n\n",
    "transfer-encoding": "POST / HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n0\n\n",
    "expect": "GET / HTTP/1.1\nHost: x\nExpect: 100-continue\n\n",
    "upgrade": "GET / HTTP/1.1\nHost: x\nConnection: Upgrade\nUpgrade: websocket\n\nxx",
    "upgrade-alone": "GET / HTTP/1.1\nHost: x\nUpgrade: websocket\n\n",
    "proxy-connection": "GET / HTTP/1.1\nHost: x\nProxy-Connection: close\n\n",
    "connection-list": "GET / HTTP/1.1\nHost: x\nConnection: keep-alive, close\n\n",
    "connection-other": "GET / HTTP/1.1\nHost: x\nConnection: TE\n\n",
    "two-connections": "GET / HTTP/1.1\nHost: x\nConnection: close\nConnection: close\n\n",
    "space-before-colon": "GET / HTTP/1.1\nHost: x\nX-A : v\n\n",
    "empty-name": "GET / HTTP/1.1\nHost: x\n: v\n\n",
    "no-colon": "GET / HTTP/1.1\nHost: x\nX-A v\n\n",
    "obs-fold": "GET / HTTP/1.1\nHost: x\nX-A: a\n b\n\n",
    "leading-crlf": "\nGET / HTTP/1.1\nHost: x\n\n",
    "partial": "GET / HTTP/1.1\nHost: x\n",
}
RAW_NOT_SIMPLE = {
    "bare-lf-line": b"GET / HTTP/1.1\nHost: x\r\n\r\n",
    "bare-lf-field": b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n",
    "bare-cr-in-value": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
    "obs-text-value": b"GET / HTTP/1.1\r\nHost: x\r\nX: caf\xc3\xa9\r\n\r\n",
    "nul-in-value": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
    "del-in-value": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n",
    "utf8-in-target": b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
    "tab-in-target": b"GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n",
    "nul-in-name": b"GET / HTTP/1.1\r\nHost: x\r\nX\x00: y\r\n\r\n",
}
CASES = {**{k: req(v) for k, v in NOT_SIMPLE.items()}, **RAW_NOT_SIMPLE}


@pytest.mark.parametrize("name", list(CASES))
def test_other_heads_are_left_to_llhttp(name: str) -> None:
    data = CASES[name]
    assert scans(data) is None
    both_paths(data)


@pytest.mark.parametrize("name", list(CASES))
def test_other_heads_after_a_simple_one(name: str) -> None:
    # The branch takes the first request and hands llhttp the rest, mid-buffer.
    data = SIMPLE["browser-ish"] + CASES[name]
    events, _status = both_paths(data)
    assert events[1] == "end"


LIMIT_CASES = {
    "target-at-limit": ("GET /" + "a" * 39 + " HTTP/1.1\nHost: x\n\n", True),
    "target-over-limit": ("GET /" + "a" * 40 + " HTTP/1.1\nHost: x\n\n", False),
    "field-at-limit": ("GET / HTTP/1.1\nHost: x\nX: " + "v" * 56 + "\n\n", True),
    "field-over-limit": ("GET / HTTP/1.1\nHost: x\nX: " + "v" * 57 + "\n\n", False),
    # Counted with its leading spaces the line is over; llhttp's path, without them, takes it.
    "field-over-limit-by-spaces": ("GET / HTTP/1.1\nHost: x\nX:   " + "v" * 55 + "\n\n", False),
    "count-at-limit": ("GET / HTTP/1.1\nHost: x\nA: 1\nB: 2\nC: 3\n\n", True),
    "count-over-limit": ("GET / HTTP/1.1\nHost: x\nA: 1\nB: 2\nC: 3\nD: 4\n\n", False),
    "section-over-limit": (
        f"GET / HTTP/1.1\nHost: {'x' * 50}\n"
        + "".join(f"X{i}: {'v' * 55}\n" for i in range(3))
        + "\n",
        False,
    ),
}


@pytest.mark.parametrize("name", list(LIMIT_CASES))
def test_limits_are_the_parsers(name: str) -> None:
    text, taken = LIMIT_CASES[name]
    data = req(text)
    assert (scans(data, SMALL) is not None) == taken
    _events, status = both_paths(data, SMALL)
    if taken:
        assert status is None


def test_head_end_search_is_bounded() -> None:
    # A head within every other limit but longer than the bound (request line plus header
    # section): the scan stops at the bound and leaves it to llhttp, which takes it.
    target = "/" + "a" * 39  # at the request-line limit
    fields = "".join(f"X{i}: {'v' * 55}\n" for i in range(3))  # 60 bytes each, at the limit
    head = req(f"OPTIONS {target} HTTP/1.1\nHost: x\n{fields}\n")
    assert len(head) > _limits(SMALL)[0]
    assert scans(head, SMALL) is None
    events, status = both_paths(head, SMALL)
    assert status is None
    assert events[-1] == "end"


def test_a_head_over_the_limits_is_refused_on_both_paths() -> None:
    head = req("GET / HTTP/1.1\nHost: x\n") + b"X: y\r\n" * 60 + b"\r\n"
    assert scans(head, SMALL) is None
    _events, status = both_paths(head, SMALL)
    assert status == 431


def test_bytes_after_a_closing_simple_request_are_ignored() -> None:
    data = SIMPLE["close"] + SIMPLE["wrk"]
    events, status = both_paths(data)
    assert events.count("end") == 1
    assert status is None


@pytest.mark.parametrize("host", ["a@b", "a b", "a/b", "[::1", "x:80:80"])
def test_invalid_host_falls_back_with_llhttps_error(host: str) -> None:
    # The scan takes any value bytes for Host; the parser's Host check sends it back.
    data = req(f"GET / HTTP/1.1\nHost: {host}\n\n")
    assert scans(data) is not None
    _events, status = both_paths(data)
    assert status == 400


# -- property: heads near the rules, alone and in pipelines ----------------------------------

METHODS = st.sampled_from(
    ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get", "CONNECT", "TRACE", "GE"]
)
TARGET = st.text(alphabet="abz09/?%=&-._~!$'()*+,;:@", min_size=0, max_size=12)
_PLAIN_NAMES = st.text(alphabet="abzAZ09-!#$%&'*+.^_`|~", min_size=1, max_size=8)
NAMES = st.one_of(
    _PLAIN_NAMES,
    _PLAIN_NAMES,
    _PLAIN_NAMES,
    st.sampled_from(
        [
            "Host", "host", "HOST", "Connection", "connection", "Content-Length",
            "Transfer-Encoding", "Expect", "Upgrade", "Proxy-Connection", "User-Agent",
            "hxst", "Connectiox",
        ]
    ),
)  # fmt: skip
VALUES = st.one_of(
    st.text(alphabet="ab :/@[]\t", min_size=0, max_size=10),
    st.sampled_from(["keep-alive", "Keep-Alive", "close", "CLOSE", "close, TE", "0", "chunked"]),
)
HOSTS = st.sampled_from(["x", "127.0.0.1:8080", "[::1]:80", "", " \tx\t ", "a b", "a@b"])
# Bytes that break one rule where they land: line ends, controls, obs-text, spaces, colons.
BREAKERS = st.sampled_from(
    [b"\r\n", b"\n", b"\r", b"\x00", b"\x7f", b"\xe9", b" ", b"\t", b":", b"#", b'"', b"\r\n "]
)


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    """A simple head, and in about half the draws one rule broken somewhere in it."""
    method = draw(st.one_of(st.just("GET"), METHODS))
    target = "/" + draw(TARGET)
    fields = draw(
        st.lists(st.tuples(NAMES, st.sampled_from([":", ": ", ":  "]), VALUES), max_size=5)
    )
    if draw(st.integers(0, 5)) < 5:  # hypothesis leans to small numbers: mostly a Host
        fields.insert(draw(st.integers(0, len(fields))), ("Host", ": ", draw(HOSTS)))
    version = draw(st.sampled_from(["HTTP/1.1"] * 8 + ["HTTP/1.0", "HTTP/1.2", "http/1.1"]))
    lines = [f"{method} {target} {version}", *(n + c + v for n, c, v in fields)]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode()
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        cut = draw(st.integers(0, 2))
        data = data[:at] + draw(BREAKERS) + data[at + cut :]
    return data


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(heads(), min_size=1, max_size=3), small=st.booleans())
def test_property_branch_matches_llhttp(batch: list[bytes], small: bool) -> None:
    limits = SMALL if small else LIMITS
    data = b"".join(batch)
    scans(data, limits)
    both_paths(data, limits)


@pytest.mark.skipif(not COMPILED, reason="the C twin is not built here")
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=80), start=st.integers(-5, 90))
def test_property_twins_agree_on_any_bytes(data: bytes, start: int) -> None:
    prefix = b"GET / HTTP/1.1\r\nHost: x\r\n"
    for buf in (data, prefix + data):
        got = shipped_scan.scan(buf, start, _limits(SMALL))
        assert got == definition.scan(buf, start, _limits(SMALL))

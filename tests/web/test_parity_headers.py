"""Differential test of request header parsing (issue 16, group 4): ``request.host`` without a
Host header, ``request.forwarded`` with separators inside quoted strings and other injected
syntax, ``request.http_range`` with the unit in any case and non-ASCII digits, and
``repr(request)`` with a non-ASCII path.

The same handler, built from ``aiohttp.web`` and from ``forkloop.web``, reports what it reads;
the requests are written over raw sockets (a request without Host is HTTP/1.0, which a client
library would not send), and the answers must be the same.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiohttp import web as aio_web
from parity_server import serving

from forkloop import web as fl_web

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))

from rawhttp import RawClient


def build_app(web: ModuleType) -> Any:
    async def info(request: Any) -> Any:
        try:
            rng: Any = repr(request.http_range)
        except ValueError as exc:
            rng = f"ValueError: {exc}"
        report = {
            "host": request.host,
            "forwarded": [dict(elem) for elem in request.forwarded],
            "repr": repr(request),
            "range": rng,
        }
        return web.json_response(report)

    app = web.Application()
    app.router.add_get("/info", info)
    app.router.add_get("/info/{tail:.*}", info)
    return app


def http10(target: str = "/info", headers: bytes = b"") -> bytes:
    """An HTTP/1.0 request: Host is optional there."""
    return b"GET " + target.encode() + b" HTTP/1.0\r\n" + headers + b"\r\n"


def with_host(header: bytes, target: str = "/info") -> bytes:
    return b"GET " + target.encode() + b" HTTP/1.1\r\nHost: example.com\r\n" + header + b"\r\n"


REQUESTS: dict[str, bytes] = {
    "no-host-http10": http10(),
    "host-header": with_host(b""),
    "host-with-port": b"GET /info HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
    "repr-non-ascii-path": with_host(b"", "/info/caf%C3%A9%20x"),
    "repr-non-ascii-raw-path": with_host(b"", "/info/caf\xc3\xa9".encode("latin-1").decode()),
    # Range: the unit in any case, ASCII digits only.
    "range-plain": with_host(b"Range: bytes=0-4\r\n"),
    "range-unit-capital": with_host(b"Range: Bytes=0-4\r\n"),
    "range-unit-upper": with_host(b"Range: BYTES=3-\r\n"),
    "range-suffix": with_host(b"Range: bytes=-5\r\n"),
    "range-arabic-digit": with_host("Range: bytes=\u0663-4\r\n".encode()),
    "range-fullwidth-digit": with_host("Range: bytes=\uff11-4\r\n".encode()),
    "range-latin1-byte": with_host(b"Range: bytes=0-4\xff\r\n"),
    "range-backwards": with_host(b"Range: bytes=5-1\r\n"),
    "range-two": with_host(b"Range: bytes=0-1,3-4\r\n"),
    "range-spaces": with_host(b"Range: bytes = 0-1\r\n"),
    "range-other-unit": with_host(b"Range: items=0-1\r\n"),
    "range-empty": with_host(b"Range: bytes=-\r\n"),
    # Forwarded (RFC 7239): separators inside quoted strings belong to the value.
    "fwd-simple": with_host(b"Forwarded: for=1.2.3.4;proto=https;by=proxy\r\n"),
    "fwd-two-hops": with_host(b'Forwarded: for="[::1]:80";by=x, for=y\r\n'),
    "fwd-quoted-separators": with_host(b'Forwarded: for="a,b;c=d";proto=http, for=z\r\n'),
    "fwd-escaped-quote": with_host(b'Forwarded: for="evil\\"x;a=b", for=z\r\n'),
    "fwd-unterminated": with_host(b'Forwarded: for="open;proto=x, for=y\r\n'),
    "fwd-backslash-at-end": with_host(b'Forwarded: for="a\\", proto=b\r\n'),
    "fwd-duplicate-name": with_host(b"Forwarded: for=a;for=b;FOR=c\r\n"),
    "fwd-port": with_host(b"Forwarded: for=abc:12345;proto=http\r\n"),
    "fwd-quoted-port": with_host(b'Forwarded: for="x":80;by=y\r\n'),
    "fwd-garbage-first": with_host(b"Forwarded: garbage, for=x\r\n"),
    "fwd-missing-separator": with_host(b"Forwarded: for=a proto=b;by=c, for=d\r\n"),
    "fwd-empty-elements": with_host(b"Forwarded: ,;, for=x ,\r\n"),
    "fwd-bad-token": with_host(b"Forwarded: f(o)r=x;by=y\r\n"),
    "fwd-non-ascii-quoted": with_host('Forwarded: for="caf\u00e9";by=x\r\n'.encode()),
    "fwd-two-lines": with_host(b"Forwarded: for=a\r\nForwarded: for=b;proto=https\r\n"),
    "fwd-empty": with_host(b"Forwarded: \r\n"),
    "fwd-quoted-empty": with_host(b'Forwarded: for="";by=""x\r\n'),
}


async def ask(port: int, data: bytes) -> Any:
    client = await RawClient.connect("127.0.0.1", port)
    try:
        await client.send(data)
        response = await client.response()
        if response.status != 200:
            return (response.status,)
        return json.loads(response.body)
    finally:
        await client.close()


async def answers(web: ModuleType) -> dict[str, Any]:
    async with serving(web, build_app(web), shutdown_timeout=1) as port:
        return {name: await ask(port, data) for name, data in REQUESTS.items()}


async def test_request_headers_read_like_aiohttp() -> None:
    expected = await answers(aio_web)
    got = await answers(fl_web)
    assert expected["no-host-http10"]["host"] == "127.0.0.1"
    mismatches = {n: (expected[n], got[n]) for n in REQUESTS if expected[n] != got[n]}
    assert not mismatches, "\n".join(
        f"{name}:\n  aiohttp : {e}\n  forkloop: {g}" for name, (e, g) in mismatches.items()
    )


@pytest.mark.parametrize("size", [10**6])
def test_forwarded_parsing_is_linear(size: int) -> None:
    """A 1 MB hostile Forwarded value (backslashes and quotes) parses in one pass."""
    from forkloop.core.web.request import _parse_forwarded

    # Each element re-opens the quoted-string of the one before (aiohttp rescans it each time).
    hostile = "a=b " + 'x="\\",' * (size // 6)
    elems = _parse_forwarded(hostile)
    assert elems[0] == {"a": "b"}
    assert elems[1] == {"x": '",x='}
    hostile = 'for="' + "\\" * size
    assert _parse_forwarded(hostile) == [{}]

"""Opening handshake validation and negotiation (RFC 6455 section 4.2, RFC 7692 section 7.1)."""

from __future__ import annotations

import pytest

from forkloop.core.websocket import (
    DeflateParams,
    HandshakeError,
    accept_key,
    can_handshake,
    negotiate_deflate,
    server_handshake,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
GOOD = [
    ("Host", "example"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Version", "13"),
]


def without(name: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in GOOD if k != name]


def replaced(name: str, value: str) -> list[tuple[str, str]]:
    return [*without(name), (name, value)]


def test_accept_key_rfc_example() -> None:
    assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_valid_handshake() -> None:
    hs = server_handshake("GET", GOOD)
    assert dict(hs.headers) == {
        "Upgrade": "websocket",
        "Connection": "upgrade",
        "Sec-WebSocket-Accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
    }
    assert hs.protocol is None
    assert hs.deflate is None
    assert can_handshake("GET", GOOD)


@pytest.mark.parametrize(
    "headers",
    [
        replaced("Upgrade", "WebSocket"),
        replaced("Upgrade", "h2c, websocket"),
        replaced("Connection", "keep-alive, Upgrade"),
        replaced("Connection", "UPGRADE"),
    ],
)
def test_header_tokens_are_case_insensitive_lists(headers: list[tuple[str, str]]) -> None:
    server_handshake("GET", headers)


REFUSED = [
    ("POST", GOOD, 405),
    ("GET", without("Upgrade"), 400),
    ("GET", replaced("Upgrade", "h2c"), 400),
    ("GET", without("Connection"), 400),
    ("GET", replaced("Connection", "keep-alive"), 400),
    ("GET", without("Sec-WebSocket-Key"), 400),
    ("GET", replaced("Sec-WebSocket-Key", "short"), 400),
    ("GET", replaced("Sec-WebSocket-Key", "!!!notbase64!!!!!!!!!!=="), 400),
    ("GET", replaced("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 400),
    ("GET", [*GOOD, ("Sec-WebSocket-Key", KEY)], 400),
    ("GET", without("Sec-WebSocket-Version"), 426),
    ("GET", replaced("Sec-WebSocket-Version", "8"), 426),
    ("GET", replaced("Sec-WebSocket-Version", "13, 8"), 426),
]


@pytest.mark.parametrize(("method", "headers", "status"), REFUSED)
def test_refused(method: str, headers: list[tuple[str, str]], status: int) -> None:
    with pytest.raises(HandshakeError) as info:
        server_handshake(method, headers)
    assert info.value.status == status
    assert info.value.reason
    if status == 426:
        assert ("Sec-WebSocket-Version", "13") in info.value.headers
    assert not can_handshake(method, headers)


@pytest.mark.parametrize(
    ("offered", "server", "chosen"),
    [
        (["chat, superchat"], ("superchat", "chat"), "chat"),
        (["a", "b"], ("b",), "b"),
        (["x"], ("chat",), None),
        ([], ("chat",), None),
        (["chat"], (), None),
    ],
)
def test_subprotocol_first_in_client_order(
    offered: list[str], server: tuple[str, ...], chosen: str | None
) -> None:
    headers = GOOD + [("Sec-WebSocket-Protocol", v) for v in offered]
    hs = server_handshake("GET", headers, protocols=server)
    assert hs.protocol == chosen
    assert dict(hs.headers).get("Sec-WebSocket-Protocol") == chosen


DEFLATE = [
    ("permessage-deflate", DeflateParams(), "permessage-deflate"),
    (
        "permessage-deflate; client_max_window_bits",
        DeflateParams(),
        "permessage-deflate",
    ),
    (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        DeflateParams(server_no_context_takeover=True, client_no_context_takeover=True),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    ),
    (
        'permessage-deflate; server_max_window_bits="10"',
        DeflateParams(server_max_window_bits=10),
        "permessage-deflate; server_max_window_bits=10",
    ),
    # The first acceptable offer wins; unacceptable ones are skipped.
    (
        "permessage-deflate; server_max_window_bits=7, "
        "permessage-deflate; client_max_window_bits=9",
        DeflateParams(),
        "permessage-deflate",
    ),
    ("x-webkit-deflate-frame, permessage-deflate", DeflateParams(), "permessage-deflate"),
    ("permessage-deflate; unknown=1", None, None),
    ("permessage-deflate; server_max_window_bits", None, None),
    ("permessage-deflate; server_max_window_bits=16", None, None),
    ("permessage-deflate; server_max_window_bits=08", None, None),
    ("permessage-deflate; client_max_window_bits=20", None, None),
    ("permessage-deflate; server_no_context_takeover=1", None, None),
    ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None, None),
    ("foo", None, None),
]


@pytest.mark.parametrize(("offer", "params", "response"), DEFLATE)
def test_deflate_negotiation(
    offer: str, params: DeflateParams | None, response: str | None
) -> None:
    got = negotiate_deflate([offer])
    if params is None:
        assert got is None
    else:
        assert got == (params, response)
    hs = server_handshake("GET", [*GOOD, ("Sec-WebSocket-Extensions", offer)])
    assert hs.deflate == params
    assert dict(hs.headers).get("Sec-WebSocket-Extensions") == response
    off = server_handshake("GET", [*GOOD, ("Sec-WebSocket-Extensions", offer)], compress=False)
    assert off.deflate is None

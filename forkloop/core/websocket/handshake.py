"""The server side of the opening handshake (RFC 6455 section 4.2, RFC 7692 section 7.1).

``server_handshake`` validates a request's method and headers and returns the 101 response's
headers, the chosen subprotocol and the negotiated permessage-deflate parameters; a request
that is not a valid WebSocket upgrade raises ``HandshakeError`` with the HTTP status to answer
(400 with a reason; 405 for a method other than GET; 426 with ``Sec-WebSocket-Version: 13`` for
an unsupported version). Headers come in as ``(name, value)`` pairs so repeated fields count.
Imports nothing of ours but the codec.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from .deflate import DeflateParams, negotiate_deflate
from .errors import HandshakeError

__all__ = ["Handshake", "accept_key", "server_handshake"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handshake(NamedTuple):
    """An accepted handshake: the 101's headers, subprotocol and deflate parameters."""

    headers: list[tuple[str, str]]
    protocol: str | None
    deflate: DeflateParams | None


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 section 4.2.2)."""
    digest = hashlib.sha1(key.encode("ascii") + _GUID).digest()  # noqa: S324 - RFC-mandated
    return base64.b64encode(digest).decode("ascii")


def _tokens(values: list[str]) -> list[str]:
    return [t.strip().lower() for v in values for t in v.split(",") if t.strip()]


def _collect(headers: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    wanted = {
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    }
    found: dict[str, list[str]] = {name: [] for name in wanted}
    for name, value in headers:
        lname = name.lower()
        if lname in wanted:
            found[lname].append(value)
    return found


def _check_key(values: list[str]) -> str:
    if len(values) != 1:
        raise HandshakeError(400, "Handshake error: exactly one Sec-WebSocket-Key is required")
    key = values[0].strip()
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise HandshakeError(400, f"Handshake error: invalid Sec-WebSocket-Key {key!r}")
    return key


def _check_request(method: str, found: dict[str, list[str]]) -> str:
    """Validate the upgrade request; return the client's key."""
    if method != "GET":
        raise HandshakeError(405, "WebSocket upgrade requires GET", (("Allow", "GET"),))
    if "websocket" not in _tokens(found["upgrade"]):
        raise HandshakeError(400, "No WebSocket UPGRADE hdr: " + ", ".join(found["upgrade"]))
    if "upgrade" not in _tokens(found["connection"]):
        raise HandshakeError(400, "No CONNECTION upgrade hdr: " + ", ".join(found["connection"]))
    versions = found["sec-websocket-version"]
    if not versions:
        raise HandshakeError(
            426, "Sec-WebSocket-Version is missing", (("Sec-WebSocket-Version", "13"),)
        )
    if [v.strip() for v in versions] != ["13"]:
        raise HandshakeError(
            426,
            "Unsupported version: " + ", ".join(versions),
            (("Sec-WebSocket-Version", "13"),),
        )
    return _check_key(found["sec-websocket-key"])


def select_protocol(offered: list[str], protocols: Sequence[str]) -> str | None:
    """The first subprotocol, in the client's order, that the server supports."""
    for proto in offered:
        if proto in protocols:
            return proto
    return None


def can_handshake(method: str, headers: Iterable[tuple[str, str]]) -> bool:
    """Whether the request is a valid WebSocket upgrade (no exception, no negotiation)."""
    try:
        _check_request(method, _collect(headers))
    except HandshakeError:
        return False
    return True


def server_handshake(
    method: str,
    headers: Iterable[tuple[str, str]],
    *,
    protocols: Sequence[str] = (),
    compress: bool = True,
) -> Handshake:
    """Validate the request and negotiate; raise ``HandshakeError`` to refuse it."""
    found = _collect(headers)
    key = _check_request(method, found)
    offered = [t.strip() for v in found["sec-websocket-protocol"] for t in v.split(",")]
    protocol = select_protocol([t for t in offered if t], protocols) if protocols else None
    response = [
        ("Upgrade", "websocket"),
        ("Connection", "upgrade"),
        ("Sec-WebSocket-Accept", accept_key(key)),
    ]
    if protocol is not None:
        response.append(("Sec-WebSocket-Protocol", protocol))
    deflate = None
    if compress and found["sec-websocket-extensions"]:
        negotiated = negotiate_deflate(found["sec-websocket-extensions"])
        if negotiated is not None:
            deflate, value = negotiated
            response.append(("Sec-WebSocket-Extensions", value))
    return Handshake(response, protocol, deflate)

"""permessage-deflate (RFC 7692): offer negotiation, a bounded inflater and a deflater.

Negotiation (section 7.1): the server takes the first acceptable ``permessage-deflate`` offer;
an offer with an unknown, duplicated or out-of-range parameter is declined, not failed.
Inflation is bounded: the caller passes how many bytes may still come out, and a message that
would inflate past ``max_msg_size`` is refused with 1009 before the excess is produced
(decompression bombs). Imports nothing of ours but the codec's errors.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from .errors import WebSocketError

__all__ = [
    "DeflateParams",
    "Deflater",
    "Inflater",
    "negotiate_deflate",
    "parse_extensions",
]

# RFC 7692 section 7.2.2: the sender drops this empty stored block's tail; the receiver
# appends it back before inflating.
_TAIL = b"\x00\x00\xff\xff"

Extension = tuple[str, list[tuple[str, str | None]]]


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """The negotiated permessage-deflate parameters, from the server's point of view."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15

    def response_header(self, *, echo_server_bits: bool) -> str:
        """The ``Sec-WebSocket-Extensions`` value answering the accepted offer."""
        parts = ["permessage-deflate"]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if echo_server_bits:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        return "; ".join(parts)


def parse_extensions(values: list[str]) -> list[Extension]:
    """Parse ``Sec-WebSocket-Extensions`` header values (RFC 6455 section 9.1).

    Returns ``[(name, [(param, value or None), ...]), ...]`` in the client's order.
    """
    result: list[Extension] = []
    for value in values:
        for item in value.split(","):
            pieces = [p.strip() for p in item.split(";")]
            name = pieces[0].lower()
            if not name:
                continue
            params: list[tuple[str, str | None]] = []
            for piece in pieces[1:]:
                if not piece:
                    continue
                key, eq, val = piece.partition("=")
                val = val.strip()
                if len(val) >= 2 and val[0] == val[-1] == '"':
                    val = val[1:-1]
                params.append((key.strip().lower(), val if eq else None))
            result.append((name, params))
    return result


def _window_bits(value: str | None) -> int | None:
    if value is None or not value.isdigit() or value.startswith("0"):
        return None
    bits = int(value)
    return bits if 8 <= bits <= 15 else None


def _accept_offer(params: list[tuple[str, str | None]]) -> tuple[DeflateParams, bool] | None:
    """Return the parameters for an acceptable offer (and whether server bits were asked)."""
    seen: set[str] = set()
    server_nct = client_nct = False
    server_bits: int | None = None
    for key, value in params:
        if key in seen:
            return None
        seen.add(key)
        if key == "server_no_context_takeover" and value is None:
            server_nct = True
        elif key == "client_no_context_takeover" and value is None:
            client_nct = True
        elif key == "server_max_window_bits":
            server_bits = _window_bits(value)
            if server_bits is None:
                return None
        elif key == "client_max_window_bits":
            # A bare parameter only says the client could honour a limit; we inflate with
            # a 32 KiB window, so we never ask for one (section 7.1.2.2).
            if value is not None and _window_bits(value) is None:
                return None
        else:
            return None
    return (
        DeflateParams(
            server_no_context_takeover=server_nct,
            client_no_context_takeover=client_nct,
            server_max_window_bits=server_bits or 15,
        ),
        server_bits is not None,
    )


def negotiate_deflate(values: list[str]) -> tuple[DeflateParams, str] | None:
    """Pick the first acceptable permessage-deflate offer; return it and the response value."""
    for name, params in parse_extensions(values):
        if name != "permessage-deflate":
            continue
        accepted = _accept_offer(params)
        if accepted is not None:
            found, echo_bits = accepted
            return found, found.response_header(echo_server_bits=echo_bits)
    return None


class Inflater:
    """Inflates the frames of compressed messages, bounded by the bytes still allowed."""

    __slots__ = ("_zobj",)

    def __init__(self) -> None:
        # A 15-bit window inflates anything a peer limited to fewer bits produced.
        self._zobj = zlib.decompressobj(wbits=-15)

    def inflate(self, data: bytes, *, final: bool, room: int | None) -> bytes:
        """Inflate one frame's payload; ``room`` is the bytes allowed (None: unbounded).

        Raises ``WebSocketError`` 1009 when the output would exceed ``room`` and 1007 when
        the data is not a valid deflate stream.
        """
        zobj = self._zobj
        try:
            if room is not None:
                out = zobj.decompress(data, room + 1)
                if final and len(out) <= room:
                    out += zobj.decompress(_TAIL, room + 1 - len(out))
            else:
                out = zobj.decompress(data)
                if final:
                    out += zobj.decompress(_TAIL)
        except zlib.error as exc:
            raise WebSocketError(1007, f"invalid compressed data: {exc}") from None
        if room is not None and len(out) > room:
            raise WebSocketError(1009, "message too big once inflated")
        if final and zobj.eof:
            # The peer ended its deflate stream (BFINAL): the next message starts a new one.
            self._zobj = zlib.decompressobj(wbits=-15)
        return out


class Deflater:
    """Compresses outgoing messages per the negotiated parameters."""

    __slots__ = ("_flush_mode", "_zobj", "enabled")

    def __init__(self, params: DeflateParams, *, server: bool = True, level: int = 1) -> None:
        bits = params.server_max_window_bits if server else params.client_max_window_bits
        no_takeover = (
            params.server_no_context_takeover if server else params.client_no_context_takeover
        )
        # zlib cannot deflate with an 8-bit window (it silently uses 9, which a peer that asked
        # for 8 could not inflate); such a connection sends its messages uncompressed, which
        # RFC 7692 allows per message.
        self.enabled = bits > 8
        self._zobj = zlib.compressobj(level, zlib.DEFLATED, -max(bits, 9))
        # A full flush empties the window, so no message refers back to an earlier one.
        self._flush_mode = zlib.Z_FULL_FLUSH if no_takeover else zlib.Z_SYNC_FLUSH

    def deflate(self, data: bytes) -> bytes:
        """Compress one whole message; the result goes out with RSV1 set."""
        zobj = self._zobj
        out = zobj.compress(data) + zobj.flush(self._flush_mode)
        if out.endswith(_TAIL):
            out = out[:-4]
        return out or b"\x00"

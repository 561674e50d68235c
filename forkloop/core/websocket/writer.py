"""The frame writer: messages in, wire bytes out (RFC 6455 section 5.2, RFC 7692).

A server sends unmasked frames; a client (tests, benchmarks) masks with a fresh random key per
frame. Messages go out as one frame each; permessage-deflate compresses when negotiated.
Imports nothing of ours but the codec.
"""

from __future__ import annotations

import os
import struct
from typing import Final

from .deflate import DeflateParams, Deflater
from .masking import apply_mask
from .models import close_code_valid

__all__ = ["FrameWriter", "build_frame"]

_PACK_16 = struct.Struct("!BBH").pack
_PACK_64 = struct.Struct("!BBQ").pack
# The 2-byte heads of unmasked, final text (1) and binary (2) frames of 0..125 bytes.
_SHORT_HEADS: Final = (
    (),
    tuple(bytes((0x81, n)) for n in range(126)),
    tuple(bytes((0x82, n)) for n in range(126)),
)


def build_frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False, mask: bool = False
) -> bytes:
    """Return one frame; ``mask`` masks it with a random key (what a client must do)."""
    b0 = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes((b0, n | mbit))
    elif n < 65536:
        head = _PACK_16(b0, 126 | mbit, n)
    else:
        head = _PACK_64(b0, 127 | mbit, n)
    if mask:
        key = os.urandom(4)
        return head + key + apply_mask(key, payload)
    return head + payload


class FrameWriter:
    """Builds the frames of one direction, compressing messages when deflate is on."""

    __slots__ = ("_deflater", "_mask")

    def __init__(self, *, deflate: DeflateParams | None = None, server: bool = True) -> None:
        deflater = Deflater(deflate, server=server) if deflate is not None else None
        self._deflater = deflater if deflater is not None and deflater.enabled else None
        self._mask = not server

    @property
    def compress(self) -> bool:
        """Whether outgoing messages are compressed by default."""
        return self._deflater is not None

    def message(self, opcode: int, payload: bytes, compress: bool | None = None) -> bytes:
        """Frame a whole TEXT (1) or BINARY (2) message."""
        deflater = self._deflater
        if deflater is not None and compress is not False:
            return build_frame(opcode, deflater.deflate(payload), rsv1=True, mask=self._mask)
        if not self._mask and len(payload) < 126 and (opcode == 1 or opcode == 2):
            return _SHORT_HEADS[opcode][len(payload)] + payload
        return build_frame(opcode, payload, mask=self._mask)

    def control(self, opcode: int, payload: bytes = b"") -> bytes:
        """Frame a PING (9) or PONG (10); control payloads are at most 125 bytes."""
        if len(payload) > 125:
            raise ValueError("control frame payload must be at most 125 bytes")
        return build_frame(opcode, payload, mask=self._mask)

    def close(self, code: int | None = 1000, reason: bytes | str = b"") -> bytes:
        """Frame a CLOSE with ``code`` and ``reason`` (``code=None``: an empty close)."""
        if code is None:
            return build_frame(8, b"", mask=self._mask)
        if not close_code_valid(code):
            raise ValueError(f"close code {code} may not be sent")
        if isinstance(reason, str):
            reason = reason.encode("utf-8")
        payload = code.to_bytes(2, "big") + reason
        if len(payload) > 125:
            raise ValueError("close reason must be at most 123 bytes")
        return build_frame(8, payload, mask=self._mask)

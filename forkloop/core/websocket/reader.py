"""The frame reader: bytes in, ``WSMessage`` tuples out, for any split of the input.

Theory of operation. ``feed(data)`` parses as many frames as ``data`` completes and returns
the finished messages. Between calls the reader keeps at most one of: a partial frame header
(< 14 bytes, ``_head``) or the payload pieces of one frame whose header is already validated
(``_chunks``/``_need``). Fragmented messages collect in ``_parts`` until the FIN frame.
Every check a header allows is made before its payload is buffered, so an oversized or
illegal frame costs no memory. The first violation is stored in ``error`` (a
``WebSocketError`` carrying the close code) and the reader stops; a close frame also stops it.

Checks (RFC 6455 section 5): client frames masked (server frames not); RSV1 only with
permessage-deflate and only on a message's first frame; RSV2/RSV3 never; reserved opcodes;
control frames final and <= 125 bytes; continuation only inside a fragmented message and a new
data frame never inside one; 64-bit lengths with the top bit clear; text valid UTF-8, checked
incrementally as it arrives, also inside a frame still being received (1007); close payloads
(1002/1007); message size (1009), also for the inflated size of compressed messages.
Memory is bounded by the bytes received plus a fixed overhead, whatever the framing: the
pieces of a frame (``_chunks``) and the fragments of a message (``_parts``) are appended to one
``bytearray`` each, not kept as a list of objects (3 million empty continuation frames used to
cost a list entry each), and a message may have at most ``max_fragments`` frames (1009 past
it), which bounds the CPU spent on one message too. Fragmented text is validated frame by frame
with an incremental decoder and decoded once, at its final frame. Imports nothing of ours but
the codec.
"""

from __future__ import annotations

import codecs
from typing import Final

from ._unmask import unmask
from .deflate import Inflater
from .errors import WebSocketError
from .masking import apply_mask
from .models import WSMessage, WSMsgType, close_code_valid

__all__ = ["FrameReader", "parse_close_payload"]

# Final: the compiled module keeps these in C statics instead of looking them up per frame.
_TEXT: Final = WSMsgType.TEXT
_BINARY: Final = WSMsgType.BINARY
_CLOSE: Final = WSMsgType.CLOSE
_PING: Final = WSMsgType.PING
_PONG: Final = WSMsgType.PONG
_utf8_decoder: Final = codecs.getincrementaldecoder("utf-8")
_UNBOUNDED: Final = 1 << 64
_SHORT: Final = 128  # payloads shorter than this are unmasked inline
_new: Final = tuple.__new__
# Frames of one fragmented message. Autobahn's 9.3.1 sends 4 MiB in 64-byte fragments (65,536).
MAX_FRAGMENTS = 1 << 17


def parse_close_payload(payload: bytes) -> tuple[int, str]:
    """Return ``(code, reason)`` of a close frame; an empty payload means 1005."""
    if not payload:
        return 1005, ""
    if len(payload) == 1:
        raise WebSocketError(1002, "close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if not close_code_valid(code):
        raise WebSocketError(1002, f"invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise WebSocketError(1007, "close reason is not valid UTF-8") from None
    return code, reason


def _check_control(b0: int, length: int) -> None:
    opcode = b0 & 0x0F
    if opcode > 0xA:
        raise WebSocketError(1002, f"reserved opcode {opcode:#x}")
    if b0 & 0x70:
        raise WebSocketError(1002, "RSV bits set on a control frame")
    if not b0 & 0x80:
        raise WebSocketError(1002, "fragmented control frame")
    if length > 125:
        raise WebSocketError(1002, "control frame payload longer than 125 bytes")


class FrameReader:
    """Sans-I/O parser of one direction of a WebSocket connection."""

    __slots__ = (
        "_chunks",
        "_decoder",
        "_fast_max",
        "_fb0",
        "_fmask",
        "_frag_compressed",
        "_frag_count",
        "_frag_op",
        "_frag_size",
        "_head",
        "_inflater",
        "_mask_bit",
        "_max",
        "_max_fragments",
        "_need",
        "_parts",
        "_pcheck",
        "_pmask",
        "_poff",
        "_rsv_allowed",
        "closed",
        "error",
    )

    def __init__(
        self,
        *,
        max_msg_size: int = 4 * 1024 * 1024,
        compress: bool = False,
        server: bool = True,
        max_fragments: int = MAX_FRAGMENTS,
    ) -> None:
        """``max_msg_size`` 0 means unlimited; ``compress`` says permessage-deflate is on;
        a ``server`` reads masked client frames, a client reads unmasked server frames;
        a message of more than ``max_fragments`` frames is refused (1009)."""
        if max_fragments < 1:
            raise ValueError(f"max_fragments must be at least 1, got {max_fragments}")
        self._max = max_msg_size
        self._max_fragments = max_fragments
        self._fast_max = max_msg_size or _UNBOUNDED
        self._mask_bit = 0x80 if server else 0
        self._rsv_allowed = 0x40 if compress else 0
        self._inflater: Inflater | None = Inflater() if compress else None
        self._head = b""
        self._need = 0
        self._chunks = bytearray()
        self._fb0 = 0
        self._fmask = b""
        self._frag_op = 0
        self._frag_compressed = False
        self._frag_size = 0
        self._frag_count = 0
        self._parts = bytearray()
        self._decoder: codecs.IncrementalDecoder | None = None
        self._pcheck: codecs.IncrementalDecoder | None = None
        self._pmask = b""
        self._poff = 0
        self.error: WebSocketError | None = None
        self.closed = False

    def feed(self, data: bytes) -> list[WSMessage]:
        """Parse ``data``; return the completed messages (check ``error`` afterwards)."""
        n = len(data)
        if (
            6 < n < 132  # a 7-bit length (0..125) plus a 6-byte header
            and not self._need
            and not self._head
            and not self._frag_op
            and n - 6 == data[1] - 0x80
            and self._mask_bit
            and self.error is None
            and not self.closed
        ):
            # Fastest path: ``data`` is exactly one short, whole, masked text or binary frame
            # (the usual case for a chat-like peer). ``data[1] - 0x80`` is the 7-bit length
            # when the mask bit is set; an unmasked frame cannot match ``n``.
            b0 = data[0]
            if b0 == 0x81 or b0 == 0x82:
                length = n - 6
                if length > self._fast_max:
                    pass  # over the limit: the general path reports it
                elif length < _SHORT:
                    payload = unmask(data, 2, 6, length)
                    if b0 == 0x81:
                        try:
                            return [_new(WSMessage, (_TEXT, payload.decode("utf-8"), ""))]
                        except UnicodeDecodeError:
                            self.error = WebSocketError(1007, "text message is not valid UTF-8")
                            return []
                    return [_new(WSMessage, (_BINARY, payload, ""))]
        out: list[WSMessage] = []
        if self.error is not None or self.closed:
            return out
        try:
            self._feed(data, out)
        except WebSocketError as exc:
            self.error = exc
        except UnicodeDecodeError:
            self.error = WebSocketError(1007, "text message is not valid UTF-8")
        return out

    def _feed(self, data: bytes, out: list[WSMessage]) -> None:  # noqa: C901 - the hot loop
        pos = 0
        if self._need:
            n = len(data)
            if n < self._need:
                self._chunks += self._partial(data) if self._pcheck else data
                self._need -= n
                return
            pos = self._need
            piece = data[:pos]
            self._chunks += self._partial(piece) if self._pcheck else piece
            self._need = 0
            self._pcheck = None
            payload = bytes(self._chunks)
            self._chunks = bytearray()
            if self._fmask:
                payload = apply_mask(self._fmask, payload)
            self._frame(self._fb0, payload, out)
            if self.closed:
                return
        elif self._head:
            data = self._head + data
            self._head = b""
        n = len(data)
        while pos < n:
            avail = n - pos
            if avail < 2:
                self._head = data[pos:]
                return
            b0 = data[pos]
            b1 = data[pos + 1]
            length = b1 & 0x7F
            hlen = 2
            if length == 126:
                if avail < 4:
                    self._head = data[pos:]
                    return
                length = (data[pos + 2] << 8) | data[pos + 3]
                hlen = 4
            elif length == 127:
                if avail < 10:
                    self._head = data[pos:]
                    return
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                hlen = 10
            masked = b1 & 0x80
            if masked:
                if avail < hlen + 4:
                    self._head = data[pos:]
                    return
                mask = data[pos + hlen : pos + hlen + 4]
                hlen += 4
            else:
                mask = b""
            start = pos + hlen
            end = start + length
            if (
                (b0 == 0x81 or b0 == 0x82)
                and masked == self._mask_bit
                and not self._frag_op
                and length <= self._fast_max
                and end <= n
            ):
                # Fast path: a whole unfragmented, uncompressed text or binary message.
                payload = unmask(data, start - 4, start, length) if mask else data[start:end]
                if b0 == 0x81:
                    out.append(_new(WSMessage, (_TEXT, payload.decode("utf-8"), "")))
                else:
                    out.append(_new(WSMessage, (_BINARY, payload, "")))
                pos = end
                continue
            self._check_header(b0, masked, length)
            if end > n:
                self._fb0 = b0
                self._fmask = mask
                self._need = end - n
                if self._is_plain_text(b0):
                    self._start_partial_text(mask)
                    self._chunks = bytearray(self._partial(data[start:]))
                else:
                    self._chunks = bytearray(data[start:])
                return
            payload = data[start:end]
            if mask:
                payload = apply_mask(mask, payload)
            self._frame(b0, payload, out)
            if self.closed:
                return
            pos = end

    # A text frame that arrives in pieces is validated piece by piece (unmasked as it comes),
    # so invalid UTF-8 fails the connection before the rest of a long frame is awaited.

    def _is_plain_text(self, b0: int) -> bool:
        opcode = b0 & 0x0F
        if opcode == 1:
            return not b0 & 0x40
        return opcode == 0 and self._decoder is not None and not self._frag_compressed

    def _start_partial_text(self, mask: bytes) -> None:
        check = _utf8_decoder()
        if self._decoder is not None and (self._fb0 & 0x0F) == 0:
            check.setstate(self._decoder.getstate())  # continue the message's UTF-8 state
        self._pcheck = check
        self._pmask = mask
        self._poff = 0
        self._fmask = b""  # the pieces are stored unmasked

    def _partial(self, piece: bytes) -> bytes:
        mask = self._pmask
        if mask:
            k = self._poff & 3
            piece = apply_mask(mask[k:] + mask[:k], piece)
        self._poff += len(piece)
        check = self._pcheck
        if check is not None:
            check.decode(piece, False)
        return piece

    def _check_header(self, b0: int, masked: int, length: int) -> None:
        if masked != self._mask_bit:
            raise WebSocketError(
                1002, "client frame not masked" if self._mask_bit else "server frame masked"
            )
        if length >> 63:
            raise WebSocketError(1002, "frame length has the most significant bit set")
        opcode = b0 & 0x0F
        rsv = b0 & 0x70
        if opcode >= 8:
            _check_control(b0, length)
            return
        if opcode > 2:
            raise WebSocketError(1002, f"reserved opcode {opcode:#x}")
        if rsv & ~self._rsv_allowed or (rsv and not opcode):
            raise WebSocketError(1002, "RSV bits set without a negotiated extension")
        if opcode:
            if self._frag_op:
                raise WebSocketError(1002, "new data frame inside a fragmented message")
            size = length
            compressed = bool(rsv)
        else:
            if not self._frag_op:
                raise WebSocketError(1002, "continuation frame without a message to continue")
            if self._frag_count >= self._max_fragments:
                raise WebSocketError(1009, f"message in more than {self._max_fragments} fragments")
            size = self._frag_size + length
            compressed = self._frag_compressed
        if self._max:
            # Compressed frames are bounded again once inflated; on the wire they may exceed
            # the limit slightly (incompressible data grows a little).
            limit = self._max + (self._max >> 4) + 64 if compressed else self._max
            if size > limit:
                raise WebSocketError(1009, f"message larger than {self._max} bytes")

    def _frame(self, b0: int, payload: bytes, out: list[WSMessage]) -> None:
        opcode = b0 & 0x0F
        fin = bool(b0 & 0x80)
        if opcode >= 8:
            if opcode == 8:
                code, reason = parse_close_payload(payload)
                self.closed = True
                out.append(WSMessage(_CLOSE, code, reason))
            elif opcode == 9:
                out.append(WSMessage(_PING, payload, ""))
            else:
                out.append(WSMessage(_PONG, payload, ""))
            return
        if opcode:
            compressed = bool(b0 & 0x40)
            if fin:
                self._whole(opcode, payload, compressed, out)
                return
            self._frag_op = opcode
            self._frag_compressed = compressed
            self._frag_size = 0
            self._frag_count = 0
            self._decoder = _utf8_decoder() if opcode == 1 else None
        self._frag_count += 1
        if self._frag_compressed:
            payload = self._inflate(payload, fin, self._frag_size)
        self._frag_size += len(payload)
        if self._max and self._frag_size > self._max:
            raise WebSocketError(1009, f"message larger than {self._max} bytes")
        if self._decoder is not None:
            # Validating frame by frame fails fast, at the frame that makes the text invalid.
            self._decoder.decode(payload, fin)
        self._parts += payload
        if fin:
            self._frag_op = 0
            data = bytes(self._parts)
            self._parts = bytearray()
            if self._decoder is not None:
                self._decoder = None
                out.append(WSMessage(_TEXT, data.decode("utf-8"), ""))
            else:
                out.append(WSMessage(_BINARY, data, ""))

    def _whole(self, opcode: int, payload: bytes, compressed: bool, out: list[WSMessage]) -> None:
        if compressed:
            payload = self._inflate(payload, True, 0)
        if self._max and len(payload) > self._max:
            raise WebSocketError(1009, f"message larger than {self._max} bytes")
        if opcode == 1:
            out.append(WSMessage(_TEXT, payload.decode("utf-8"), ""))
        else:
            out.append(WSMessage(_BINARY, payload, ""))

    def _inflate(self, payload: bytes, final: bool, size: int) -> bytes:
        inflater = self._inflater
        if inflater is None:  # pragma: no cover - RSV1 is refused without deflate
            raise WebSocketError(1002, "compressed frame without permessage-deflate")
        room = self._max - size if self._max else None
        return inflater.inflate(payload, final=final, room=room)

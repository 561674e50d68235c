"""The body stream of a request with a ``Content-Encoding``: decoded as the handler reads.

Owns ``DecodingStreamReader``, a ``StreamReader`` whose producer side takes the compressed
bytes and whose consumer side sees the decoded body (``core.http.decoding.Decoder``). Only
requests whose ``Content-Encoding`` names a coding forkloop decodes get one (the protocol's
one predicate in ``HttpProtocol._new_request``); every other body is a plain ``StreamReader``.

Memory stays bounded whatever the compression ratio: decoding stops as soon as the decoded
bytes waiting for the handler pass the flow-control mark (the stream then pauses the socket,
as for any body), and goes on when the handler has read them below the low mark. So a few
kilobytes of gzip expanding to gigabytes cost the compressed bytes received plus the read
buffer plus one decoded piece (``DEFAULT_PIECE_BYTES``), never the expansion. A corrupt or
truncated stream makes the next read raise ``RequestPayloadError`` (400).

Imports ``core.http`` and this package's ``streams``.
"""

from __future__ import annotations

from typing import Any

from ..http.decoding import Decoder, make_decoder
from ..http.errors import HttpError
from .streams import PIECE_OVERHEAD_BYTES, FlowControl, StreamReader

__all__ = ["DecodingStreamReader", "body_stream"]


class _Gate:
    """The stream's hold on its connection's reading, released for good once the compressed
    body has all arrived: what is left to decode is in memory (no more than was received), and
    the socket belongs to the next request even if the handler never reads the rest."""

    __slots__ = ("_conn", "_open", "held")

    def __init__(self, conn: FlowControl) -> None:
        self._conn = conn
        self._open = True
        self.held = False

    def pause_reading(self) -> None:
        if self._open and not self.held:
            self.held = True
            self._conn.pause_reading()

    def resume_reading(self) -> None:
        if self.held:
            self.held = False
            self._conn.resume_reading()

    def release(self) -> None:
        self._open = False
        self.resume_reading()


def body_stream(coding: str, protocol: FlowControl, **kwargs: Any) -> StreamReader:
    """The body stream for a request with ``Content-Encoding: coding``: decoding when it is
    a coding forkloop decodes, plain otherwise (left as aiohttp leaves it). Raises
    ``RequestPayloadError`` for a coding whose module is missing (``br``, ``zstd``)."""
    decoder = make_decoder(coding)
    if decoder is None:
        return StreamReader(protocol, **kwargs)
    return DecodingStreamReader(protocol, decoder, **kwargs)


class DecodingStreamReader(StreamReader):
    """A request body decoded from its ``Content-Encoding`` while it is read."""

    __slots__ = ("_decoder", "_dropped", "_gate", "_input_ended")

    def __init__(self, protocol: FlowControl, decoder: Decoder, **kwargs: Any) -> None:
        # The declared Content-Length counts compressed bytes: the decoded length is unknown.
        kwargs["expected_bytes"] = None
        self._gate = _Gate(protocol)
        super().__init__(self._gate, **kwargs)
        self._decoder = decoder
        self._input_ended = False
        self._dropped = False

    def __repr__(self) -> str:
        state = "eof" if self._eof else f"{self._size} bytes"
        return f"<DecodingStreamReader {self._decoder.coding} {state}>"

    def feed_data(self, data: bytes) -> None:
        if self._exception is not None or self._input_ended or self._dropped:
            return  # the stream already failed: what follows is dropped
        self._decoder.feed(data)
        self._pump()

    def feed_eof(self) -> None:
        self._input_ended = True
        self._gate.release()
        if self._dropped or self._exception is not None:
            super().feed_eof()
        else:
            self._pump()

    def discard(self) -> int:
        self._dropped = True  # the handler is done: nothing more is decoded
        self._decoder.clear()
        return super().discard()

    def _pump(self) -> None:
        """Decode into the buffer until it is over the mark or the input is used up."""
        decoder = self._decoder
        feed = super().feed_data
        try:
            while not self._paused:
                piece = decoder.read()
                if not piece:
                    break
                feed(piece)
            if self._input_ended and not self._eof and not decoder.pending:
                decoder.end()
                super().feed_eof()
        except HttpError as exc:
            decoder.clear()
            self.set_exception(exc)

    def _resume_if_low(self) -> None:
        if self._paused and self._size + len(self._buffer) * PIECE_OVERHEAD_BYTES < self._low:
            self._paused = False
            self._protocol.resume_reading()
            if self._exception is None and not self._dropped:
                self._pump()  # may pause again: pauses and resumes stay paired

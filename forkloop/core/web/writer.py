"""The response body writer: framing (Content-Length, chunked, none), compression, flow control.

Owns how a prepared response's body reaches the connection. The head is held until the first
body write or the end, so a small response goes out in one ``transport.write``. ``drain()``
flushes the held head and waits while the transport's buffer is over its high-water mark;
``FileResponse`` calls it before handing the socket to ``loop.sendfile`` and
``note_sendfile(count)`` after. Imports ``core.http`` and ``core.server``.
"""

from __future__ import annotations

import zlib
from typing import Any, Final

from ..http.serialize import LAST_CHUNK, chunk
from ..server.protocol import HttpProtocol

__all__ = ["PayloadWriter"]

_SMALL: Final = 16 * 1024


class PayloadWriter:
    """Writes one response's body; returned by ``StreamResponse.prepare``."""

    __slots__ = (
        "_body_sent",
        "_chunked",
        "_compress",
        "_eof",
        "_head",
        "_no_body",
        "buffer_size",
        "length",
        "output_size",
        "protocol",
    )

    def __init__(
        self,
        protocol: HttpProtocol | Any,  # Any: a test's stand-in, see BaseRequest
        head: bytes,
        *,
        chunked: bool = False,
        no_body: bool = False,
        length: int | None = None,
    ) -> None:
        self.protocol = protocol
        self._head: bytes | None = head
        self._chunked = chunked
        self._no_body = no_body
        self._compress: zlib._Compress | None = None
        self._eof = False
        self.length = length
        self.buffer_size = 0
        self.output_size = 0
        self._body_sent = 0

    @property
    def transport(self) -> object:
        return self.protocol.transport

    def enable_compression(self, encoding: str = "deflate", strategy: int | None = None) -> None:
        wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        self._compress = zlib.compressobj(
            wbits=wbits, strategy=zlib.Z_DEFAULT_STRATEGY if strategy is None else strategy
        )

    def enable_chunking(self) -> None:
        self._chunked = True

    def _clip(self, data: bytes) -> bytes:
        """With a declared Content-Length, bytes beyond it are dropped, never sent: they
        would be read as the start of the next response."""
        room = self.length - self._body_sent  # type: ignore[operator]  # checked by callers
        if len(data) > room:
            data = data[: max(room, 0)]
        self._body_sent += len(data)
        return data

    def _send(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self.protocol.head_sent = True
            self.output_size += len(head)
            if not data:
                self.protocol.write(head)
                return
            if len(data) <= _SMALL:
                self.protocol.write(head + data)
            else:
                self.protocol.write(head)
                self.protocol.write(data)
        elif data:
            self.protocol.write(data)
        self.output_size += len(data)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._eof:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data:
            return
        self.buffer_size += len(data)
        if self._no_body:
            return
        payload = bytes(data)
        if self._compress is not None:
            payload = self._compress.compress(payload)
            if not payload:
                return
        if self._chunked:
            payload = chunk(payload)
        elif self.length is not None:
            payload = self._clip(payload)
        self._send(payload)
        if self.protocol.write_paused:
            await self.protocol.drain()

    async def write_eof(self, data: bytes = b"") -> None:
        if self._eof:
            return
        if data:
            self.buffer_size += len(data)
        if self._no_body:
            self._eof = True
            self._send(b"")
            return
        payload = bytes(data)
        if self._compress is not None:
            payload = self._compress.compress(payload) + self._compress.flush()
        if self._chunked:
            payload = (chunk(payload) if payload else b"") + LAST_CHUNK
        elif self.length is not None:
            payload = self._clip(payload)
            if self._body_sent < self.length:
                # Shorter than declared: only closing the connection tells the client.
                self.protocol.force_close()
        self._eof = True
        self._send(payload)
        if self.protocol.write_paused:
            await self.protocol.drain()

    async def drain(self) -> None:
        if self._head is not None:
            self._send(b"")
        await self.protocol.drain()

    def note_sendfile(self, count: int) -> None:
        """Account for ``count`` body bytes sent by ``loop.sendfile`` outside this writer."""
        self.buffer_size += count
        self.output_size += count
        self._body_sent += count

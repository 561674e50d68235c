"""The request body stream: aiohttp's ``StreamReader`` API over bytes fed by the protocol.

Owns body buffering, its flow control (reading from the socket pauses while more than
``read_buffer_high_bytes`` wait unread), the body idle timeout, and the lazy ``100 Continue``
(sent on the first read, RFC 9110 §10.1.1). Imports ``core.http`` errors only.

Memory is bounded by the bytes buffered plus a fixed overhead per piece, and pieces are not
tiny: a piece shorter than ``COALESCE_BYTES`` (one byte of a chunked body, say) is appended to a
``bytearray`` tail of up to ``COALESCE_MAX_BYTES`` rather than kept as an object of its own, so
a body sent as 1-byte chunks costs about its size, not ~40 times it. Each piece is also charged
``PIECE_OVERHEAD_BYTES`` against the flow-control high-water mark.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable
from typing import Final, Protocol

from ..http.errors import RequestTimeout

__all__ = [
    "COALESCE_BYTES",
    "EMPTY_PAYLOAD",
    "PIECE_OVERHEAD_BYTES",
    "EmptyStreamReader",
    "EofStream",
    "FlowControl",
    "StreamReader",
]


class EofStream(Exception):
    """Raised by ``readchunk``-style consumers at the end of a stream."""


class FlowControl(Protocol):
    """What a stream needs from its connection."""

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


DEFAULT_LINE_LIMIT: Final = 2**16
# Pieces shorter than this are copied into a shared bytearray tail (up to COALESCE_MAX_BYTES).
COALESCE_BYTES: Final = 1024
COALESCE_MAX_BYTES: Final = 64 * 1024
# What one buffered piece costs beyond its bytes (object header, deque slot), rounded up;
# charged against the flow-control limit.
PIECE_OVERHEAD_BYTES: Final = 64


class StreamReader:
    """Body bytes of one request, in order, with aiohttp's reading methods."""

    __slots__ = (
        "_buffer",
        "_eof",
        "_eof_callbacks",
        "_exception",
        "_expected",
        "_high",
        "_idle_timeout",
        "_limit",
        "_loop",
        "_low",
        "_on_first_read",
        "_paused",
        "_protocol",
        "_size",
        "_timer",
        "_waiter",
        "total_bytes",
    )

    def __init__(
        self,
        protocol: FlowControl,
        limit: int = DEFAULT_LINE_LIMIT,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        high_water: int = 1 << 20,
        idle_timeout_s: float | None = None,
        on_first_read: Callable[[], None] | None = None,
        expected_bytes: int | None = None,
    ) -> None:
        self._protocol = protocol
        self._expected = expected_bytes  # the declared Content-Length; None: chunked/unknown
        self._limit = limit
        self._loop = loop if loop is not None else asyncio.get_event_loop()
        self._buffer: collections.deque[bytes | bytearray] = collections.deque()
        self._size = 0
        self._eof = False
        self._exception: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._eof_callbacks: list[Callable[[], None]] = []
        self._high = high_water
        self._low = high_water // 4
        self._paused = False
        self._idle_timeout = idle_timeout_s
        self._on_first_read = on_first_read
        self.total_bytes = 0

    def __repr__(self) -> str:
        state = "eof" if self._eof else f"{self._size} bytes"
        return f"<StreamReader {state}>"

    # -- producer side (the protocol) -----------------------------------------------------

    def feed_data(self, data: bytes) -> None:
        n = len(data)
        if not n:
            return
        buffer = self._buffer
        if n < COALESCE_BYTES:
            tail = buffer[-1] if buffer else None
            if type(tail) is bytearray and len(tail) + n <= COALESCE_MAX_BYTES:
                tail += data
            else:
                buffer.append(bytearray(data))
        else:
            buffer.append(data)
        self._size += n
        self.total_bytes += n
        self._wake()
        if not self._paused and self._size + len(buffer) * PIECE_OVERHEAD_BYTES > self._high:
            self._paused = True
            self._protocol.pause_reading()

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()
        callbacks, self._eof_callbacks = self._eof_callbacks, []
        for callback in callbacks:
            callback()

    def set_exception(self, exc: BaseException) -> None:
        self._exception = exc
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            self._cancel_timer()
            if not waiter.done():
                waiter.set_exception(exc)

    def on_eof(self, callback: Callable[[], None]) -> None:
        if self._eof:
            callback()
        else:
            self._eof_callbacks.append(callback)

    @property
    def needs_continue(self) -> bool:
        return self._on_first_read is not None

    def continue_sent(self) -> None:
        """The ``100 Continue`` went out some other way; don't send it on first read."""
        self._on_first_read = None

    def unread_beyond(self, bound: int) -> bool:
        """Whether more than ``bound`` bytes of the body are buffered or still to come (a body
        of unknown length that has not ended counts as more)."""
        if self._eof:
            return False
        if self._expected is None:
            return True
        return self._expected - self.total_bytes + self._size > bound

    def discard(self) -> int:
        """Drop what is buffered (the handler is done); return how many bytes that was."""
        dropped = self._size
        self._buffer.clear()
        self._size = 0
        self._resume_if_low()
        return dropped

    # -- consumer side (handlers) ---------------------------------------------------------

    def exception(self) -> BaseException | None:
        return self._exception

    def at_eof(self) -> bool:
        return self._eof and not self._buffer

    def get_read_buffer_limits(self) -> tuple[int, int]:
        """``(low, high)``: reading resumes below ``low`` bytes buffered, pauses above
        ``high`` (aiohttp's method; forkloop's values come from ``read_buffer_high_bytes``)."""
        return (self._low, self._high)

    def is_eof(self) -> bool:
        return self._eof

    async def wait_eof(self) -> None:
        while not self._eof:
            await self._wait()

    async def read(self, n: int = -1) -> bytes:
        if self._exception is not None:
            raise self._exception
        if n < 0:
            while not self._eof:
                await self._wait()
            return self._take(self._size)
        if n == 0:
            return b""
        while not self._buffer and not self._eof:
            await self._wait()
        return self._take(min(n, self._size))

    async def readany(self) -> bytes:
        if self._exception is not None:
            raise self._exception
        while not self._buffer and not self._eof:
            await self._wait()
        return self._take(self._size)

    async def readchunk(self) -> tuple[bytes, bool]:
        """The next buffered piece as fed, and False (chunk boundaries are not kept)."""
        if self._exception is not None:
            raise self._exception
        while not self._buffer and not self._eof:
            await self._wait()
        if not self._buffer:
            return b"", False
        data = self._buffer.popleft()
        self._size -= len(data)
        self._resume_if_low()
        return bytes(data), False

    async def readexactly(self, n: int) -> bytes:
        if self._exception is not None:
            raise self._exception
        while self._size < n and not self._eof:
            await self._wait()
        if self._size < n:
            partial = self._take(self._size)
            raise asyncio.IncompleteReadError(partial, n)
        return self._take(n)

    async def readline(self) -> bytes:
        return await self.readuntil(b"\n")

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        if not separator:
            raise ValueError("separator must not be empty")
        if self._exception is not None:
            raise self._exception
        while True:
            joined = self._peek_all()
            index = joined.find(separator)
            if index >= 0:
                end = index + len(separator)
                if end > self._limit:
                    raise ValueError("Chunk too big")
                return self._take(end)
            if self._size > self._limit:
                raise ValueError("Chunk too big")
            if self._eof:
                return self._take(self._size)
            await self._wait()

    def read_nowait(self, n: int = -1) -> bytes:
        if self._exception is not None:
            raise self._exception
        if self._waiter is not None:
            raise RuntimeError("Called while some coroutine is waiting for incoming data.")
        return self._take(self._size if n < 0 else min(n, self._size))

    def unread_data(self, data: bytes) -> None:
        if data:
            self._buffer.appendleft(data)
            self._size += len(data)

    async def iter_chunked(self, n: int) -> AsyncIterator[bytes]:
        while True:
            data = await self.read(n)
            if not data:
                return
            yield data

    async def iter_any(self) -> AsyncIterator[bytes]:
        while True:
            data = await self.readany()
            if not data:
                return
            yield data

    async def iter_chunks(self) -> AsyncIterator[tuple[bytes, bool]]:
        while True:
            data, end = await self.readchunk()
            if not data:
                return
            yield data, end

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[bytes]:
        while True:
            line = await self.readline()
            if not line:
                return
            yield line

    # -- internals ------------------------------------------------------------------------

    def _peek_all(self) -> bytes | bytearray:
        if len(self._buffer) > 1:
            joined = b"".join(self._buffer)
            self._buffer.clear()
            self._buffer.append(joined)
        return self._buffer[0] if self._buffer else b""

    def _take(self, n: int) -> bytes:
        if n <= 0:
            return b""
        buffer = self._buffer
        first = buffer[0]
        if len(first) == n:
            buffer.popleft()
            data = first if type(first) is bytes else bytes(first)
        elif len(first) > n:
            buffer[0] = first[n:]
            data = bytes(first[:n])
        else:
            parts = []
            remaining = n
            while remaining:
                piece = buffer.popleft()
                if len(piece) > remaining:
                    buffer.appendleft(piece[remaining:])
                    piece = piece[:remaining]
                parts.append(piece)
                remaining -= len(piece)
            data = b"".join(parts)
        self._size -= n
        self._resume_if_low()
        return data

    def _resume_if_low(self) -> None:
        if self._paused and self._size + len(self._buffer) * PIECE_OVERHEAD_BYTES < self._low:
            self._paused = False
            self._protocol.resume_reading()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            self._cancel_timer()
            if not waiter.done():
                waiter.set_result(None)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_idle_timeout(self) -> None:
        self._timer = None
        self.set_exception(RequestTimeout("request body idle timeout"))

    async def _wait(self) -> None:
        if self._exception is not None:
            raise self._exception
        if self._waiter is not None:
            raise RuntimeError("another coroutine is already waiting for this body")
        if self._on_first_read is not None:
            send_continue, self._on_first_read = self._on_first_read, None
            send_continue()
        self._waiter = waiter = self._loop.create_future()
        if self._idle_timeout is not None:
            self._timer = self._loop.call_later(self._idle_timeout, self._on_idle_timeout)
        try:
            await waiter
        finally:
            self._waiter = None
            self._cancel_timer()


class EmptyStreamReader(StreamReader):
    """The body of a request that has none."""

    __slots__ = ()

    def __init__(self) -> None:  # no loop needed: it never waits
        self._buffer = collections.deque()
        self._size = 0
        self._eof = True
        self._exception = None
        self._waiter = None
        self._timer = None
        self._eof_callbacks = []
        self._on_first_read = None
        self._paused = False
        self.total_bytes = 0

    def __repr__(self) -> str:
        return "<EmptyStreamReader>"


EMPTY_PAYLOAD: Final = EmptyStreamReader()

"""The per-message engine of a server WebSocket: receive queue, waiter, cork, send, flow control.

Owns what every message of an open WebSocket goes through, compiled with mypyc with the
reader and writer it drives: the bytes callback the connection calls (``on_data``), the queue
of received messages and its byte count (reading pauses above ``read_high`` and resumes at a
quarter of it), the one future a waiting receiver sleeps on, the batching of answers while
more received messages wait (``cork``), framing and writing a data message, and the wait on
the transport's backpressure. ``forkloop.core.web.ws.WebSocketResponse`` owns one channel and
keeps everything else (handshake, close handshake, heartbeat, timeouts, errors, observers);
the channel calls back into it for those through the ``on_*`` callables it is given.

No asyncio is imported: the loop, the transport and the connection (its ``write_paused``,
``drain()``, ``pause_reading()``, ``resume_reading()``, and ``message_waiter()``/``wake_waiter()``:
a receiver sleeps on the connection's message future, and a message wakes it through the
connection, which steps a handler parked on it right there instead of waking its task) are
handed in by the adapter.
Imports nothing of ours but the codec.
"""

from __future__ import annotations

import collections
import types
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Final

from .models import WSMessage, WSMsgType
from .reader import FrameReader
from .writer import FrameWriter

__all__ = ["CORK_MAX_BYTES", "Channel", "compress_flag", "sleep_on", "text_as_bytes"]

_TEXT: Final = WSMsgType.TEXT
_BINARY: Final = WSMsgType.BINARY
_CLOSE: Final = WSMsgType.CLOSE
_CLOSING: Final = WSMsgType.CLOSING
_CLOSED: Final = WSMsgType.CLOSED
_PING: Final = WSMsgType.PING
_PONG: Final = WSMsgType.PONG
# At most this many bytes of answers wait in a batch (see Channel.cork).
CORK_MAX_BYTES: Final = 64 * 1024


def text_as_bytes(msg: WSMessage) -> WSMessage:
    """A TEXT message with its data as UTF-8 bytes (``decode_text=False``, as aiohttp)."""
    # The reader still validated the UTF-8 (RFC 6455 section 8.1), unlike aiohttp's.
    return WSMessage(_TEXT, msg[1].encode("utf-8"), msg[2])


def compress_flag(compress: object) -> bool | None:
    """aiohttp's per-message ``compress`` (a window size or None) as on/off/default."""
    if compress is None:
        return None
    return bool(compress)


def _ignore_error(error: Any) -> None:
    return None


class Channel:
    """The hot state and per-message steps of one server WebSocket (see the module)."""

    def __init__(self, *, decode_text: bool = True, receive_timeout: bool = False) -> None:
        self.decode_text = decode_text
        # A receive timeout is set: ``async for`` waits through the adapter's receive().
        self.timed = receive_timeout
        self.reader: FrameReader | None = None
        self.writer: FrameWriter | None = None
        self.transport: Any = None
        self.conn: Any = None
        self.loop: Any = None
        self.queue: collections.deque[WSMessage] = collections.deque()
        self.queued_bytes = 0
        self.read_high = 1024 * 1024
        self.read_paused = False
        self.waiter: Any = None  # the future a receiver waits on, or None
        self.closing = False  # the peer's close arrived
        self.closed = False  # our close went out, or the connection is gone
        self.more = False  # messages remain queued after the one just received
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.uncork_scheduled = False
        self.autoping = True
        # Observers of messages: ``observe(direction)`` is called per message when set.
        self.observed = False
        self.observe: Callable[[str], None] = _ignore_str
        # The adapter's handlers of what is not a data message, of errors, and of liveness.
        self.alive: Callable[[], None] | None = None  # bytes arrived (heartbeat on)
        self.on_control: Callable[[WSMessage], None] = _ignore_messages_one
        self.on_close_frame: Callable[[WSMessage], None] = _ignore_messages_one
        self.on_error: Callable[[Any], None] = _ignore_error
        self.receive: Callable[[], Awaitable[WSMessage]] | None = None
        # Bound methods looked up once (a call through them skips the method lookup).
        self.append: Callable[[WSMessage], None] = self.queue.append
        self.popleft: Callable[[], WSMessage] = self.queue.popleft
        self.is_closing: Callable[[], bool] = _closing
        self.send: Callable[[bytes], None] = _no_transport
        # The connection's message future and its waker (HttpProtocol.message_waiter() and
        # wake_waiter(): a handler parked on it takes its next step inside on_data).
        self.message_waiter: Callable[[], Any] = _no_loop
        self.wake_waiter: Callable[[Any], None] = _set_result

    def attach(
        self,
        *,
        loop: Any,
        transport: Any,
        conn: Any,
        reader: FrameReader,
        writer: FrameWriter,
        read_high: int,
    ) -> None:
        """Open: hand the channel its loop, transport, connection, reader and writer."""
        self.loop = loop
        self.transport = transport
        self.conn = conn
        self.reader = reader
        self.writer = writer
        self.read_high = read_high
        self.is_closing = transport.is_closing
        self.send = transport.write
        self.message_waiter = conn.message_waiter
        self.wake_waiter = conn.wake_waiter

    # -- receiving ----------------------------------------------------------------------

    def on_data(self, data: bytes) -> None:
        """The connection's bytes callback: parse, queue, wake the receiver."""
        alive = self.alive
        if alive is not None:
            alive()
        reader = self.reader
        if reader is None:  # pragma: no cover - switched only after the reader exists
            return
        messages = reader.feed(data)
        if messages:
            if len(messages) == 1 and not self.observed and not self.closed:
                # The common case: one data message and nobody observing.
                msg = messages[0]
                t = msg[0]
                if t is _TEXT or t is _BINARY:
                    self.append(msg)
                    size = self.queued_bytes + len(msg[1])
                    self.queued_bytes = size
                    if size > self.read_high:
                        self.pause_reading()
                    waiter = self.waiter
                    if waiter is not None and not waiter.done():
                        # Through the connection: a handler parked on it takes its next
                        # step right here (HttpProtocol.wake_waiter).
                        self.wake_waiter(waiter)
                else:
                    self.deliver(messages)
            else:
                self.deliver(messages)
        error = reader.error
        if error is not None:
            self.on_error(error)

    def deliver(self, messages: list[WSMessage]) -> None:
        """Queue data messages (dropped once our close went out), answer or queue pings and
        pongs, hand close frames to the adapter; then wake the receiver."""
        queue = self.queue
        autoping = self.autoping
        size = self.queued_bytes
        for msg in messages:
            t = msg[0]
            if t is _TEXT or t is _BINARY:
                if self.closed:
                    continue  # our close went out: later data is discarded (RFC 6455 §5.5.1)
                size += len(msg[1])
                queue.append(msg)
                if self.observed:
                    self.observe("received")
            elif t is _PING:
                if autoping:
                    self.on_control(msg)
                else:
                    queue.append(msg)
            elif t is _PONG:
                if not autoping:
                    queue.append(msg)
            else:
                self.on_close_frame(msg)
        self.queued_bytes = size
        if size > self.read_high:
            self.pause_reading()
        waiter = self.waiter
        if waiter is not None and queue and not waiter.done():
            waiter.set_result(None)

    def wake(self) -> None:
        """Complete the waiting receiver's future, if any."""
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pause_reading(self) -> None:
        if not self.read_paused and self.conn is not None:
            self.read_paused = True
            self.conn.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            if self.conn is not None:
                self.conn.resume_reading()

    def taken(self, msg: WSMessage) -> WSMessage:
        """A data message left the queue: resume reading below the low mark; the message as
        the handler gets it (a TEXT message's bytes with ``decode_text=False``)."""
        self.queued_bytes -= len(msg[1])
        if self.read_paused and self.queued_bytes <= self.read_high >> 2:
            self.resume_reading()
        if msg[0] is _TEXT and not self.decode_text:
            return text_as_bytes(msg)
        return msg

    def __aiter__(self) -> Channel:
        return self

    async def __anext__(self) -> WSMessage:
        """``async for``'s step: the next data message; StopAsyncIteration at the close."""
        queue = self.queue
        while True:
            if queue:
                msg = queue[0]
                t = msg[0]
                if t is _TEXT or t is _BINARY:
                    self.popleft()
                    self.more = bool(queue)
                    return self.taken(msg)
            elif (
                self.waiter is None
                and not self.timed
                and self.loop is not None
                and not (self.closed or self.closing)
            ):
                # Nothing queued on an open socket: wait here rather than through receive().
                waiter = self.message_waiter()
                self.waiter = waiter
                try:
                    await sleep_on(waiter)
                finally:
                    self.waiter = None
                continue
            receive = self.receive
            if receive is None:
                raise RuntimeError("Call .prepare() first")
            got = await receive()
            t = got[0]
            if t is _CLOSE or t is _CLOSING or t is _CLOSED:
                raise StopAsyncIteration
            return got

    async def sleep(self, waiter: Any) -> None:
        """``sleep_on(waiter)`` for the adapter's ``receive()`` (interpreted code awaits a
        coroutine, not the compiled generator)."""
        await sleep_on(waiter)

    # -- sending ------------------------------------------------------------------------

    def check_open(self) -> FrameWriter:
        writer = self.writer
        if writer is None:
            raise RuntimeError("Call .prepare() first")
        if self.closed:
            raise ConnectionResetError("Cannot write to closing transport")
        return writer

    def write(self, frame: bytes) -> None:
        """Write ``frame``, or add it to the batch while received messages wait."""
        if self.transport is None or self.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        if self.more or self.pending:
            self.cork(frame)
        else:
            self.send(frame)

    def cork(self, frame: bytes) -> None:
        """Batch frames while the handler still has queued messages to answer.

        A client that pipelines gets its answers in one ``write`` per batch instead of one
        per message; the batch goes out when the queue is empty, past ``CORK_MAX_BYTES``,
        or at the latest on the next loop iteration.
        """
        self.pending.append(frame)
        self.pending_size += len(frame)
        if not self.more or self.pending_size > CORK_MAX_BYTES:
            self.uncork()
        elif not self.uncork_scheduled and self.loop is not None:
            self.uncork_scheduled = True
            self.loop.call_soon(self.uncork)

    def uncork(self) -> None:
        """Write the batch now (one ``write``)."""
        self.uncork_scheduled = False
        pending = self.pending
        if not pending:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        self.pending_size = 0
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    async def drain(self) -> None:
        """Backpressure: wait while the transport's buffer is over its high-water mark."""
        conn = self.conn
        if conn is not None and conn.write_paused:  # the engine's flag, as PayloadWriter uses
            await conn.drain()

    def put_message(self, opcode: int, payload: bytes, compress: object) -> bool:
        """Frame and write (or batch) a TEXT (1) or BINARY (2) message; whether the
        sender must wait for the transport to drain."""
        writer = self.check_open()
        self.write(writer.message(opcode, payload, compress_flag(compress)))
        if self.observed:
            self.observe("sent")
        conn = self.conn
        return conn is not None and bool(conn.write_paused)

    async def send_str(self, data: object, compress: object = None) -> None:
        """``WebSocketResponse.send_str``: ``data`` must be a str."""
        if not isinstance(data, str):
            raise TypeError(f"data argument must be str ({type(data)!r})")
        if self.put_message(1, data.encode("utf-8"), compress):
            await self.conn.drain()

    async def send_bytes(self, data: object, compress: object = None) -> None:
        """``WebSocketResponse.send_bytes``: ``data`` must be bytes-like."""
        if isinstance(data, bytes):
            payload = data
        elif isinstance(data, (bytearray, memoryview)):
            payload = bytes(data)
        else:
            raise TypeError(f"data argument must be byte-ish ({type(data)!r})")
        if self.put_message(2, payload, compress):
            await self.conn.drain()


def _no_loop() -> Any:
    raise RuntimeError("Call .prepare() first")


def _closing() -> bool:
    return True


@types.coroutine
def sleep_on(waiter: Any) -> Generator[Any, None, None]:
    """Sleep until ``waiter`` (a future) completes or the one who drives us resumes us anyway
    (``HttpProtocol.wake_waiter`` steps a parked handler without completing it): either way
    the caller looks at the queue again. Unlike ``await waiter``, it neither checks that the
    future is done nor reads its result; a cancellation is raised as usual."""
    waiter._asyncio_future_blocking = True  # as Future.__await__ does before yielding itself
    yield waiter


def _set_result(waiter: Any) -> None:
    waiter.set_result(None)


def _no_transport(data: bytes) -> None:
    raise ConnectionResetError("Cannot write to closing transport")


def _ignore_str(direction: str) -> None:
    return None


def _ignore_messages_one(msg: WSMessage) -> None:
    return None

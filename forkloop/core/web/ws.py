"""``WebSocketResponse`` with aiohttp's API: the asyncio adapter over our RFC 6455 codec.

Owns a WebSocket connection's life after the handshake: the 101 response (a ``StreamResponse``,
so ``on_response_prepare`` fires), the switch of the connection to our frame reader, the
receive queue and its flow control, sending with backpressure, ping/pong and heartbeat, the
closing handshake, and close 1001 when the server shuts down. The codec
(``forkloop.core.websocket``) does all parsing and framing; this module only moves bytes and
messages. Imports ``core.websocket``, ``core.hooks``, ``core.server`` and ``core.web``.

Theory of operation. The per-message work lives in a ``Channel``
(``forkloop.core.websocket.channel``, compiled with mypyc): after ``prepare()`` every received
byte goes to its ``on_data`` (the protocol's ``switch_protocol``), which runs the reader, queues
data messages and wakes the receiver; pings (``autoping``), close frames and protocol errors
come back here through the callbacks the response gives it. ``receive()`` pops the queue
without suspending when a message is waiting; otherwise it waits on one future that
``on_data`` completes; ``async for`` and ``send_str``/``send_bytes`` are the channel's
compiled coroutines. Above ``read_buffer_high_bytes`` of unread messages the socket stops
being read until ``receive()`` catches up. ``send_*`` frames the message, writes it, and
waits on ``drain()`` only while the transport's buffer is above its high-water mark. States:
open; ``closing`` (the peer's close arrived); ``closed`` (our close went out, or the
connection is gone); both flags live on the channel. A protocol violation sends close with
the reader's code (1002/1007/1009), half-closes, and ``receive()`` returns an ERROR message;
messages that arrived before the violation are answered first. Answers sent while more
received messages wait in the queue are batched into one write (``Channel.cork``).
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from ..hooks import Observers
from ..server.protocol import HttpProtocol
from ..websocket import (
    FrameReader,
    FrameWriter,
    HandshakeError,
    WebSocketError,
    WSCloseCode,
    WSMessage,
    WSMsgType,
    can_handshake,
    server_handshake,
)
from ..websocket.channel import Channel
from .exceptions import HTTPBadRequest, HTTPException, HTTPMethodNotAllowed, HTTPUpgradeRequired
from .response import StreamResponse

if TYPE_CHECKING:
    from .request import BaseRequest
    from .writer import PayloadWriter

__all__ = [
    "WSCloseCode",
    "WSMessage",
    "WSMsgType",
    "WebSocketReady",
    "WebSocketResponse",
]

THRESHOLD_CONNLOST_ACCESS: Final = 5
_TEXT: Final = WSMsgType.TEXT
_BINARY: Final = WSMsgType.BINARY
_CLOSE: Final = WSMsgType.CLOSE
_ERROR: Final = WSMsgType.ERROR
# The 2-byte heads of unmasked, final text frames of 0..125 bytes.
WS_CLOSED_MESSAGE: Final = WSMessage(WSMsgType.CLOSED, None, None)
WS_CLOSING_MESSAGE: Final = WSMessage(WSMsgType.CLOSING, None, None)


class WebSocketReady(NamedTuple):
    """``can_prepare()``'s answer: truthy when the request is a valid WebSocket upgrade."""

    ok: bool
    protocol: str | None

    def __bool__(self) -> bool:
        return self.ok


class PongTimeoutError(asyncio.TimeoutError):
    """The peer answered no heartbeat ping in time."""


def _observers(request: BaseRequest) -> Observers | None:
    """The observers watching ``request``'s server, or None when nobody listens."""
    found = request.protocol.observers
    if not isinstance(found, Observers):
        return None
    # Observers without WebSocket hooks (request metrics only) cost the sockets nothing.
    if found.ws_opened or found.ws_closed or found.ws_message:
        return found
    return None


def _echo_code(code: int) -> int:
    """The code to answer a peer's close with (RFC 6455 section 5.5.1: echo it)."""
    return WSCloseCode.OK if code == WSCloseCode.NO_STATUS_RECEIVED else code


class WebSocketResponse(StreamResponse):
    """The server side of a WebSocket: ``prepare()`` it, then receive and send messages."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        receive_timeout: float | None = None,
        autoclose: bool = True,
        autoping: bool = True,
        heartbeat: float | None = None,
        protocols: Iterable[str] = (),
        compress: bool = True,
        max_msg_size: int = 4 * 1024 * 1024,
        writer_limit: int = 64 * 1024,
        decode_text: bool = True,
    ) -> None:
        super().__init__(status=101)
        self._decode_text = decode_text
        self._protocols = tuple(protocols)
        self._timeout = timeout
        self._receive_timeout = receive_timeout
        self._autoclose = autoclose
        self._autoping = autoping
        self._heartbeat = heartbeat
        self._compress_wanted = compress
        self._max_msg_size = max_msg_size
        self._writer_limit = writer_limit
        self._ws_protocol: str | None = None
        self._compress = False
        # The hot state (queue, waiter, open/closing/closed, batching) and the per-message
        # steps live in the compiled channel; the response keeps the rest.
        self._ch = Channel(decode_text=decode_text, receive_timeout=receive_timeout is not None)
        self._ch.autoping = autoping
        # A class that keeps our send_str/send_bytes gets the channel's own methods, bound
        # once per response: a call then skips the interpreted forwarder below (about 900
        # instructions per message). A subclass overriding either keeps its own.
        cls = type(self)
        if cls.send_str is WebSocketResponse.send_str:
            self.send_str = self._ch.send_str  # type: ignore[method-assign]
        if cls.send_bytes is WebSocketResponse.send_bytes:
            self.send_bytes = self._ch.send_bytes  # type: ignore[method-assign]
        self._conn: HttpProtocol | None = None
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: FrameReader | None = None
        self._writer: FrameWriter | None = None
        self._returned_writer: PayloadWriter | None = None
        self._request: BaseRequest | None = None
        self._obs: Observers | None = None
        self._queue: collections.deque[WSMessage] = self._ch.queue
        self._close_waiter: asyncio.Future[int | None] | None = None
        self._eof = False
        self._close_code: int | None = None
        self._exception: BaseException | None = None
        self._conn_lost = 0
        self._heartbeat_handle: asyncio.TimerHandle | None = None
        self._last_data = 0.0  # loop time of the last bytes received (heartbeat only)
        self._pong_handle: asyncio.TimerHandle | None = None
        self._linger_handle: asyncio.TimerHandle | None = None
        self._failure: WebSocketError | None = None  # a close deferred until answers went out
        self._failure_handle: asyncio.TimerHandle | None = None
        self._opened = False
        # perf_counter() reading once the 101 went out: the server times the request to it,
        # not to the end of the session (core/web/lowlevel.py).
        self._switched_at = 0.0

    # -- the handshake ------------------------------------------------------------------

    def _handshake(self, request: BaseRequest) -> Any:
        try:
            return server_handshake(
                request.method,
                request.headers.items(),
                protocols=self._protocols,
                compress=self._compress_wanted,
            )
        except HandshakeError as exc:
            raise _http_error(exc, request.method) from None

    def can_prepare(self, request: BaseRequest) -> WebSocketReady:
        """Whether ``request`` is a WebSocket upgrade this response could accept."""
        if self._writer is not None:
            raise RuntimeError("Already started")
        if not can_handshake(request.method, request.headers.items()):
            return WebSocketReady(False, None)
        return WebSocketReady(True, self._handshake(request).protocol)

    async def prepare(self, request: BaseRequest) -> PayloadWriter | None:
        """Validate the handshake, send the 101, and switch the connection to WebSocket."""
        if self._returned_writer is not None:
            return self._returned_writer
        handshake = self._handshake(request)
        self.set_status(101)  # as aiohttp: whatever status was set before, the handshake is 101
        for name, value in handshake.headers:
            self.headers[name] = value
        self._ws_protocol = handshake.protocol
        writer = await super().prepare(request)
        if writer is None:  # pragma: no cover - StreamResponse returns None only after EOF
            raise RuntimeError("WebSocket response was already finished")
        await writer.drain()  # the 101 head goes out before any frame
        self._switched_at = perf_counter()
        conn = request.protocol
        transport = conn.transport
        if transport is None:
            raise ConnectionResetError("Connection lost before the WebSocket opened")
        self._returned_writer = writer
        self._request = request
        self._conn = conn
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        deflate = handshake.deflate
        self._reader = FrameReader(max_msg_size=self._max_msg_size, compress=deflate is not None)
        self._writer = FrameWriter(deflate=deflate)
        self._compress = deflate is not None
        self._obs = _observers(request)
        ch = self._ch
        ch.attach(
            loop=self._loop,
            transport=transport,
            conn=conn,
            reader=self._reader,
            writer=self._writer,
            read_high=conn.limits.read_buffer_high_bytes,
        )
        ch.on_control = self._answer_ping
        ch.on_close_frame = self._on_close_frame
        ch.on_error = self._fail
        ch.receive = self.receive
        if self._heartbeat is not None:
            ch.alive = self._note_alive
        if self._obs is not None:
            ch.observed = True
            ch.observe = self._observe_message
            for hook in self._obs.ws_opened:
                hook(request)
        self._opened = True
        conn.switch_protocol(ch.on_data, self._on_eof)
        self._reset_heartbeat()
        self._watch_shutdown()
        return writer

    # -- properties ---------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._ch.closed

    @property
    def close_code(self) -> int | None:
        return self._close_code

    @property
    def ws_protocol(self) -> str | None:
        return self._ws_protocol

    @property
    def compress(self) -> bool:
        return self._compress

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The transport's extra info (``peername``, ``sslcontext``...), or ``default``."""
        transport = self._transport
        if transport is None:
            return default
        return transport.get_extra_info(name, default)

    def exception(self) -> BaseException | None:
        return self._exception

    # -- receiving: the protocol's callbacks ---------------------------------------------

    def _answer_ping(self, msg: WSMessage) -> None:
        self._send_control(0xA, msg.data)

    def _observe_message(self, direction: str) -> None:
        obs = self._obs
        if obs is not None:
            for hook in obs.ws_message:
                hook(self._request, direction)

    def _on_close_frame(self, msg: WSMessage) -> None:
        if self._ch.closed:  # the reply to our close
            close_waiter = self._close_waiter
            if close_waiter is not None and not close_waiter.done():
                close_waiter.set_result(msg.data)
            else:
                self._close_code = msg.data
                self._close_transport()
        else:  # the peer starts the closing handshake
            self._ch.closing = True
            self._close_code = msg.data
            self._queue.append(msg)

    def _fail(self, exc: WebSocketError) -> None:
        """The peer broke the protocol: close with the error's code and tell ``receive()``."""
        self._exception = exc
        self._cancel_heartbeat()
        queue = self._queue
        answered_first = bool(queue)
        queue.append(WSMessage(_ERROR, exc, None))
        self._ch.wake()
        if self._ch.closed:
            self._close_transport()
            return
        self._close_code = exc.code
        if answered_first and self._loop is not None:
            # Messages that arrived before the violation are still queued: let the handler
            # answer them first; the close goes out when it reaches the ERROR message (or
            # after ``timeout`` if it stops reading).
            self._failure = exc
            self._failure_handle = self._loop.call_later(self._timeout, self._send_failure)
            return
        self._send_failure()

    def _send_failure(self) -> None:
        exc = self._failure or self._exception
        self._failure = None
        if self._failure_handle is not None:
            self._failure_handle.cancel()
            self._failure_handle = None
        if self._ch.closed or not isinstance(exc, WebSocketError):
            return
        self._ch.closed = True
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._ch.more = False
        self._ch.uncork()
        if self._writer is not None:
            reason = exc.message.encode()[:123].decode("utf-8", "ignore")
            transport.write(self._writer.close(exc.code, reason))
        # Half-close so the peer reads our close and closes first; give it a moment.
        if transport.can_write_eof():
            transport.write_eof()
        if self._loop is not None:
            self._linger_handle = self._loop.call_later(
                min(self._timeout, 2.0), self._close_transport
            )

    def _on_eof(self) -> None:
        """The peer closed the TCP connection (or it was lost)."""
        self._eof = True
        if not self._ch.closed:
            if self._ch.closing and self._close_code is not None:
                # The peer sent its close and then EOF: answer the close before we go.
                self._reply_close(self._close_code)
            elif self._close_code is None:
                self._close_code = WSCloseCode.ABNORMAL_CLOSURE
        self._ch.closed = True
        self._cancel_heartbeat()
        if self._linger_handle is not None:
            self._linger_handle.cancel()
            self._linger_handle = None
        if self._failure_handle is not None:
            self._failure_handle.cancel()
            self._failure_handle = None
        waiter = self._close_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._ch.wake()
        self._close_transport()
        if self._opened:
            self._opened = False
            if self._obs is not None:
                for hook in self._obs.ws_closed:
                    hook(self._request)

    def _reply_close(self, code: int) -> None:
        transport = self._transport
        writer = self._writer
        if transport is None or writer is None or transport.is_closing():
            return
        self._ch.more = False
        self._ch.uncork()
        transport.write(writer.close(_echo_code(code)))

    # -- receiving: the API ---------------------------------------------------------------

    async def receive(self, timeout: float | None = None) -> WSMessage:  # noqa: ASYNC109 - aiohttp's API
        """The next message; CLOSING/CLOSED once the connection is closing or closed."""
        queue = self._queue
        while True:
            if queue:
                msg = queue.popleft()
                self._ch.more = bool(queue)
                t = msg.type
                if t is _TEXT or t is _BINARY:
                    return self._ch.taken(msg)
                if t is _CLOSE:
                    if not self._ch.closed and self._autoclose:
                        await self.close(code=_echo_code(msg.data))
                elif t is _ERROR and self._failure is not None:
                    self._send_failure()
                return msg
            if self._reader is None:
                raise RuntimeError("Call .prepare() first")
            if self._ch.closed:
                self._conn_lost += 1
                if self._conn_lost >= THRESHOLD_CONNLOST_ACCESS:
                    raise RuntimeError("WebSocket connection is closed.")
                return WS_CLOSED_MESSAGE
            if self._ch.closing:
                return WS_CLOSING_MESSAGE
            await self._wait(timeout)

    async def _wait(self, timeout: float | None) -> None:  # noqa: ASYNC109 - aiohttp's API
        if self._ch.waiter is not None:
            raise RuntimeError("Concurrent call to receive() is not allowed")
        # The connection's message future (the channel raises before prepare()).
        waiter = self._ch.waiter = self._ch.message_waiter()
        if timeout is None:
            timeout = self._receive_timeout
        try:
            if timeout is None:
                await self._ch.sleep(waiter)
            else:
                async with asyncio.timeout(timeout):
                    await self._ch.sleep(waiter)
        finally:
            self._ch.waiter = None

    async def receive_str(self, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - aiohttp's API
        """The next TEXT message's data: ``str``, or ``bytes`` with ``decode_text=False``."""
        msg = await self.receive(timeout)
        if msg.type is not _TEXT:
            raise TypeError(f"Received message {msg.type}:{msg.data!r} is not WSMsgType.TEXT")
        return msg.data

    async def receive_bytes(self, *, timeout: float | None = None) -> bytes:  # noqa: ASYNC109 - aiohttp's API
        msg = await self.receive(timeout)
        if msg.type is not _BINARY:
            raise TypeError(f"Received message {msg.type}:{msg.data!r} is not WSMsgType.BINARY")
        return bytes(msg.data)

    async def receive_json(
        self,
        *,
        loads: Callable[[str], Any] = json.loads,
        timeout: float | None = None,  # noqa: ASYNC109 - aiohttp's API
    ) -> Any:
        data = await self.receive_str(timeout=timeout)
        return loads(data)

    def __aiter__(self) -> AsyncIterator[WSMessage]:
        if type(self).__anext__ is WebSocketResponse.__anext__:
            # ``async for`` steps the channel directly: its compiled ``__anext__`` is this
            # class's, without a Python call per message. A subclass's own is kept.
            return self._ch
        return self

    def __anext__(self) -> Awaitable[WSMessage]:
        # The channel's compiled coroutine: this is every message of an ``async for`` loop.
        return self._ch.__anext__()

    # -- sending ------------------------------------------------------------------------

    async def _drain(self) -> None:
        """Backpressure: wait while the transport's buffer is over its high-water mark."""
        conn = self._conn
        if conn is not None and conn.write_paused:  # the engine's flag, as PayloadWriter uses
            await conn.drain()

    def send_str(self, data: str, compress: int | bool | None = None) -> Coroutine[Any, Any, None]:
        """Send a TEXT message (a coroutine, as aiohttp's; the compiled channel's)."""
        return self._ch.send_str(data, compress)

    def send_bytes(
        self, data: bytes | bytearray | memoryview, compress: int | bool | None = None
    ) -> Coroutine[Any, Any, None]:
        """Send a BINARY message (a coroutine, as aiohttp's; the compiled channel's)."""
        return self._ch.send_bytes(data, compress)

    async def send_json(
        self,
        data: Any,
        compress: int | bool | None = None,
        *,
        dumps: Callable[[Any], str] = json.dumps,
    ) -> None:
        await self.send_str(dumps(data), compress=compress)

    async def send_frame(
        self, message: bytes, opcode: WSMsgType | int, compress: int | bool | None = None
    ) -> None:
        """Send one whole message or control frame with ``opcode``."""
        writer = self._ch.check_open()
        op = int(opcode)
        if op in (1, 2):
            if self._ch.put_message(op, bytes(message), compress):
                await self._drain()
            return
        if op in (9, 10):
            self._ch.write(writer.control(op, bytes(message)))
            await self._drain()
            return
        elif op == 8:
            payload = bytes(message)
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else WSCloseCode.OK
            await self.close(code=code, message=payload[2:])
            return
        else:
            raise ValueError(f"cannot send a frame with opcode {op}")

    async def ping(self, message: bytes | str = b"") -> None:
        writer = self._ch.check_open()
        payload = message.encode("utf-8") if isinstance(message, str) else bytes(message)
        self._ch.write(writer.control(0x9, payload))
        await self._drain()

    async def pong(self, message: bytes | str = b"") -> None:
        writer = self._ch.check_open()
        payload = message.encode("utf-8") if isinstance(message, str) else bytes(message)
        self._ch.write(writer.control(0xA, payload))
        await self._drain()

    def _send_control(self, opcode: int, payload: bytes) -> None:
        """Answer a ping from the data callback (no await): bounded by pausing the reads."""
        writer = self._writer
        transport = self._transport
        if writer is None or transport is None or transport.is_closing() or self._ch.closed:
            return
        transport.write(writer.control(opcode, payload))
        conn = self._conn
        if conn is not None and conn.write_paused and not self._ch.read_paused:
            # The peer pings faster than it reads our pongs: stop reading until they drain.
            self._ch.pause_reading()
            if self._loop is not None:
                self._loop.create_task(self._resume_after_drain(conn))

    async def _resume_after_drain(self, conn: HttpProtocol) -> None:
        try:
            await conn.drain()
        except ConnectionError:
            return
        ch = self._ch
        if ch.queued_bytes <= ch.read_high >> 2:
            ch.resume_reading()

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        raise RuntimeError("Cannot call .write() for websocket")

    async def write_eof(self, data: bytes = b"") -> None:
        """The server calls this when the handler returns: close if still open."""
        if self._eof_sent:
            return
        if self._writer is None:
            raise RuntimeError("Response has not been started")
        await self.close()
        self._eof_sent = True

    # -- closing ------------------------------------------------------------------------

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes | str = b"", drain: bool = True
    ) -> bool:
        """Start (or answer) the closing handshake; True if this call closed the socket."""
        writer = self._writer
        if writer is None:
            raise RuntimeError("Call .prepare() first")
        self._cancel_heartbeat()
        if self._ch.waiter is not None and not self._ch.closed and not self._ch.waiter.done():
            # Break a receive() waiting in another task (aiohttp returns CLOSING there).
            self._queue.append(WS_CLOSING_MESSAGE)
            self._ch.waiter.set_result(None)
        if self._ch.closed:
            return False
        frame = writer.close(code, message)
        self._ch.closed = True
        self._ch.more = False
        try:
            self._ch.write(frame)
            if drain and self._conn is not None:
                await self._conn.drain()
        except asyncio.CancelledError:
            self._close_code = WSCloseCode.ABNORMAL_CLOSURE
            self._close_transport()
            raise
        except ConnectionError as exc:
            self._exception = exc
            self._close_code = WSCloseCode.ABNORMAL_CLOSURE
            self._close_transport()
            return True
        if self._ch.closing or self._eof:
            self._close_transport()
            return True
        return await self._await_close_reply()

    async def _await_close_reply(self) -> bool:
        loop = self._loop
        if loop is None:  # pragma: no cover - set by prepare()
            raise RuntimeError("Call .prepare() first")
        waiter = self._close_waiter = loop.create_future()
        try:
            async with asyncio.timeout(self._timeout):
                code = await waiter
        except TimeoutError as exc:
            self._exception = exc
            self._close_code = WSCloseCode.ABNORMAL_CLOSURE
            self._close_transport()
            return True
        except asyncio.CancelledError:
            self._close_code = WSCloseCode.ABNORMAL_CLOSURE
            self._close_transport()
            raise
        finally:
            self._close_waiter = None
        self._close_code = WSCloseCode.ABNORMAL_CLOSURE if code is None else code
        self._close_transport()
        return True

    def _close_transport(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.close()

    # -- heartbeat and shutdown ---------------------------------------------------------

    def _reset_heartbeat(self) -> None:
        if self._heartbeat is None or self._loop is None:
            return
        self._last_data = self._loop.time()
        self._heartbeat_handle = self._loop.call_later(self._heartbeat, self._send_heartbeat)

    def _note_alive(self) -> None:
        """Bytes arrived: the heartbeat's ping is due ``heartbeat`` after them (aiohttp)."""
        loop = self._loop
        if loop is None:  # pragma: no cover - switched only after prepare()
            return
        self._last_data = loop.time()
        if self._pong_handle is not None:
            self._pong_handle.cancel()
            self._pong_handle = None
        if self._heartbeat_handle is None and not self._ch.closed and self._heartbeat is not None:
            # The pong (or any data) after a ping: start the next period.
            self._heartbeat_handle = loop.call_at(
                self._last_data + self._heartbeat, self._send_heartbeat
            )

    def _send_heartbeat(self) -> None:
        """A period passed: ping if nothing arrived for ``heartbeat`` seconds, and expect an
        answer within ``heartbeat / 2`` (as aiohttp). The timer is not moved on every
        received frame; it fires at the period's end and re-arms from the last data."""
        self._heartbeat_handle = None
        loop = self._loop
        heartbeat = self._heartbeat
        if self._ch.closed or heartbeat is None or loop is None:
            return
        due = self._last_data + heartbeat
        if loop.time() < due:
            self._heartbeat_handle = loop.call_at(due, self._send_heartbeat)
            return
        if self._pong_handle is None:
            self._send_control(0x9, b"")
            self._pong_handle = loop.call_later(heartbeat / 2.0, self._pong_not_received)

    def _pong_not_received(self) -> None:
        self._pong_handle = None
        if self._ch.closed:
            return
        heartbeat = self._heartbeat if self._heartbeat is not None else 0.0
        exc = PongTimeoutError(f"No PONG received after {heartbeat / 2.0} seconds")
        self._exception = exc
        self._close_code = WSCloseCode.ABNORMAL_CLOSURE
        self._ch.closed = True
        self._cancel_heartbeat()
        self._queue.append(WSMessage(_ERROR, exc, None))
        self._ch.wake()
        self._close_transport()

    def _cancel_heartbeat(self) -> None:
        if self._heartbeat_handle is not None:
            self._heartbeat_handle.cancel()
            self._heartbeat_handle = None
        if self._pong_handle is not None:
            self._pong_handle.cancel()
            self._pong_handle = None

    def _watch_shutdown(self) -> None:
        """Close with 1001 when the server shuts down (RFC 6455 section 7.4.1)."""
        if self._conn is not None:
            self._conn.add_shutdown_callback(self._on_server_shutdown)

    def _on_server_shutdown(self) -> None:
        if self._ch.closed or self._loop is None:
            return
        if self._conn is not None and self._conn.transport is None:
            return
        self._loop.create_task(self._close_going_away())

    async def _close_going_away(self) -> None:
        try:
            await self.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
        except ConnectionError:  # pragma: no cover - the peer left meanwhile
            self._close_transport()


def _http_error(exc: HandshakeError, method: str) -> HTTPException:
    headers = dict(exc.headers)
    if exc.status == 405:
        return HTTPMethodNotAllowed(method, ["GET"], text=exc.reason)
    if exc.status == 426:
        return HTTPUpgradeRequired(text=exc.reason, headers=headers)
    return HTTPBadRequest(text=exc.reason, headers=headers or None)

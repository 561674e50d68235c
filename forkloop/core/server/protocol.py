"""The per-connection asyncio protocol: bytes to parser events to request cycles, in order.

Owns one connection's life: feeding the sans-I/O parser, running request cycles strictly one after
another (pipelined requests wait in a bounded queue; reading pauses when it is full), the header,
keep-alive and lingering timers, write flow control (``drain``), error replies, half-close, the
switch to another protocol after an upgrade, and its part of the staged shutdown. What a request
cycle does (Request objects, handlers, responses) belongs to the owner, the web layer's server.
Imports ``core.http`` and ``core.server`` only.

Theory of operation. ``data_received`` feeds the parser. A request head creates the body stream
and queues ``(head, body)``; body bytes and the end of the message go to the body stream of the
latest head. When no cycle runs, the first queued request starts one: a task running
``owner.handle(self, head, body)``. When it ends, the connection either starts the next queued
request, waits for one under the keep-alive timer, or closes. A protocol error queues itself
behind the requests already accepted, so their responses still go out in order; its own reply
ends the connection. Timers: from the connection's start, and from the first byte of each
request, the head must arrive within ``header_timeout_s``; an idle keep-alive connection closes
after ``keepalive_timeout_s``, and so does a new one that sends nothing (the shorter of the two
bounds the first wait). After an error reply the socket is half-closed and input is
discarded for ``lingering_timeout_s``, so the client reads the reply instead of a reset.

Writes. A whole response a keep-alive cycle ends with (``write_response``, the one-write path)
is held, not written at once: at most one per connection and ``MAX_HELD_RESPONSE_BYTES``. The
loop's ``_Outbox`` writes the held responses at the end of the loop's pass, once every
connection's data of that pass was read and answered, or as soon as ``MAX_HELD_RESPONSES`` are
held. A batch's responses then go out back to back, and each peer is woken once per batch
instead of once per response. A held response is written before anything else reaches its
transport: at the start of the connection's next request cycle (code outside this module
writes only inside a cycle) and before every write, close, half-close and abort of this
module. A lost connection drops it.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import types
import weakref
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Final, Protocol, cast

from ..http.errors import HttpError, RequestPayloadError
from ..http.limits import Limits
from ..http.parser import END, Event, RequestHead, RequestParser, Upgrade
from ..http.serialize import error_response
from ._stepping import DONE, step
from .admission import Admission, ServiceUnavailable
from .decompress import body_stream
from .streams import EMPTY_PAYLOAD, StreamReader

__all__ = ["ConnectionOwner", "HttpProtocol"]

# asyncio's own hooks for "this task is running now" (C-accelerated, present in 3.11 to 3.14);
# without them handlers simply always run as steps of the task.
# Final: the compiled module (setup.py) reads a Final global from a C static, any other from
# the module's dict (a lookup per use, on every request).
_enter_task: Final = getattr(asyncio.tasks, "_enter_task", None)
_leave_task: Final = getattr(asyncio.tasks, "_leave_task", None)
_DONE: Final[Any] = DONE
_step: Final = step
_EMPTY_PAYLOAD: Final = EMPTY_PAYLOAD

# How long a connection accepted just before a graceful stop may take to send its request.
SHUTDOWN_GRACE_S: Final = 1.0

# Unread body a finished handler may leave behind and still keep the connection: bytes beyond
# this are not worth reading just to find the next request.
MAX_DISCARD_BYTES: Final = 64 * 1024

# A bigger whole response is written at once: holding it saves nothing worth its copy's wait.
MAX_HELD_RESPONSE_BYTES: Final = 64 * 1024
# Held responses of one pass written together as soon as there are this many: the first one's
# wait is bounded by this many handlers, however many connections one pass serves.
MAX_HELD_RESPONSES: Final = 64

_IDLE: Final = 0
_HEADER: Final = 1
_KEEPALIVE: Final = 2
_LINGER: Final = 3


class ConnectionOwner(Protocol):
    """What a connection needs from the server that accepted it (the web layer's ``Server``)."""

    limits: Limits

    def connection_made(self, protocol: HttpProtocol) -> None: ...
    def connection_lost(self, protocol: HttpProtocol) -> None: ...
    def handle(
        self, protocol: HttpProtocol, head: RequestHead, payload: StreamReader
    ) -> Coroutine[Any, Any, None]: ...
    def protocol_error(self, protocol: HttpProtocol, error: HttpError) -> None: ...
    def date_value(self) -> str: ...
    def head_tail(self) -> bytes: ...


_NO_OUTCOME: Final[Any] = object()  # a parked handler was not stepped while parked
_SEND: Final[Any] = object()  # _parked(): the handler's wait ended; step it


@types.coroutine
def _resume(
    protocol: HttpProtocol,
    coro: Coroutine[Any, Any, None],
    context: contextvars.Context,
    yielded: Any,
    error: BaseException | None,
) -> Generator[Any, Any, None]:
    """Drive a request's handler from inside the connection task, every step in its context.

    Hands the task what the handler's latest step yielded (the future it waits on), then
    forwards every resumption (``send``) and cancellation (``throw``) to the handler, inside
    the request's own ``context``. ``error``, if given, is thrown in first: a cancellation of
    the task that arrived while it was not yet driving the handler. A handler waiting on the
    connection's message future is parked (``_parked``).
    """
    while True:
        if error is None:
            if yielded is protocol._message_waiter and yielded is not None and not yielded.done():
                yielded, error = yield from _parked(protocol, coro, context, yielded)
                if error is not None:
                    continue
                if yielded is _DONE:
                    return
                if yielded is not _SEND:
                    continue  # stepped while parked: it now waits on this
                sent = None
            else:
                try:
                    sent = yield yielded
                except GeneratorExit:
                    context.run(coro.close)
                    raise
                except BaseException as exc:  # cancellation and friends go to the handler
                    error = exc
                    continue
            try:
                yielded = context.run(coro.send, sent)
            except StopIteration:
                return
        else:
            thrown, error = error, None
            try:
                yielded = context.run(coro.throw, thrown)
            except StopIteration:
                return


def _parked(
    protocol: HttpProtocol,
    coro: Coroutine[Any, Any, None],
    context: contextvars.Context,
    waiter: asyncio.Future[None],
) -> Generator[Any, Any, tuple[Any, BaseException | None]]:
    """``_resume``'s wait while the handler sleeps on the connection's message future
    (``message_waiter()``, an upgraded protocol's receive): the task waits on that future as
    usual, and the upgraded protocol, on a message, calls ``wake_waiter()``, which takes the
    handler's next step right there (see ``HttpProtocol.wake_waiter``) without completing it.

    The task wakes when the future completes: because such a step yielded something else,
    finished or failed (its outcome is left on the protocol), because the future was
    completed otherwise, or because the task was cancelled (which cancels it). Returns what
    ``_resume`` goes on with: ``(_SEND, None)`` to step the handler, ``(DONE, None)``, ``(what
    it now waits on, None)``, or ``(None, error)`` to throw ``error`` into it. A step's
    exception is raised.
    """
    protocol._handler_parked = True
    cancelled: BaseException | None = None
    try:
        yield waiter
    except GeneratorExit:
        protocol._handler_parked = False
        protocol._take_outcome()
        context.run(coro.close)
        raise
    except BaseException as exc:  # the task was cancelled, and with it the future
        cancelled = exc
    protocol._handler_parked = False
    outcome, failure = protocol._take_outcome()
    if failure is not None:
        raise failure
    if cancelled is not None:
        if outcome is _DONE:
            raise cancelled  # a step had ended the handler: the cancellation is the task's
        if isinstance(outcome, asyncio.Future):
            outcome.cancel()  # what a step left it waiting on, as the task's cancel would
        return None, cancelled
    if outcome is _NO_OUTCOME:
        return _SEND, None
    return outcome, None


class _Outbox:
    """The connections of one event loop holding a whole response (``write_response``), all
    written by one callback at the end of the loop's current pass."""

    # No reference to the loop: it is the key this outbox is kept under (``_outboxes``).
    __slots__ = ("_flush_soon", "_pending")

    def __init__(self) -> None:
        self._pending: list[HttpProtocol] = []
        self._flush_soon: Callable[[], None] = self._flush  # bound once, scheduled per pass

    def add(self, protocol: HttpProtocol) -> None:
        pending = self._pending
        if not pending:
            protocol._call_soon(self._flush_soon)
        pending.append(protocol)
        if len(pending) >= MAX_HELD_RESPONSES:
            self._flush()

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for protocol in pending:
            try:
                protocol._write_held()
            except Exception as exc:  # one connection's failure must not hold back the others
                protocol._loop.call_exception_handler(
                    {"message": "writing a held response failed", "exception": exc}
                )


_outboxes: Final[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Outbox]] = (
    weakref.WeakKeyDictionary()
)


def _outbox_for(loop: asyncio.AbstractEventLoop) -> _Outbox:
    outbox = _outboxes.get(loop)
    if outbox is None:
        outbox = _outboxes[loop] = _Outbox()
    return outbox


class _Discard:
    """Takes the body a finished handler did not read, up to a bound."""

    __slots__ = ("size",)

    def __init__(self, already: int = 0) -> None:
        self.size = already  # bytes dropped from the body stream before this took over

    @property
    def overflow(self) -> bool:
        return self.size > MAX_DISCARD_BYTES

    def feed_data(self, data: bytes) -> None:
        self.size += len(data)

    def feed_eof(self) -> None:
        pass

    def set_exception(self, exc: BaseException) -> None:
        pass


def _not_connected(data: bytes) -> None:
    raise ConnectionResetError("Cannot write to closing transport")


def _no_transport() -> bool:
    return True


class HttpProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection."""

    __slots__ = (
        "_admission",
        "_arrivals",
        "_body",
        "_busy",
        "_call_soon",
        "_closed",
        "_context",
        "_cycle_payload",
        "_deadline",
        "_drain_waiters",
        "_error_queued",
        "_force_close",
        "_handler",
        "_handler_context",
        "_handler_parked",
        "_handler_yielded",
        "_heads_at_timer",
        "_held",
        "_held_paused",
        "_keepalive_s",
        "_loop",
        "_max_pipelined",
        "_message_waiter",
        "_no_keepalive",
        "_on_data",
        "_on_eof",
        "_outbox",
        "_owner",
        "_owner_handle",
        "_owner_head_tail",
        "_parked_failure",
        "_parked_outcome",
        "_parser",
        "_pipeline_paused",
        "_queue",
        "_read_pauses",
        "_served",
        "_shutdown_callbacks",
        "_task",
        "_timer",
        "_timer_kind",
        "_timer_when",
        "_transport_closing",
        "_transport_write",
        "_upgrade_data",
        "_waiter",
        "cancel_on_disconnect",
        "closing",
        "head_sent",
        "limits",
        "peername",
        "request",
        "scheme",
        "transport",
        "write_paused",
    )

    def __init__(self, owner: ConnectionOwner, loop: asyncio.AbstractEventLoop) -> None:
        self._owner = owner
        # The owner's per-request methods, bound once per connection (a call through them
        # skips a generic method lookup on every request).
        self._owner_handle: Callable[
            [HttpProtocol, RequestHead, StreamReader], Coroutine[Any, Any, None]
        ] = owner.handle
        self._owner_head_tail: Callable[[], bytes] = owner.head_tail
        self._loop = loop
        self._call_soon: Callable[[Callable[[], None]], object] = loop.call_soon
        self._outbox = _outbox_for(loop)
        # A whole response written at the end of the loop's pass (``write_response``).
        self._held: bytes | None = None
        self.limits = owner.limits
        self.transport: asyncio.Transport | None = None
        # The transport's write and is_closing, bound once in connection_made.
        self._transport_write: Callable[[bytes], None] = _not_connected
        self._transport_closing: Callable[[], bool] = _no_transport
        self.peername: Any = None
        self.scheme = "http"
        self.request: Any = None  # the request being handled (set by the owner), for samplers
        self.closing = False
        self.cancel_on_disconnect = False
        self._parser: RequestParser | None = RequestParser(self.limits)
        self._queue: collections.deque[tuple[RequestHead, StreamReader] | HttpError] = (
            collections.deque()
        )
        self._body: StreamReader | _Discard | None = None
        self._cycle_payload: StreamReader | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        # The request cycle in progress, while the eager step has handed it to the task: its
        # handler coroutine, the request's own context and what its latest step yielded.
        self._handler: Coroutine[Any, Any, None] | None = None
        self._handler_context: contextvars.Context | None = None
        self._handler_yielded: Any = None
        # The future an upgraded protocol's receiver sleeps on (``message_waiter()``), whether
        # the handler is parked on it (``_parked``), and what a step taken in ``wake_waiter()``
        # left for the task (a yield, DONE, an exception).
        self._message_waiter: asyncio.Future[None] | None = None
        self._handler_parked = False
        self._parked_outcome: Any = _NO_OUTCOME
        self._parked_failure: BaseException | None = None
        self._context = contextvars.Context()  # the connection's base context (the task's)
        self._closed: asyncio.Future[None] | None = None
        self._busy = False
        self._force_close = False
        self._no_keepalive = self.limits.keepalive_timeout_s == 0
        # Limits read on every request, as plain attributes (a frozen dataclass's fields are
        # read through the generic lookup from the compiled module).
        self._keepalive_s = self.limits.keepalive_timeout_s
        self._max_pipelined = self.limits.max_pipelined_requests
        self._served = 0
        self.head_sent = False  # the current response's head went out (set by the writer)
        self._error_queued = False
        self._read_pauses = 0
        self._pipeline_paused = False
        # The transport's write buffer is above its high-water mark: ``drain()`` would wait.
        # Read by the writers of the web layer (a flag, not a call, on every write).
        self.write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._shutdown_callbacks: list[Callable[[], None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0  # when the handle in _timer fires (not read back per request)
        self._timer_kind = _IDLE
        self._deadline = 0.0
        self._heads_at_timer = -1
        # The bytes after an upgrade request, held until its handler accepts the upgrade
        # (``switch_protocol``) or declines it (``_resume_http``); None when there is none.
        self._upgrade_data: bytes | None = None
        self._held_paused = False  # reading paused: too many bytes held
        self._on_data: Callable[[bytes], None] | None = None
        self._on_eof: Callable[[], None] | None = None
        # Overload protection (admission.py), None when off: then it costs one test per request.
        admission: Admission | None = getattr(owner, "admission", None)
        self._admission = admission
        # When each queued request's head was read (loop clock), if queue time is measured.
        self._arrivals: collections.deque[float] | None = (
            collections.deque() if admission is not None and admission.measures_queue_time else None
        )

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        self._transport_write = transport.write
        self._transport_closing = transport.is_closing
        self.peername = transport.get_extra_info("peername")
        self.scheme = "https" if transport.get_extra_info("sslcontext") else "http"
        limits = self.limits
        transport.set_write_buffer_limits(
            high=limits.write_buffer_high_bytes, low=limits.write_buffer_low_bytes
        )
        self._owner.connection_made(self)
        # The wait for the first request is bounded by the keep-alive timeout as well (as in
        # aiohttp: a connection that sends nothing is idle), and by the header timeout, which
        # restarts at the request's first byte to bound a slowly sent head.
        first_wait = limits.header_timeout_s
        if 0 < limits.keepalive_timeout_s < first_wait:
            first_wait = limits.keepalive_timeout_s
        self._set_timer(_HEADER, first_wait)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_timer()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.transport = None
        lost = ConnectionResetError("Connection lost")
        if self._body is not None:
            self._body.set_exception(lost)
            self._body = None
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_exception(lost)
        self._drain_waiters.clear()
        self._queue.clear()
        if self._on_eof is not None:
            on_eof, self._on_eof = self._on_eof, None
            self._on_data = None
            on_eof()
        closed = self._closed
        if closed is not None and not closed.done():
            closed.set_result(None)
        task = self._task
        if task is not None and (not self._busy or self.cancel_on_disconnect):
            task.cancel()  # an idle task just ends; a busy one only if cancellation is on
        self._owner.connection_lost(self)

    def data_received(self, data: bytes) -> None:
        if self._on_data is not None:
            self._on_data(data)
            return
        parser = self._parser
        if parser is None:  # upgraded and not yet switched, or lingering: hold or drop
            if self._upgrade_data is not None and self._timer_kind != _LINGER:
                self._hold(data)
            return
        if self._timer_kind == _KEEPALIVE:
            self._cancel_timer()
        if not self._parse(parser, data):
            return
        if self._queue and not self._busy:
            self._kick()

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            if type(event) is bytes:
                body = self._body
                if body is not None:
                    body.feed_data(event)
            elif event is END:
                self._end_of_body()
            elif type(event) is RequestHead:
                self._new_request(event)
            elif type(event) is Upgrade:
                self._parser = None
                self._upgrade_data = b""
                self._hold(event.data)
                if not self._busy and not self._queue:
                    # Its request was answered (declined) before its body had all come.
                    self._resume_http()

    def eof_received(self) -> bool:
        if self._on_eof is not None:
            on_eof, self._on_eof = self._on_eof, None
            on_eof()
            return True
        if self._body is not None:
            self._body.set_exception(ConnectionResetError("client closed before the body ended"))
            self._body = None
        closed = self._closed
        if closed is not None and not closed.done():
            closed.set_result(None)  # wait_closed(): the client has stopped sending
        if (not self._busy and not self._queue) or (self._busy and self.cancel_on_disconnect):
            self._write_held()
            return False  # idle, or the handler is to be cancelled: the transport closes
        # Half-close: answer what was asked, then close (RFC 9112 §9.6).
        self._force_close = True
        self._parser = None
        return True

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- used by the web layer ----------------------------------------------------------

    @property
    def keep_alive(self) -> bool:
        """Whether the response being written may leave the connection open.

        After a protocol error the connection stays open only for the responses queued ahead
        of the error reply, which then closes it.
        """
        if self._force_close or self.closing or self._no_keepalive:
            return False
        payload = self._cycle_payload
        if (
            payload is not None
            and payload is self._body
            and payload.unread_beyond(MAX_DISCARD_BYTES)
        ):
            # Answered before its body came (a 413, say): skipping the rest would cost more than
            # the bound, so this response ends the connection (issue 15).
            self._force_close = True
            return False
        # Behind an upgrade request not yet accepted, the connection stays HTTP: a request
        # pipelined ahead of it, and the upgrade request itself if declined, keep it open.
        return self._parser is not None or self._error_queued or self._upgrade_data is not None

    def force_close(self) -> None:
        """Close the connection once the current response is complete."""
        self._force_close = True

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or self._transport_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        if self._held is not None:
            self._write_held()
        self._transport_write(data)

    def write_response(self, data: bytes) -> None:
        """Write ``data``, a whole response the current cycle ends with, keeping the
        connection: held and written at the end of the loop's pass (see the module's
        docstring), or at once when another is held already or it is over
        ``MAX_HELD_RESPONSE_BYTES``."""
        transport = self.transport
        if transport is None or self._transport_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        if self._held is not None or len(data) > MAX_HELD_RESPONSE_BYTES:
            self.write(data)
            return
        self._held = data
        self._outbox.add(self)

    def _write_held(self) -> None:
        """Write the held response, if any, while the transport is open (else drop it)."""
        data = self._held
        if data is not None:
            self._held = None
            transport = self.transport
            if transport is not None and not self._transport_closing():
                self._transport_write(data)

    async def drain(self) -> None:
        if self.transport is None:
            raise ConnectionResetError("Connection lost")
        if not self.write_paused:
            return
        waiter = self._loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def pause_reading(self) -> None:
        self._read_pauses += 1
        if self._read_pauses == 1 and self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._read_pauses <= 0:
            return
        self._read_pauses -= 1
        if self._read_pauses == 0 and self.transport is not None:
            self.transport.resume_reading()

    def switch_protocol(self, on_data: Callable[[bytes], None], on_eof: Callable[[], None]) -> None:
        """Hand every later byte to ``on_data`` (after an upgrade's 101 went out)."""
        if self._upgrade_data is None:
            raise RuntimeError("switch_protocol() needs a request that asked for an upgrade")
        self._cancel_timer()
        if self._admission is not None:  # the request ended with its 101; a session follows
            self._admission.release(self)
        data, self._upgrade_data = self._upgrade_data, b""
        self._on_data = on_data
        self._on_eof = on_eof
        if self._held_paused:
            self._held_paused = False
            self.resume_reading()
        if data:
            on_data(data)

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The task running the current request cycle."""
        return self._task

    def date_value(self) -> str:
        return self._owner.date_value()

    async def wait_closed(self) -> None:
        """Return once the connection is lost."""
        if self.transport is None:
            return
        if self._closed is None:
            self._closed = self._loop.create_future()
        await asyncio.shield(self._closed)

    def head_tail(self) -> bytes:
        """``Date``/``Server`` header lines and the blank line ending a response head."""
        return self._owner_head_tail()

    @property
    def upgraded(self) -> bool:
        return self._on_data is not None

    def add_shutdown_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when a graceful stop reaches this upgraded connection (WebSockets
        close with 1001 then; RFC 6455 §7.4.1)."""
        self._shutdown_callbacks.append(callback)

    @property
    def observers(self) -> Any:
        """The server's observer table (``forkloop.core.hooks.Observers``), for upgraded
        protocols that report events of their own."""
        return getattr(self._owner, "observers", None)

    def begin_shutdown(self) -> None:
        """Stage one of a graceful stop: idle connections close, busy ones finish and close.

        A connection accepted just before the stop that has not sent its first request yet is
        not idle but early: it gets ``SHUTDOWN_GRACE_S`` to send it, and that one request is
        answered (with ``Connection: close``).
        """
        self.closing = True
        if self._on_data is not None:
            callbacks, self._shutdown_callbacks = self._shutdown_callbacks, []
            for callback in callbacks:
                callback()
            return
        if self._busy:
            return
        if self._served == 0 and not self._queue and self._parser is not None:
            self._set_timer(_HEADER, min(SHUTDOWN_GRACE_S, self.limits.header_timeout_s))
            return
        if not self._queue:
            self._close()

    def abort(self) -> None:
        """Last stage of a stop: cancel the running handler and drop the connection."""
        if self._task is not None:
            self._task.cancel()
        if self.transport is not None:
            self._write_held()  # handed to the kernel, as if written at once
            self.transport.abort()

    @property
    def idle(self) -> bool:
        return not self._busy and not self._queue

    # -- internals ----------------------------------------------------------------------

    def _new_request(self, head: RequestHead) -> None:
        limits = self.limits
        if head.has_body:
            # 100 Continue only to HTTP/1.1 clients (RFC 9110 §15.2: not to 1.0).
            on_first_read = (
                self._send_continue if head.expect is not None and head.version >= (1, 1) else None
            )
            coding = head.headers.get("Content-Encoding")
            if coding is None or not getattr(self._owner, "auto_decompress", True):
                payload = StreamReader(
                    self,
                    loop=self._loop,
                    high_water=limits.read_buffer_high_bytes,
                    idle_timeout_s=limits.body_idle_timeout_s,
                    on_first_read=on_first_read,
                    expected_bytes=head.content_length,
                )
            else:
                try:
                    payload = body_stream(
                        coding,
                        self,
                        loop=self._loop,
                        high_water=limits.read_buffer_high_bytes,
                        idle_timeout_s=limits.body_idle_timeout_s,
                        on_first_read=on_first_read,
                        expected_bytes=head.content_length,
                    )
                except HttpError as error:  # a coding we know but cannot decode here: 400
                    self._protocol_error(error)
                    return
            self._body = payload
        else:
            payload = _EMPTY_PAYLOAD
            self._body = None
        self._queue.append((head, payload))
        if self._arrivals is not None:
            self._arrivals.append(self._loop.time())
        if len(self._queue) >= self._max_pipelined and not self._pipeline_paused:
            self._pipeline_paused = True
            self.pause_reading()

    def _end_of_body(self) -> None:
        body = self._body
        if body is not None:
            self._body = None
            body.feed_eof()
            if type(body) is _Discard and body.overflow:
                self._force_close = True

    def _send_continue(self) -> None:
        # Only the request being handled may be told to continue (RFC 9110 §10.1.1).
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _kick(self) -> None:
        """A request is queued: start the serving task, run the request eagerly, or wake it."""
        task = self._task
        if task is None:
            self._context = contextvars.copy_context()
            self._task = self._loop.create_task(self._serve(), context=self._context)
            return
        waiter = self._waiter
        if waiter is None:
            return  # the task is not parked; it finds the queue when it looks
        if _enter_task is None or not self._run_eagerly(task):
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _run_eagerly(self, task: asyncio.Task[None]) -> bool:
        """Run queued request cycles right here, as steps of the parked connection task.

        Most handlers answer without ever waiting; taking their first step inside this
        callback saves waking the task through the loop for every request. The step is the
        same cycle start the task takes (``_start_cycle``), run with the connection task as
        the current task, so ``current_task()`` and ``asyncio.timeout()`` behave as under the
        task. A handler that does wait is handed over, suspended, to the task (``_serve``),
        which drives it on in the request's context. Returns False if nothing ran (the caller
        wakes the task instead).
        """
        loop = self._loop
        queue = self._queue
        ran = False
        while queue and self._handler is None and self.transport is not None:
            item = queue[0]
            if not isinstance(item, tuple) or (self.closing and self._served):
                break  # errors and shutdown are the task's business
            try:
                _enter_task(loop, task)  # type: ignore[misc]
            except RuntimeError:  # called from inside another task (a test driving us)
                break
            self._dequeue()
            ran = True
            failure: BaseException | None = None
            yielded: Any = _DONE
            try:
                yielded = self._start_cycle(item[0], item[1])
            except BaseException as exc:
                failure = exc
            finally:
                _leave_task(loop, task)  # type: ignore[misc]
            if failure is not None:
                self._cycle_failed(failure)
                break
            if yielded is _DONE:
                # Finished in one step: it never waited, so caught no cancellation.
                if self._end_cycle(None):
                    continue
                break
            self._handler_yielded = yielded  # the task drives the handler on from here
            self._wake()
            return True
        if ran and (queue or self.transport is None):
            self._wake()  # let the task see what is left (or that the connection is gone)
        return ran

    async def _serve(self) -> None:
        """The connection's one task: runs request cycles in order until the connection closes.

        A cycle starts here or, eagerly, in ``_run_eagerly``; either way it ends here (if its
        handler waited) or there, through the same ``_start_cycle`` and ``_end_cycle``.
        """
        queue = self._queue
        task = self._task
        if task is None:  # not started by _kick (a test driving the coroutine)
            task = cast("asyncio.Task[None]", asyncio.current_task())
        try:
            while self.transport is not None:
                error: BaseException | None = None
                if self._handler is None:
                    if queue:
                        if not self._start_queued():
                            return
                    else:
                        self._waiter = waiter = self._loop.create_future()
                        try:
                            await waiter
                        except asyncio.CancelledError as exc:
                            error = self._cancel_handed_over(exc)
                        if error is None:
                            continue
                handler = self._handler
                context = self._handler_context
                yielded = self._handler_yielded
                if yielded is not _DONE and handler is not None and context is not None:
                    try:
                        await _resume(self, handler, context, yielded, error)
                    except BaseException as exc:
                        self._cycle_failed(exc)
                        return
                if not self._end_cycle(task):
                    return
        except asyncio.CancelledError:
            self._close()
        finally:
            self._stopped_serving()

    def message_waiter(self) -> asyncio.Future[None]:
        """The future an upgraded protocol's receiver sleeps on until a message comes: the
        same one until it completes (``wake_waiter()`` steps a parked handler without
        completing it), then a new one."""
        waiter = self._message_waiter
        if waiter is None or waiter.done():
            waiter = self._message_waiter = self._loop.create_future()
        return waiter

    def wake_waiter(self, waiter: asyncio.Future[None]) -> None:
        """A message came for the receiver sleeping on ``waiter`` (``message_waiter()``).

        When the connection's handler is parked on it (``_parked``: the task waits on it for
        the handler), the handler's next step is taken right here, as a step of the
        connection task (``current_task()``, ``asyncio.timeout()`` and the request's context
        as under the task), instead of waking the task through the loop for every message.
        The step usually ends sleeping on the same future: the handler stays parked and the
        task asleep. Anything else it ends with (another future, a bare yield, a return, an
        exception) is left for the task, woken by completing the future. Any other receiver
        (another task), or a call from inside a task, gets the future completed.
        """
        task = self._task
        handler = self._handler
        context = self._handler_context
        if (
            not self._handler_parked
            or waiter is not self._message_waiter
            or waiter.done()
            or task is None
            or handler is None
            or context is None
            or _enter_task is None
        ):
            if not waiter.done():
                waiter.set_result(None)
            return
        loop = self._loop
        try:
            _enter_task(loop, task)
        except RuntimeError:
            waiter.set_result(None)  # the task steps the handler
            return
        self._handler_parked = False  # not while it runs
        failure: BaseException | None = None
        yielded: Any = _DONE
        try:
            yielded = _step(context, handler)
        except BaseException as exc:
            failure = exc
        finally:
            _leave_task(loop, task)  # type: ignore[misc]
        if failure is None and yielded is waiter and not waiter.done():
            self._handler_parked = True  # sleeps on the next message: still parked
            return
        self._parked_outcome = yielded
        self._parked_failure = failure
        if not waiter.done():
            waiter.set_result(None)  # the task takes over from here

    def _take_outcome(self) -> tuple[Any, BaseException | None]:
        """What a step in ``wake_waiter`` left for the task, and forget it."""
        outcome, failure = self._parked_outcome, self._parked_failure
        self._parked_outcome = _NO_OUTCOME
        self._parked_failure = None
        return outcome, failure

    def _stopped_serving(self) -> None:
        self._task = None
        self._waiter = None
        handler, self._handler = self._handler, None
        if handler is not None and self._handler_context is not None:
            self._handler_context.run(handler.close)  # a handler handed over, never driven
        self._handler_context = self._handler_yielded = None

    def _start_queued(self) -> bool:
        """In the task: start the cycle of the next queued item; False if the connection ends
        instead (an error reply, a shutdown, a cycle that failed at once)."""
        item = self._dequeue()
        if isinstance(item, HttpError):
            self._reply_error(item)
            return False
        if self.closing and self._served:  # shutting down: no further requests
            self._close()
            return False
        try:
            self._handler_yielded = self._start_cycle(item[0], item[1])
        except BaseException as exc:
            self._cycle_failed(exc)
            return False
        return True

    def _cancel_handed_over(self, exc: asyncio.CancelledError) -> BaseException:
        """The task was cancelled while parked: with no handler in progress, that ends the
        connection (re-raised). A handler the eager step just handed over gets it instead (an
        ``asyncio.timeout`` expiring, a disconnect), as the current step of its own task
        would: the future it waits on is cancelled and the error thrown into it."""
        if self._handler is None:
            raise exc
        waited = self._handler_yielded
        if isinstance(waited, asyncio.Future):
            waited.cancel()
        return exc

    def _start_cycle(self, head: RequestHead, payload: StreamReader) -> Any:
        """Start one request cycle: its handler, in a fresh copy of the connection's base
        context (nothing a request sets is seen by the next one), stepped once.

        Returns :data:`DONE` when the handler finished in that step, else what it yielded;
        the handler and its context stay in ``_handler``/``_handler_context`` until
        ``_end_cycle``. Exceptions from the step propagate (see ``_cycle_failed``).
        """
        if self._held is not None:
            self._write_held()  # before anything this cycle writes, here or elsewhere
        self._cycle_payload = payload
        self._busy = True
        context = self._handler_context = self._context.copy()
        if self._admission is not None:
            return self._start_admitted(self._admission, head, payload, context)
        handler = self._handler = self._owner_handle(self, head, payload)
        return _step(context, handler)

    def _start_admitted(
        self,
        admission: Admission,
        head: RequestHead,
        payload: StreamReader,
        context: contextvars.Context,
    ) -> Any:
        """``_start_cycle`` under overload protection: the request runs, counted in flight,
        or gets a 503 at once without reaching the server's handler (the cycle is then over:
        :data:`DONE`, and the connection closes after the reply)."""
        now = self._loop.time()
        arrivals = self._arrivals
        arrived = arrivals.popleft() if arrivals else now
        refusal = admission.admit(self, head, arrived, now)
        if refusal is not None:
            self._shed(refusal)
            return DONE
        handler = self._handler = admission.hold(self, self._owner_handle(self, head, payload))
        return step(context, handler)

    def _shed(self, refusal: ServiceUnavailable) -> None:
        self._force_close = True
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(error_response(refusal, self._owner.date_value()))

    def _end_cycle(self, task: asyncio.Task[None] | None) -> bool:
        """A request cycle has finished: decide whether the connection goes on (and close it
        if not). A cancellation the handler caught and left counted on ``task`` (the task
        that drove it) is forgotten, so it cannot confuse the next request's cancellation
        scopes (``asyncio.timeout()``, task groups)."""
        payload = self._cycle_payload
        self._busy = False
        self._cycle_payload = None
        self._handler = self._handler_context = self._handler_yielded = None
        self._message_waiter = None
        self._served += 1
        if task is not None and task.cancelling():
            while task.uncancel():
                pass
        if payload is None:
            return False
        return self._after_cycle(payload)

    def _cycle_failed(self, exc: BaseException) -> None:
        """A request cycle ended with an exception (the server's ``handle`` lets only
        cancellation and lost connections through): the connection closes."""
        self._busy = False
        self._cycle_payload = None
        self._handler = self._handler_context = self._handler_yielded = None
        self._message_waiter = None
        self._served += 1
        self._close()
        if not isinstance(exc, asyncio.CancelledError | ConnectionError):
            self._loop.call_exception_handler(
                {"message": "request cycle failed", "exception": exc, "protocol": self}
            )

    def _dequeue(self) -> tuple[RequestHead, StreamReader] | HttpError:
        """The next queued item; reading resumes once the backlog is below the limit."""
        item = self._queue.popleft()
        if self._pipeline_paused and len(self._queue) < self._max_pipelined:
            self._pipeline_paused = False
            self.resume_reading()
        return item

    def _after_cycle(self, payload: StreamReader) -> bool:
        """Decide whether the connection goes on after a response; close it if not."""
        if self.transport is None:
            return False
        if self._on_data is not None:  # upgraded: the other protocol has ended
            self._close()
            return False
        if payload is self._body:
            # The handler left body unread: drop what came, skip the rest up to a bound.
            if payload.needs_continue:
                self._force_close = True  # the client waits for 100 and never sends the body
            self._body = _Discard(payload.discard())
        if self._upgrade_data is not None and not self._queue:
            self._resume_http()  # the upgrade request was answered without switching
        if not self.keep_alive:
            # Unread body still coming: half-close and drain a while, as after an error reply.
            self._close(linger=type(self._body) is _Discard)
            return False
        if not self._queue and self._parser is not None:
            if self._parser.in_request:
                self._set_timer(_HEADER, self.limits.header_timeout_s)
            else:
                self._set_timer(_KEEPALIVE, self._keepalive_s)
        return True

    def _hold(self, data: bytes) -> None:
        """Keep bytes that came after an upgrade request until its handler decides; reading
        pauses while more than ``read_buffer_high_bytes`` are held (memory stays bounded)."""
        held = self._upgrade_data = (self._upgrade_data or b"") + data
        if len(held) > self.limits.read_buffer_high_bytes and not self._held_paused:
            self._held_paused = True
            self.pause_reading()

    def _resume_http(self) -> None:
        """The upgrade request got an ordinary response (a 426, a 404, a 200...): as in aiohttp,
        the connection goes on as HTTP/1.1 keep-alive. A fresh parser reads the bytes held
        since the upgrade request (pipelined requests, maybe a further upgrade).

        Framing stays known: the held bytes start right after the upgrade request's head (and
        its ``Content-Length`` body), exactly where the next request must begin. A client that
        sent upgraded-protocol bytes early (WebSocket frames before the 101) gets a 400 for
        them and the connection closes, as for any garbage."""
        data, self._upgrade_data = self._upgrade_data, None
        if self._held_paused:
            self._held_paused = False
            self.resume_reading()
        if self._force_close or self.closing or self.transport is None:
            return  # the connection ends with this response anyway
        self._parser = RequestParser(self.limits)
        self._heads_at_timer = -1
        if data:
            self._feed_held(data)

    def _feed_held(self, data: bytes) -> None:
        """Parse bytes held since a declined upgrade, as ``data_received`` parses."""
        parser = self._parser  # not narrowed on self: _dispatch may end parsing again
        if parser is not None:
            self._parse(parser, data)

    def _parse(self, parser: RequestParser, data: bytes) -> bool:
        """Feed ``data`` to ``parser`` and act on its events; False when a protocol error
        ended the connection (its reply is queued behind the requests already accepted)."""
        try:
            events = parser.feed(data)
        except HttpError as error:
            self._protocol_error(error)
            return False
        self._dispatch(events)
        if parser.error is not None:
            self._protocol_error(parser.error)
            return False
        if self._parser is not None:
            self._update_header_timer(self._parser)
        return True

    def _protocol_error(self, error: HttpError) -> None:
        self._parser = None
        self._error_queued = True
        self._owner.protocol_error(self, error)
        self._cancel_timer()
        body, self._body = self._body, None
        if body is not None:
            body.set_exception(RequestPayloadError(f"malformed request body: {error.message}"))
            if body is self._cycle_payload:
                # The handler reading this body answers (its read raises); then we close.
                self._force_close = True
                return
            queued = self._queue[-1] if self._queue else None
            if isinstance(queued, tuple) and queued[1] is body:
                self._queue.pop()  # that request is answered by the error reply instead
        self._queue.append(error)
        if not self._busy:
            self._kick()

    def _reply_error(self, error: HttpError) -> None:
        transport = self.transport
        if transport is None:
            return
        if not transport.is_closing():
            self._write_held()
            transport.write(error_response(error, self._owner.date_value()))
        self._close(linger=True)

    def _close(self, *, linger: bool = False) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._write_held()
        self._parser = None
        self._queue.clear()
        if linger and transport.can_write_eof():
            # Half-close and drain input for a while, so a client still sending reads our
            # reply rather than a reset (RFC 9112 §9.6).
            transport.write_eof()
            while self._read_pauses:
                self.resume_reading()
            self._set_timer(_LINGER, self.limits.lingering_timeout_s)
        else:
            self._cancel_timer()
            transport.close()

    def _update_header_timer(self, parser: RequestParser) -> None:
        if parser.in_request:
            if self._timer_kind != _HEADER or self._heads_at_timer != parser.heads_begun:
                self._set_timer(_HEADER, self.limits.header_timeout_s)
                self._heads_at_timer = parser.heads_begun
        elif self._timer_kind == _HEADER:
            self._cancel_timer()

    def _set_timer(self, kind: int, delay_s: float) -> None:
        # One timer handle per connection, moved lazily: setting a later deadline only records
        # it, and the handle re-arms itself when it fires early. Keep-alive requests thus cost
        # no timer churn (a TimerHandle per request is measurable on the hot path).
        loop = self._loop
        deadline = loop.time() + delay_s
        self._timer_kind = kind
        self._deadline = deadline
        timer = self._timer
        if timer is None or self._timer_when > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(deadline, self._on_timer)
            self._timer_when = deadline

    def _cancel_timer(self) -> None:
        self._timer_kind = _IDLE  # the handle, if any, fires later and finds nothing to do

    def _on_timer(self) -> None:
        self._timer = None
        kind = self._timer_kind
        transport = self.transport
        if kind == _IDLE or transport is None:
            return
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
            self._timer_when = self._deadline
            return
        self._timer_kind = _IDLE
        self._write_held()
        if kind == _HEADER and not self._busy and not self._queue:
            # Slow or silent client: it gets no reply, only the closed socket.
            self._parser = None
            transport.close()
        elif (kind == _KEEPALIVE and not self._busy and not self._queue) or kind == _LINGER:
            transport.close()

"""The low-level server (aiohttp's ``web.Server``): one request cycle from head to last byte.

Owns what happens to a parsed request: building the ``Request``, the optional intercept (the
supervisor's probes), calling the handler, turning what it raised into a response (an
``HTTPException`` is one; ``TimeoutError`` is 504; a protocol error reading the body is its own
status; anything else is 500, aiohttp's page, with the traceback only in debug mode), writing the
response, access logging, observers, request timing and the ``Date`` clock (one clock reading
serves both), and the connection registry of the server. Is the protocol factory: ``server()``
returns a connection. Imports ``core.http``, ``core.server``, ``core.hooks``
and ``core.web``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable
from html import escape
from typing import Any, Final

from ...core.hooks import Observers
from ..http.errors import HttpError
from ..http.limits import Limits
from ..http.parser import RequestHead
from ..http.serialize import DateCache
from ..server.admission import Admission
from ..server.connections import ConnectionRegistry
from ..server.protocol import HttpProtocol
from ..server.streams import EMPTY_PAYLOAD, StreamReader
from .deprecations import warn_returned_exception
from .exceptions import HTTPException
from .log import AbstractAccessLogger, AccessLogger, access_logger, server_logger
from .request import BaseRequest
from .request import RequestFactory as AppRequestFactory
from .response import Response, StreamResponse, send_in_one_write
from .tally import Tally

# Final aliases: the compiled module (setup.py) reads a Final global from a C static, any
# other global from the module's dict (a lookup per use, on every request).
_perf_counter: Final = time.perf_counter
_send_in_one_write: Final = send_in_one_write
_Response: Final = Response
_EMPTY_PAYLOAD: Final = EMPTY_PAYLOAD

__all__ = ["BaseProtocol", "RequestHandler", "Server"]

Handler = Callable[[BaseRequest], Awaitable[StreamResponse]]
RequestFactory = Callable[
    [RequestHead, StreamReader, HttpProtocol, "asyncio.Task[None] | None"], BaseRequest
]
Intercept = Callable[[BaseRequest], StreamResponse | None]

# aiohttp's Server keyword arguments that are limits here.
_LIMIT_ALIASES: Final = {
    "keepalive_timeout": "keepalive_timeout_s",
    "max_line_size": "max_request_line_bytes",
    "max_field_size": "max_header_field_bytes",
    "max_headers": "max_header_count",
    "lingering_time": "lingering_timeout_s",
    "read_bufsize": "read_buffer_high_bytes",
}
# aiohttp's Server keyword arguments accepted for compatibility, with no effect here.
_IGNORED: Final = frozenset(("tcp_keepalive", "timeout_ceil_threshold", "max_request_size"))

BaseProtocol = HttpProtocol
RequestHandler = HttpProtocol


def limits_from_kwargs(base: Limits | None, kwargs: dict[str, Any]) -> Limits:
    """Fold aiohttp-style keyword arguments (``keepalive_timeout=...``) into a Limits."""
    limits = base if base is not None else Limits()
    changes = {}
    for alias, field in _LIMIT_ALIASES.items():
        if alias in kwargs:
            value = kwargs.pop(alias)
            if value is not None:
                changes[field] = value
    for name in _IGNORED:
        kwargs.pop(name, None)
    return dataclasses.replace(limits, **changes) if changes else limits


class Server:
    """Serves requests with ``handler``; pass it to ``loop.create_server`` as the factory."""

    def __init__(
        self,
        handler: Handler,
        *,
        request_factory: RequestFactory | None = None,
        handler_cancellation: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
        limits: Limits | None = None,
        logger: logging.Logger = server_logger,
        access_log_class: type[AbstractAccessLogger] = AccessLogger,
        access_log: logging.Logger | None = access_logger,
        access_log_format: str = AccessLogger.LOG_FORMAT,
        observers: Iterable[object] = (),
        intercept: Intercept | None = None,
        debug: bool = False,
        auto_decompress: bool = True,
        **kwargs: Any,
    ) -> None:
        self.limits = limits_from_kwargs(limits, kwargs)
        # aiohttp's: decode a request body's Content-Encoding (gzip, deflate, br, zstd) for
        # the handler; False hands it the bytes as sent (core/server/decompress.py).
        self.auto_decompress = bool(auto_decompress)
        kwargs.pop("client_max_size", None)
        # Overload protection (core/server/admission.py); None when off. Read by each
        # connection (HttpProtocol) and by the metrics observer.
        self.admission: Admission | None = Admission.from_options(
            kwargs.pop("max_concurrency", None),
            kwargs.pop("max_queue_time", None),
            bool(kwargs.pop("trust_request_start", False)),
        )
        if kwargs:
            raise TypeError(
                f"Server() got unexpected keyword arguments: {', '.join(sorted(kwargs))}"
            )
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        self._handler = handler
        self._request_factory = request_factory or self._make_request
        # An Application's own factory (compiled): called natively, not through a Python call.
        self._app_factory: AppRequestFactory | None = (
            request_factory if type(request_factory) is AppRequestFactory else None
        )
        self._handler_cancellation = handler_cancellation
        self._logger = logger
        self._access_logger: AbstractAccessLogger | None = (
            access_log_class(access_log, access_log_format) if access_log is not None else None
        )
        observers = list(observers)
        self.observers = self._observers = Observers(observers)
        # The per-request fan-outs, fixed with the observers: read here, not through the
        # (interpreted) Observers object on every request.
        self._started = self._observers.started
        self._finished = self._observers.finished
        # Observers that take requests in bulk (tally.py): added to natively, per request.
        self._tallies: list[Tally] = []
        self._intercept = intercept
        self._debug = debug
        self._dates = DateCache()
        self._date = ""
        self._tail = b""
        self._date_until = -1.0  # perf_counter() reading at which _date and _tail expire
        self._sent_at = 0.0  # perf_counter() reading of the latest head_tail()
        self.connections = ConnectionRegistry()
        self.requests_count = 0
        for observer in observers:
            tally = getattr(observer, "tally", None)
            if isinstance(tally, Tally):
                self._tallies.append(tally)
            attach = getattr(observer, "attach", None)  # observers that sample the server
            if attach is not None:
                attach(self)

    @property
    def handler(self) -> Handler:
        return self._handler

    def __call__(self) -> HttpProtocol:
        return HttpProtocol(self, self._loop)

    def _make_request(
        self,
        head: RequestHead,
        payload: StreamReader,
        protocol: HttpProtocol,
        task: asyncio.Task[None] | None,
    ) -> BaseRequest:
        return BaseRequest(
            head,
            payload,
            protocol,
            task,
            loop=self._loop,
            client_max_size=self.limits.client_max_size,
        )

    # -- ConnectionOwner ----------------------------------------------------------------

    def connection_made(self, protocol: HttpProtocol) -> None:
        protocol.cancel_on_disconnect = self._handler_cancellation
        self.connections.add(protocol)
        for callback in self._observers.connection_made:
            callback()

    def connection_lost(self, protocol: HttpProtocol) -> None:
        self.connections.discard(protocol)
        for callback in self._observers.connection_lost:
            callback()

    def protocol_error(self, protocol: HttpProtocol, error: HttpError) -> None:
        self._logger.debug("refused a request from %s: %s", protocol.peername, error)
        for callback in self._observers.parse_error:
            callback(error.status)

    # The Date header and request timing share one clock: ``head_tail()`` reads perf_counter
    # (a response head goes out), derives the Date from it while the wall-clock second lasts,
    # and leaves the reading in ``_sent_at``, the end time of a response sent in one write.

    def date_value(self) -> str:
        if _perf_counter() >= self._date_until:
            self._next_second()
        return self._date

    def head_tail(self) -> bytes:
        now = self._sent_at = _perf_counter()
        if now >= self._date_until:
            self._next_second()
        return self._tail

    def _next_second(self) -> None:
        wall = time.time()
        now = _perf_counter()
        self._date = self._dates.value(wall)
        self._tail = self._dates.tail(wall)
        self._date_until = now + 1.0 - wall % 1.0  # the clock reading when this second ends

    async def handle(  # noqa: C901 - the request cycle, whole: a helper call is measurable
        self, protocol: HttpProtocol, head: RequestHead, payload: StreamReader
    ) -> None:
        """One request cycle; the protocol runs these one at a time, in order."""
        self.requests_count += 1
        app_factory = self._app_factory
        request = (
            app_factory(head, payload, protocol, None)
            if app_factory is not None
            else self._request_factory(head, payload, protocol, None)
        )
        protocol.request = request
        protocol.head_sent = False
        finished = self._finished
        tallies = self._tallies
        access = self._access_logger
        timed = finished is not None or bool(tallies) or (access is not None and access.enabled)
        started = _perf_counter() if timed else 0.0
        ended = 0.0  # set when the response goes out in one write
        started_hook = self._started
        if started_hook is not None:
            started_hook(request)
        response: StreamResponse | None = None
        sent: StreamResponse | None = None  # the response, once it is (at least partly) out
        failure: BaseException | None = None
        try:
            intercept = self._intercept
            if intercept is not None and (response := intercept(request)) is not None:
                timed = False  # probes and the like: not logged or counted
            elif head.expect is not None and head.expect.lower() != "100-continue":
                response = self._expectation_failed(request, head.expect)
            else:
                # The handler, awaited here rather than in a coroutine of its own (one step less
                # per request); what it raised or returned becomes the response.
                try:
                    result: object = await self._handler(request)
                except (ConnectionError, asyncio.CancelledError):
                    raise
                except Exception as exc:
                    response = self._handler_error(request, exc)
                    if response is None:
                        raise  # part of a response is out: logged below, the connection closes
                else:
                    response = result if type(result) is _Response else self._checked(result)
            if _send_in_one_write(response, request):
                # Head and body went out in one write, timed by head_tail(): the end.
                ended = self._sent_at
            else:
                if not response.prepared:
                    await response.prepare(request)
                await response.write_eof()
            sent = response
        except (ConnectionError, asyncio.CancelledError) as exc:
            failure = exc  # the client left; nothing more can be sent
            if isinstance(exc, asyncio.CancelledError):
                raise
        except Exception as exc:
            # The handler prepared a response and then failed: the client has part of a
            # body, which only closing the connection can tell it.
            failure = exc
            protocol.force_close()
            self._logger.exception("Error handling request after the response started")
        finally:
            protocol.request = None
            if request._cleanups is not None:
                request._finish()
            if timed:
                if sent is None and response is not None and response.prepared:
                    sent = response
                if not ended and sent is not None:
                    # An upgraded request (WebSocket) lasts until its 101 went out; the
                    # session after it is not an HTTP request's duration.
                    ended = getattr(sent, "_switched_at", 0.0)
                duration = (ended or _perf_counter()) - started
                if finished is not None:
                    finished(request, sent, duration, failure)
                if tallies and sent is not None:
                    route = request._routed_route()  # None outside an Application
                    # The shared empty body of every bodiless request reads nothing, ever.
                    received = 0 if payload is _EMPTY_PAYLOAD else payload.total_bytes
                    for tally in tallies:
                        tally.add(
                            route,
                            sent._status,
                            head.method,
                            head.version,
                            protocol.scheme,
                            duration,
                            received,
                            sent._body_length,
                        )
                if access is not None and sent is not None and access.enabled:
                    access.log(request, sent, duration)

    def _expectation_failed(self, request: BaseRequest, expect: str) -> Response:
        request.protocol.force_close()
        return Response(status=417, text=f"417: Expectation Failed: {expect}")

    def _handler_error(self, request: BaseRequest, exc: Exception) -> StreamResponse | None:
        """The response to what the handler raised (an ``HTTPException`` is one); None when
        part of a response is already out (the caller re-raises)."""
        if isinstance(exc, HTTPException):
            return exc
        if isinstance(exc, HttpError):  # reading the body failed: bad framing, too slow, too big
            request.protocol.force_close()
            return Response(status=exc.status, text=f"{exc.status}: {exc.reason}: {exc.message}")
        if isinstance(exc, TimeoutError):
            self._logger.debug("handler timed out", exc_info=True)
            return Response(status=504, text="504: Gateway Timeout")
        if request.protocol.head_sent:
            return None
        self._logger.exception("Error handling request from %s", request.remote)
        return self._internal_error(request, exc)

    def _checked(self, response: object) -> StreamResponse:
        """What the handler returned, when it is not exactly a ``Response``: a response, or
        aiohttp's 500 for anything else."""
        if not isinstance(response, StreamResponse):
            if response is None:
                self._logger.error("Missing return statement on request handler")
            else:
                self._logger.error(
                    "Web-handler should return a response instance, got %r", response
                )
            # As aiohttp: HTTPInternalServerError's page; the connection stays open.
            return Response(status=500, text="500: Internal Server Error")
        if isinstance(response, HTTPException):
            warn_returned_exception()
        return response

    def _internal_error(self, request: BaseRequest, exc: BaseException) -> Response:
        """aiohttp's page for an unhandled exception: HTML when the client accepts
        ``text/html``, plain text otherwise, with the traceback in debug mode (the app's
        ``debug``, which follows the event loop's debug mode); the connection then closes."""
        title = "500 Internal Server Error"
        message = "Server got itself in trouble"
        trace = "".join(traceback.format_exception(exc)) if self._debug else ""
        if "text/html" in request.headers.get("Accept", ""):
            if trace:
                message = f"<h2>Traceback:</h2>\n<pre>{escape(trace)}</pre>"
            page = (
                f"<html><head><title>{title}</title></head><body>\n<h1>{title}</h1>"
                f"\n{message}\n</body></html>\n"
            )
            response = Response(status=500, text=page, content_type="text/html")
        else:
            response = Response(status=500, text=f"{title}\n\n{trace or message}")
        response.force_close()
        return response

    def pre_shutdown(self) -> None:
        """First stage of a stop: close keep-alive connections that are idle."""
        self.connections.close_idle()

    async def shutdown(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - aiohttp API
        """Stop every connection: busy ones finish (up to ``timeout``), the rest are cut."""
        await self.connections.shutdown(60.0 if timeout is None else timeout)

"""The HTTP and WebSocket observer: turns the web core's events into :class:`Store` updates.

Owns the mapping from a request to its label values: the method (unknown ones are
``_OTHER``), the route *template* (``/users/{id}``; unmatched requests share one fixed value,
never the raw path), the status, scheme and protocol version. Requests arrive through the
core's ``request_done`` hook as plain values the core reads natively: the observer reads no
attribute of a request or response. Per request it does one dictionary lookup by route (the
series of that route's latest request, confirmed by identity of the raw status, method,
version and scheme; label strings are made once per new series) and leaves the values pending
in the series, folded in bulk on reads and every ``FOLD_INTERVAL_S`` (series.py).
Active requests are not counted per request: :meth:`HttpObserver.sample_active` counts the
requests in progress on the server's connections when metrics are sent or scraped.
Imports ``forkloop.metrics.series`` only (requests and servers are duck-typed).
"""

from __future__ import annotations

import asyncio
from typing import Any

from .series import FIRST_DURATION, FOLD_INTERVAL_S, HTTP_METHODS, UNMATCHED_ROUTE, Store

__all__ = ["HttpObserver"]


def _method_label(method: str) -> str:
    return method if method in HTTP_METHODS else "_OTHER"


def _route_label(route: Any) -> str:
    resource = getattr(route, "resource", None)
    canonical = getattr(resource, "canonical", None) if resource is not None else None
    return canonical if isinstance(canonical, str) and canonical else UNMATCHED_ROUTE


def _labels(key: Any) -> tuple[str, str, str, str, str]:
    method, route, status, version, scheme = key
    return (
        _method_label(method),
        _route_label(route),
        str(status),
        scheme,
        f"{version[0]}.{version[1]}",
    )


class HttpObserver:
    """Implements ``forkloop.core.hooks.Observer`` for the metrics store."""

    __slots__ = ("_by_route", "_fold_timer", "servers", "store")

    def __init__(self, store: Store) -> None:
        self.store = store
        self.servers: list[Any] = []
        self._by_route: dict[Any, Any] = {}  # route -> the series of its latest request
        self._fold_timer: asyncio.TimerHandle | None = None

    def attach(self, server: Any) -> None:
        self.servers.append(server)

    def connection_made(self) -> None:
        # Requests leave their values pending in the store (see series.py): fold them every
        # FOLD_INTERVAL_S while there are connections, so pending lists stay short.
        if self._fold_timer is None:
            loop = asyncio.get_running_loop()
            self._fold_timer = loop.call_later(FOLD_INTERVAL_S, self._fold_tick, loop)

    def _fold_tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self.store.fold()
        if any(len(server.connections) for server in self.servers):
            self._fold_timer = loop.call_later(FOLD_INTERVAL_S, self._fold_tick, loop)
        else:
            self._fold_timer = None  # the next connection starts it again

    def sample_active(self) -> None:
        """Count the requests in progress, by method and scheme, into the store's gauge."""
        active: dict[tuple[str, str], int] = {}
        for server in self.servers:
            for connection in server.connections:
                request = connection.request
                if request is not None:
                    key = (_method_label(request.method), connection.scheme)
                    active[key] = active.get(key, 0) + 1
        self.store.set_active(active)

    def request_done(
        self,
        match_info: Any,
        status: int,
        method: str,
        version: Any,
        scheme: str,
        duration_s: float,
        request_bytes: int,
        response_bytes: int,
    ) -> None:
        route = match_info._route if match_info is not None else None
        try:
            series = self._by_route[route]
        except KeyError:
            series = self._slow(route, status, method, version, scheme)
        else:
            if (
                series.status != status
                or series.method is not method
                or series.versions is not version
                or series.scheme is not scheme
            ):
                series = self._slow(route, status, method, version, scheme)
        # _RequestSeries.observe, inlined: this runs once per request.
        series.dsum += duration_s
        if duration_s > FIRST_DURATION:
            series.dslow.append(duration_s)
        if request_bytes:
            series.qpending.append(request_bytes)
        series.spending.append(response_bytes)

    def _slow(self, route: Any, status: int, method: str, version: Any, scheme: str) -> Any:
        """Find or create the series; remember it as the latest of a long-lived route."""
        if route is not None and getattr(route, "resource", None) is None:
            # The router's 404/405 route is made per request (so the lookup above misses with
            # a KeyError each time): cache it under None, which has the same label.
            route = None
        key = (method, route, status, version, scheme)
        series = self.store.series_for(key, _labels, (method, version, scheme, status))
        if route in self._by_route or len(self._by_route) < 10_000:
            self._by_route[route] = series  # the latest method/version/scheme/status seen
        return series

    def parse_error(self, status: int) -> None:
        errors = self.store.parse_errors
        key = str(status)
        errors[key] = errors.get(key, 0) + 1
        self.store.scalar_changed()

    def ws_opened(self, request: Any) -> None:
        self.store.ws_open += 1
        self.store.scalar_changed()

    def ws_closed(self, request: Any) -> None:
        self.store.ws_open -= 1
        self.store.scalar_changed()

    def ws_message(self, request: Any, direction: str) -> None:
        messages = self.store.ws_messages
        messages[direction] = messages.get(direction, 0) + 1
        self.store.scalar_changed()

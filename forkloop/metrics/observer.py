"""The HTTP and WebSocket observer: turns the web core's events into :class:`Store` updates.

Owns the mapping from a request to its label values: the method (unknown ones are
``_OTHER``), the route *template* (``/users/{id}``; unmatched requests share one fixed value,
never the raw path), the status, scheme and protocol version. Requests are not seen one by
one: the server adds each to the observer's ``tally`` (``forkloop.core.web.tally``, compiled:
a route lookup, a sum and appends, without a Python call), and the store takes the
tally in before every read and every ``FOLD_INTERVAL_S``, when the entries become series
(label strings made once per series) and their values are folded in bulk (series.py).
Active requests are not counted per request: :meth:`HttpObserver.sample_active` counts the
requests in progress on the server's connections when metrics are sent or scraped.
Imports ``forkloop.metrics.series`` and the core's tally (servers are duck-typed).
"""

from __future__ import annotations

import asyncio
from time import monotonic
from typing import Any

from forkloop.core.web.tally import Tally

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

    __slots__ = ("_fold_timer", "_ws_started", "servers", "store", "tally")

    def __init__(self, store: Store) -> None:
        self.store = store
        self.servers: list[Any] = []
        # The server adds every answered request here natively (forkloop.core.web.tally);
        # the store takes them in before each read.
        self.tally = Tally(FIRST_DURATION)
        store.sources.append(self.take_tally)
        self._fold_timer: asyncio.TimerHandle | None = None
        # Open WebSocket sessions: id(request) -> when the session opened (monotonic).
        self._ws_started: dict[int, float] = {}

    def attach(self, server: Any) -> None:
        self.servers.append(server)
        admission = getattr(server, "admission", None)  # overload protection, when on
        if admission is not None:
            admission.queue_time_listeners.append(self._queue_time)

    def _queue_time(self, seconds: float) -> None:
        self.store.queue.observe(seconds)
        self.store.scalar_changed()

    def _sample_shed(self) -> None:
        """Copy the servers' counts of requests shed (admission.py) into the store. Shed
        requests never reach the request observers: they are counted here, by reason."""
        shed: dict[str, int] = {}
        for server in self.servers:
            admission = getattr(server, "admission", None)
            if admission is not None:
                for reason, count in admission.shed.items():
                    shed[reason] = shed.get(reason, 0) + count
        if shed and shed != self.store.shed:
            self.store.shed = shed
            self.store.scalar_changed()

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
        self._sample_fd_pressure()
        self._sample_shed()

    def _sample_fd_pressure(self) -> None:
        """Copy the connection registries' descriptor-shortage counters into the store."""
        exhausted = closed = 0
        for server in self.servers:
            registry = server.connections
            exhausted += getattr(registry, "fd_exhausted", 0)
            closed += getattr(registry, "closed_for_room", 0)
        if exhausted and self.store.fd_pressure.get("exhausted") != exhausted:
            self.store.fd_pressure = {"exhausted": exhausted, "closed": closed}
            self.store.scalar_changed()

    def take_tally(self) -> None:
        """Move the requests the server added to ``tally`` into the store's series (a store
        source: runs before every read of the store)."""
        store = self.store
        for entry in self.tally.take():
            key = (entry.method, entry.route, entry.status, entry.version, entry.scheme)
            store.series_for(key, _labels).add(
                entry.duration_sum, entry.slow, entry.request_sizes, entry.response_sizes
            )

    def parse_error(self, status: int) -> None:
        errors = self.store.parse_errors
        key = str(status)
        errors[key] = errors.get(key, 0) + 1
        self.store.scalar_changed()

    def ws_opened(self, request: Any) -> None:
        self._ws_started[id(request)] = monotonic()
        self.store.ws_open += 1
        self.store.scalar_changed()

    def ws_closed(self, request: Any) -> None:
        # A session's lifetime goes to its own histogram: the request's duration ended with
        # its 101 response (the server times it so).
        opened = self._ws_started.pop(id(request), None)
        if opened is not None:
            self.store.ws_sessions.observe(monotonic() - opened)
        self.store.ws_open -= 1
        self.store.scalar_changed()

    def ws_message(self, request: Any, direction: str) -> None:
        messages = self.store.ws_messages
        messages[direction] = messages.get(direction, 0) + 1
        self.store.scalar_changed()

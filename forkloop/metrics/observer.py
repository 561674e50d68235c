"""The HTTP and WebSocket observer: turns the web core's events into :class:`Store` updates.

Owns the mapping from a request to its label values: the method (unknown ones are
``_OTHER``), the route *template* (``/users/{id}``; unmatched requests share one fixed value,
never the raw path), the status, scheme and protocol version. Per request it builds one key of
raw values and does one dictionary lookup; label strings are made once per new series. Active
requests are not counted per request: :meth:`HttpObserver.sample_active` counts the requests in
progress on the server's connections when metrics are sent or scraped.
Imports ``forkloop.metrics.series`` only (requests and servers are duck-typed).
"""

from __future__ import annotations

from typing import Any

from .series import HTTP_METHODS, UNMATCHED_ROUTE, Store

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

    __slots__ = ("_by_route", "servers", "store")

    def __init__(self, store: Store) -> None:
        self.store = store
        self.servers: list[Any] = []
        self._by_route: dict[Any, dict[int, Any]] = {}

    def attach(self, server: Any) -> None:
        self.servers.append(server)

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

    def request_finished(
        self, request: Any, response: Any, duration_s: float, exc: BaseException | None
    ) -> None:
        if response is None:
            return  # the client left before any response: no status to count it under
        match_info = request._match_info
        route = match_info._route if match_info is not None else None
        head = request._head
        status = response._status
        scheme = request._protocol.scheme
        by_status = self._by_route.get(route)
        series = by_status.get(status) if by_status is not None else None
        if (
            series is None
            or series.method is not head.method
            or series.versions is not head.version
            or series.scheme is not scheme
        ):
            series = self._slow(route, head, status, scheme)
        series.observe(duration_s, request._payload.total_bytes, response._body_length)

    def _slow(self, route: Any, head: Any, status: int, scheme: str) -> Any:
        """Find or create the series; remember it under a long-lived route object."""
        key = (head.method, route, status, head.version, scheme)
        raw = (head.method, head.version, scheme)
        if getattr(route, "resource", None) is None:  # a 404/405 of its own: not long-lived
            return self.store.series_for(key, _labels, raw, cache=False)
        series = self.store.series_for(key, _labels, raw)
        by_status = self._by_route.get(route)
        if by_status is None:
            if len(self._by_route) >= 10_000:
                return series
            by_status = self._by_route[route] = {}
        by_status[status] = series  # the latest method/version/scheme seen for this pair
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

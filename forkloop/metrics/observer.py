"""The HTTP and WebSocket observer: turns the web core's events into :class:`Store` updates.

Owns the mapping from a request to its label values: the method (unknown ones are
``_OTHER``), the route *template* (``/users/{id}``; unmatched requests share one fixed value,
never the raw path), the status, scheme and protocol version. Per request it does a few cached
lookups and increments. Imports ``forkloop.metrics.series`` only (requests are duck-typed).
"""

from __future__ import annotations

from typing import Any, Final

from .series import HTTP_METHODS, UNMATCHED_ROUTE, Store

__all__ = ["HttpObserver"]

_VERSIONS: Final = {(1, 1): "1.1", (1, 0): "1.0"}


class HttpObserver:
    """Implements ``forkloop.core.hooks.Observer`` for the metrics store."""

    __slots__ = ("_routes", "_statuses", "store")

    def __init__(self, store: Store) -> None:
        self.store = store
        self._routes: dict[object, str] = {}
        self._statuses: dict[int, str] = {}

    @staticmethod
    def _active_key(request: Any) -> tuple[str, str]:
        method = request.method
        return (method if method in HTTP_METHODS else "_OTHER", request.scheme)

    def request_started(self, request: Any) -> None:
        self.store.request_started(self._active_key(request))

    def request_finished(
        self, request: Any, response: Any, duration_s: float, exc: BaseException | None
    ) -> None:
        active_key = self._active_key(request)
        if response is None:
            self.store.request_aborted(active_key)
            return
        status = response.status
        status_text = self._statuses.get(status)
        if status_text is None:
            status_text = self._statuses[status] = str(status)
        self.store.request_finished(
            active_key,
            (
                active_key[0],
                self._route(request),
                status_text,
                active_key[1],
                _VERSIONS.get(request.version) or f"{request.version[0]}.{request.version[1]}",
            ),
            duration_s,
            request.content.total_bytes,
            response.body_length,
        )

    def _route(self, request: Any) -> str:
        match_info = getattr(request, "_match_info", None)
        if match_info is None:
            return UNMATCHED_ROUTE
        route = getattr(match_info, "route", None)
        template = self._routes.get(route)
        if template is None:
            resource = getattr(route, "resource", None)
            canonical = getattr(resource, "canonical", None) if resource is not None else None
            template = canonical if isinstance(canonical, str) and canonical else UNMATCHED_ROUTE
            if len(self._routes) < 10_000:
                self._routes[route] = template
        return template

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

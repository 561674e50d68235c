"""Per-request figures the server adds up natively, for an observer to take in bulk.

Owns :class:`Tally` and :class:`TallyEntry`. An observer that exposes a ``tally`` attribute
(a :class:`Tally`) gets every request that sent a response added to it by the low-level server,
in compiled code and without a Python-level call per request; it takes the entries when it
needs current figures (:meth:`Tally.take`). The metrics observer does (``forkloop.metrics``).

Per request: one dictionary lookup by route (the entry of that route's latest request,
confirmed by its status, method, version and scheme), a sum and list appends. Entries
are keyed by identity of the raw values; the observer maps them to labels. A route without a
resource (the router's 404/405 route, made per request) counts under None.
Imports nothing of ours; compiled by mypyc (setup.py).
"""

from __future__ import annotations

__all__ = ["Tally", "TallyEntry"]


class TallyEntry:
    """The requests of one (route, status, method, version, scheme) since the last take."""

    def __init__(
        self, route: object, status: int, method: str, version: object, scheme: str
    ) -> None:
        self.route = route
        self.status = status
        self.method = method
        self.version = version
        self.scheme = scheme
        self.duration_sum = 0.0
        self.slow: list[float] = []  # durations above the tally's slow_after, one each
        self.request_sizes: list[int] = []  # request body sizes, zeros left out
        self.response_sizes: list[int] = []  # response body sizes: one per request, the count


class Tally:
    """Requests added by the server (:meth:`add`), taken by their observer (:meth:`take`)."""

    def __init__(self, slow_after: float, max_routes: int = 10_000) -> None:
        self.slow_after = slow_after  # durations above it are kept one by one
        # Routes remembered with their latest entry, at most; beyond, requests still count.
        self.max_routes = max_routes
        self._latest: dict[object, TallyEntry] = {}  # route -> entry of its latest request
        self._entries: dict[tuple[object, int, str, object, str], TallyEntry] = {}

    def add(
        self,
        route: object,
        status: int,
        method: str,
        version: object,
        scheme: str,
        duration_s: float,
        request_bytes: int,
        response_bytes: int,
    ) -> None:
        entry = self._latest.get(route)
        if (
            entry is None
            or entry.status != status
            or entry.method is not method
            or entry.version is not version
            or entry.scheme is not scheme
        ):
            entry = self._entry(route, status, method, version, scheme)
        entry.duration_sum += duration_s
        if duration_s > self.slow_after:
            entry.slow.append(duration_s)
        if request_bytes:
            entry.request_sizes.append(request_bytes)
        entry.response_sizes.append(response_bytes)

    def _entry(
        self, route: object, status: int, method: str, version: object, scheme: str
    ) -> TallyEntry:
        if route is not None and getattr(route, "resource", None) is None:
            route = None  # the router's 404/405 route, made per request: one entry for all
        key = (route, status, method, version, scheme)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = TallyEntry(route, status, method, version, scheme)
        if route in self._latest or len(self._latest) < self.max_routes:
            self._latest[route] = entry
        return entry

    def take(self) -> list[TallyEntry]:
        """The entries added since the last take (each with at least one request); the tally
        starts again empty."""
        taken = list(self._entries.values())
        self._entries = {}
        self._latest = {}
        return taken

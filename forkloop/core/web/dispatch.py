"""The compiled per-request entry of an ``Application``: a remembered plain route, else ``_handle``.

Owns :class:`AppDispatch`, what the server calls with each request of an app served by the
runner (``Application._server_handler``). It is one branch of ``Application._handle`` chosen
by one predicate, in compiled code (setup.py) and without a coroutine of its own (it returns
the handler's): a ``Request`` (exact type) whose request-target is a path the frozen router
has already answered with a plain route for that method (``UrlDispatcher.remembered_route``:
no query, no percent-escape) and that carries no ``Expect`` header. Such a request gets the
same match info ``_handle`` gives it (built when first read: ``Request._routing``) and goes
to the same handler (the route's, or its prebuilt middleware chain); anything else (a first
request to a path, a query string, dynamic routes, sub-applications' routes, ``Expect``, a
request of another class) is ``Application._handle`` itself. Imports ``core.web.request``
and ``core.web.urldispatcher``.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Callable
from typing import Any, Final

from .request import LAZY_HOOKLESS, Request
from .urldispatcher import _RoutedMatchInfo

__all__ = ["AppDispatch", "routed_match_info"]

_Request: Final = Request
_MatchInfo: Final = _RoutedMatchInfo
_Coroutine: Final = types.CoroutineType


def routed_match_info(route: Any, apps: tuple[Any, ...], app: Any) -> Any:
    """The frozen match info of a remembered plain route, the one both ``AppDispatch`` and
    ``Application._handle`` give a request routed by the router's memory."""
    match_info = _MatchInfo()
    match_info._route = route
    match_info._apps = apps
    match_info._current_app = app
    match_info._frozen = True
    return match_info


class AppDispatch:
    """``Application._handle`` with the remembered-route branch compiled; made by
    ``Application._server_handler`` for a frozen app with its own ``UrlDispatcher``."""

    def __init__(
        self,
        app: Any,
        handle: Callable[[Any], Awaitable[Any]],
        await_any: Callable[[Any], Awaitable[Any]],
        plain_hits: dict[str, dict[str, Any]],
        chains: dict[Any, Any] | None,
        apps: tuple[Any, ...],
    ) -> None:
        self.app = app
        self._handle = handle  # the general path: the app's own _handle
        # Awaits, in interpreted code, what a handler returned that is not a coroutine: a
        # compiled ``await`` would also iterate a bare generator, which Python refuses.
        self._await_any = await_any
        self._hits = plain_hits  # the router's remembered answers (filled by _handle)
        self._chains = chains  # route -> middleware chain; None when no middleware runs
        self._apps = apps  # the app's own (app,), as _handle stores it
        # Its on_response_prepare signal, frozen with the app: empty stays empty.
        self._hookless = not app.on_response_prepare

    def match_info_for(self, route: Any) -> Any:
        """The match info of a request this dispatch routed to ``route`` (built on demand
        by ``Request._routing``)."""
        return routed_match_info(route, self._apps, self.app)

    def __call__(self, request: Any) -> Awaitable[Any]:
        """The awaitable answering ``request``: its handler's coroutine itself (no coroutine
        of its own around it: one step less per request), or ``_handle``'s."""
        if type(request) is _Request:
            routed: Request = request
            head = routed._head
            target = head.target
            by_method = self._hits.get(target)
            if by_method is not None and head.expect is None:
                route = by_method.get(head.method)
                # No "?" or "%" test: the router remembers no path holding either, so a
                # target equal to a remembered path is that path (request_path() unchanged).
                if route is not None:
                    chains = self._chains
                    handler = route._handler if chains is None else chains.get(route)
                    if handler is not None:
                        # The match info is built when first asked for (Request._routing):
                        # the same object _handle gives, at no cost to a handler that never
                        # reads it.
                        routed._lazy_route = route
                        routed._lazy_dispatch = self
                        if self._hookless:
                            routed._hookless = LAZY_HOOKLESS
                        awaitable = handler(routed)
                        if type(awaitable) is _Coroutine:
                            return awaitable
                        return self._await_any(awaitable)
        return self._handle(request)

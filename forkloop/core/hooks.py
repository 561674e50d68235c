"""The observer protocol: how metrics and worker heartbeats watch the server without wrapping it.

Owns the names and signatures of the events the web core reports, and the cheap dispatch table
built once per server (for the per-request events also one callable that reaches every observer,
or None, so a request pays no loop when one observer listens and nothing when none does).
Observers are plain objects; each implements any subset of the methods of :class:`Observer`.
The core never imports an observer's module (prometheus_client stays out).
Imports nothing of ours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

__all__ = ["EVENTS", "OBSERVERS_KEY", "Observer", "Observers"]

OBSERVERS_KEY: Final = "forkloop.observers"
"""Application key holding a list of observers, added e.g. by ``forkloop.metrics.setup(app)``."""

EVENTS: Final = (
    "connection_made",
    "connection_lost",
    "request_started",
    "request_finished",
    "parse_error",
    "ws_opened",
    "ws_closed",
    "ws_message",
)


class Observer(Protocol):
    """Every method is optional; ``request`` is a ``forkloop.web.BaseRequest``.

    ``attach(server)`` is called once with the low-level server, for observers that sample it
    (``server.connections``; each connection's ``request`` is the one in progress, or None).

    An observer may also have a ``tally`` attribute, a ``forkloop.core.web.tally.Tally``: the
    server adds every request that sent a response to it, natively (no call per request).
    """

    def attach(self, server: Any) -> None: ...
    def connection_made(self) -> None: ...
    def connection_lost(self) -> None: ...
    def request_started(self, request: Any) -> None: ...
    def request_finished(
        self, request: Any, response: Any, duration_s: float, exc: BaseException | None
    ) -> None:
        """``response`` is None when the client left before a response was sent."""

    def parse_error(self, status: int) -> None: ...
    def ws_opened(self, request: Any) -> None: ...
    def ws_closed(self, request: Any) -> None: ...
    def ws_message(self, request: Any, direction: str) -> None:
        """``direction`` is ``"received"`` or ``"sent"``."""


def _fan_out(methods: tuple[Callable[..., None], ...]) -> Callable[..., None] | None:
    """One callable for ``methods``: None for none, the method itself for one."""
    if not methods:
        return None
    if len(methods) == 1:
        return methods[0]

    def call_all(*args: Any) -> None:
        for method in methods:
            method(*args)

    return call_all


class Observers:
    """Per event, the tuple of observer methods to call (empty when nobody listens).

    ``started`` and ``finished`` call every ``request_started`` and ``request_finished``
    method; they are None when there are none.
    """

    __slots__ = ("active", "finished", "started", *EVENTS)

    connection_made: tuple[Callable[[], None], ...]
    connection_lost: tuple[Callable[[], None], ...]
    request_started: tuple[Callable[[Any], None], ...]
    request_finished: tuple[Callable[[Any, Any, float, BaseException | None], None], ...]
    parse_error: tuple[Callable[[int], None], ...]
    ws_opened: tuple[Callable[[Any], None], ...]
    ws_closed: tuple[Callable[[Any], None], ...]
    ws_message: tuple[Callable[[Any, str], None], ...]
    started: Callable[[Any], None] | None
    finished: Callable[[Any, Any, float, BaseException | None], None] | None

    def __init__(self, observers: Iterable[object] = ()) -> None:
        listed = list(observers)
        for event in EVENTS:
            methods = tuple(
                getattr(observer, event) for observer in listed if hasattr(observer, event)
            )
            setattr(self, event, methods)
        self.active = bool(listed)
        self.started = _fan_out(self.request_started)
        self.finished = _fan_out(self.request_finished)

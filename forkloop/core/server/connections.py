"""The live-connection registry and the staged graceful shutdown.

Owns the set of open connections of one server and the order in which a stop treats them:
every connection is told to stop (idle ones close at once; busy ones finish their current
response with ``Connection: close``, then close); the registry waits, up to a deadline, for the
set to empty; the handlers still running are cancelled and waited for up to the same
deadline again (aiohttp's order), then what remains is aborted. Stopping the listening sockets
comes before this and belongs to the sites.

Also owns what happens when file descriptors run short (issue 15). Connections are kept in the
order they came, and ``make_room()`` closes the oldest idle ones (no request in progress, not
upgraded). It runs when a listener's accept fails with EMFILE/ENFILE (``workers/accept.py``)
and, before that can happen, when a new connection brings the count past ``fd_budget``: the
process's soft ``RLIMIT_NOFILE`` less a reserve for listeners, files and the app. The budget
works with any event loop's own server (asyncio pauses its accepts for a second on EMFILE;
uvloop may close the listener), so a flood of idle connections costs the oldest idle ones their
connection rather than costing everyone the service. Each event is counted
(``fd_exhausted``, ``closed_for_room``) and logged at most once per ``LOG_INTERVAL_S``.
Imports ``core.server.protocol`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import time
from collections.abc import Iterator
from typing import Final

from .protocol import HttpProtocol

__all__ = ["FD_RESERVE", "LOG_INTERVAL_S", "ConnectionRegistry", "default_fd_budget"]

log = logging.getLogger("forkloop.server")
LOG_INTERVAL_S: Final = 10.0
# File descriptors kept back from connections: listeners, log files, the app's own files and
# sockets, and one accept batch (asyncio's server accepts up to its backlog, 128 for a site,
# before any of those connections is registered here). The larger of this and an eighth of
# the limit.
FD_RESERVE: Final = 160


def default_fd_budget() -> int:
    """Connections one process may hold before the oldest idle ones are closed."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return 1 << 30
    return max(8, soft - max(FD_RESERVE, soft // 8))


class ConnectionRegistry:
    """The open connections of one server."""

    __slots__ = (
        "_connections",
        "_emptied",
        "_logged_at",
        "_unlogged",
        "closed_for_room",
        "fd_budget",
        "fd_exhausted",
    )

    def __init__(self, fd_budget: int | None = None) -> None:
        # A dict, not a set: iteration follows arrival, so the oldest come first.
        self._connections: dict[HttpProtocol, None] = {}
        self._emptied: asyncio.Event | None = None
        self.fd_budget = default_fd_budget() if fd_budget is None else fd_budget
        self.fd_exhausted = 0  # times descriptors ran short (EMFILE/ENFILE, or the budget)
        self.closed_for_room = 0  # idle connections closed to make room
        self._logged_at = float("-inf")
        self._unlogged = 0

    def add(self, protocol: HttpProtocol) -> None:
        self._connections[protocol] = None
        if len(self._connections) > self.fd_budget:
            self.make_room(f"{len(self._connections)} connections, budget {self.fd_budget}")

    def discard(self, protocol: HttpProtocol) -> None:
        self._connections.pop(protocol, None)
        if not self._connections and self._emptied is not None:
            self._emptied.set()

    def make_room(self, reason: str, count: int = 0) -> int:
        """File descriptors ran short: close up to ``count`` (default: 1/32 of the open ones,
        at least 2) of the oldest idle connections; return how many were closed."""
        self.fd_exhausted += 1
        connections = self._connections
        want = count or max(2, len(connections) // 32)
        newest = next(reversed(connections)) if connections else None
        closed = 0
        for protocol in list(connections):
            if closed >= want:
                break
            # The connection that just arrived is not traded for an older idle one.
            if protocol is newest or not protocol.idle or protocol.upgraded or protocol.closing:
                continue
            protocol.closing = True
            protocol.abort()
            closed += 1
        self.closed_for_room += closed
        now = time.monotonic()
        if now - self._logged_at >= LOG_INTERVAL_S:
            more = f" ({self._unlogged} more times since the last report)" if self._unlogged else ""
            log.warning(
                "file descriptors short (%s): closed %d idle connection(s) of %d%s",
                reason,
                closed,
                len(connections),
                more,
            )
            self._logged_at = now
            self._unlogged = 0
        else:
            self._unlogged += 1
        return closed

    def __len__(self) -> int:
        return len(self._connections)

    def __iter__(self) -> Iterator[HttpProtocol]:
        return iter(list(self._connections))

    @property
    def busy(self) -> int:
        return sum(1 for protocol in self._connections if not protocol.idle)

    def close_idle(self) -> None:
        """Close every connection with no request in progress (the first stage of a stop)."""
        for protocol in list(self._connections):
            if protocol.idle and not protocol.upgraded:
                protocol.begin_shutdown()

    async def shutdown(self, timeout_s: float) -> None:
        """Stop every connection; wait up to ``timeout_s`` for them to finish; abort the rest."""
        for protocol in list(self._connections):
            protocol.begin_shutdown()
        if self._connections:
            if self._emptied is None:  # shared by concurrent shutdown() calls
                self._emptied = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._emptied.wait(), timeout_s)
        # As aiohttp: a handler still running is cancelled and gets up to ``timeout_s`` more to
        # end, on an open connection (it may catch the cancellation, clean up, even answer);
        # only then is what remains cut, so app cleanup never runs beside a live handler.
        tasks = {t for p in self._connections if (t := p.task) is not None and not t.done()}
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)
        for protocol in list(self._connections):
            protocol.abort()
        if self._connections:
            # Give aborted connections one loop turn to run connection_lost.
            await asyncio.sleep(0)

"""The live-connection registry and the staged graceful shutdown.

Owns the set of open connections of one server and the order in which a stop treats them:
every connection is told to stop (idle ones close at once; busy ones finish their current
response with ``Connection: close``, then close); the registry waits, up to a deadline, for the
set to empty; the handlers still running are cancelled and waited for up to the same
deadline again (aiohttp's order), then what remains is aborted. Stopping the listening sockets comes
before this and belongs to the sites. Imports ``core.server.protocol`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from .protocol import HttpProtocol

__all__ = ["ConnectionRegistry"]


class ConnectionRegistry:
    """The open connections of one server."""

    __slots__ = ("_connections", "_emptied")

    def __init__(self) -> None:
        self._connections: set[HttpProtocol] = set()
        self._emptied: asyncio.Event | None = None

    def add(self, protocol: HttpProtocol) -> None:
        self._connections.add(protocol)

    def discard(self, protocol: HttpProtocol) -> None:
        self._connections.discard(protocol)
        if not self._connections and self._emptied is not None:
            self._emptied.set()

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

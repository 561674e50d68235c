"""Balanced accepting on a listening socket shared by every worker.

Owns: how a worker takes connections from the shared accept queue. Every worker's event loop
watches the same listening socket; when a connection arrives all of them wake and race for it.
An event loop's own accept loop takes everything queued at once, so in a burst the first
worker to run grabs most connections and keeps them for their keep-alive life. Here a worker
accepts a few at a time and, before each, looks at the shared scoreboard
(:mod:`forkloop.supervisor.scoreboard`): while it holds two or more connections more than the
least-loaded live sibling it steps aside for ``DEFER_S`` (stops watching the socket) and then
accepts one anyway -- so balance never starves the queue, and a sibling whose loop is stuck
(stale heartbeat stamp) does not count.

Accepted sockets go to the engine through ``loop.connect_accepted_socket(runner.server,
sock)``, the same path the drain uses for connections still queued when a worker stops.

When accept fails for want of file descriptors (EMFILE/ENFILE), the worker closes the oldest
idle connections of its server (``ConnectionRegistry.make_room``, which counts and logs it
once per interval), stops watching the socket for ``RETRY_S`` and tries again: it keeps
serving instead of spinning on a readable socket it cannot accept from. ENOBUFS/ENOMEM pause
accepting for ``PAUSE_S``.

Imports: stdlib and :mod:`forkloop.supervisor.scoreboard`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from forkloop.supervisor.scoreboard import Scoreboard

__all__ = ["BalancedAcceptor"]

log = logging.getLogger("forkloop.worker")
DEFER_S = 0.005
BATCH = 8
REFRESH_S = 0.25
RETRY_S = 0.01  # after making room
PAUSE_S = 0.1  # when no room could be made, or the kernel is short of memory
_NO_FD = (errno.EMFILE, errno.ENFILE)


class BalancedAcceptor:
    """Accepts from one shared listening socket; create it inside the running loop."""

    def __init__(
        self,
        sock: socket.socket,
        factory: Callable[[], asyncio.Protocol],
        *,
        ssl_context: ssl.SSLContext | None,
        connections: Callable[[], int],
        scoreboard: Scoreboard | None,
        slot: int,
        fresh_s: float,
    ) -> None:
        self.sock = sock
        self.factory = factory
        self.ssl = ssl_context
        self.connections = connections
        self.scoreboard = scoreboard
        self.slot = slot
        self.fresh_s = fresh_s
        self.loop = asyncio.get_running_loop()
        self.watching = False
        self.stopped = False
        self.accepted = 0
        self.deferrals = 0
        self._owe_one = False  # after a deferral, accept at least one connection
        self._siblings: list[int] = []
        self._refresh_at = 0.0
        self._pending: set[asyncio.Task[Any]] = set()
        self._error_logged_at = float("-inf")

    def start(self) -> None:
        self.sock.setblocking(False)
        self._watch()

    def _watch(self) -> None:
        if self.stopped or self.watching:
            return
        self.loop.add_reader(self.sock.fileno(), self._on_readable)
        self.watching = True

    def _unwatch(self) -> None:
        if self.watching:
            self.loop.remove_reader(self.sock.fileno())
            self.watching = False

    def stop(self) -> None:
        """Stop accepting (the socket stays open for ``accept_queued``)."""
        self.stopped = True
        self._unwatch()

    def _busier_than_siblings(self) -> bool:
        board = self.scoreboard
        if board is None:
            return False
        now = time.monotonic()
        if now >= self._refresh_at:
            self._siblings = [
                slot for slot, _, _ in board.live(self.fresh_s, now=now) if slot != self.slot
            ]
            self._refresh_at = now + REFRESH_S
        if not self._siblings:
            return False
        least = None
        for slot in self._siblings:
            pid, count, stamp = board.read(slot)
            if pid and now - stamp <= self.fresh_s and (least is None or count < least):
                least = count
        # Connections accepted but not yet set up count too: a batch is not seen at once.
        mine = self.connections() + len(self._pending)
        return least is not None and mine >= least + 2

    def _on_readable(self) -> None:
        for _ in range(BATCH):
            if self._owe_one:
                self._owe_one = False
            elif self._busier_than_siblings():
                self.deferrals += 1
                self._unwatch()
                self._owe_one = True
                self.loop.call_later(DEFER_S, self._watch)
                return
            if not self._accept_one():
                return

    def _accept_one(self) -> bool:
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            if exc.errno in _NO_FD or exc.errno in (errno.ENOBUFS, errno.ENOMEM):
                self._pause_after(exc)
            return False
        self.accepted += 1
        self._hand_over(conn)
        return True

    def _pause_after(self, exc: OSError) -> None:
        closed = 0
        registry = getattr(self.factory, "connections", None)
        make_room = getattr(registry, "make_room", None)
        if exc.errno in _NO_FD and make_room is not None:
            closed = make_room(f"accept: {exc.strerror}")
        else:
            now = time.monotonic()
            if now - self._error_logged_at >= 10.0:
                log.error("accept failed (%s): pausing accepts for %ss", exc.strerror, PAUSE_S)
                self._error_logged_at = now
        self._unwatch()
        self.loop.call_later(RETRY_S if closed else PAUSE_S, self._watch)

    def _hand_over(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        if conn.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = self.loop.create_task(self._connect(conn))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(self.factory, conn, ssl=self.ssl)
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            log.debug("connection setup failed: %s", exc)
            conn.close()

    async def accept_queued(self, timeout_s: float = 1.0) -> int:
        """After ``stop``: take what the kernel already queued and hand it over (waiting up
        to ``timeout_s`` for TLS handshakes). The caller closes the socket."""
        count = 0
        while self._accept_one():
            count += 1
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=timeout_s)
        return count

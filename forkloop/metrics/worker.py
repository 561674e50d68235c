"""The worker side of metrics under the supervisor: ship the store's changes to the master.

Owns the sending cadence (every ``interval_s`` from the event loop, and when the last connection
closes, so a worker's last requests arrive before it exits) and the batching
of changed series into pipe messages of at most ``PIPE_BUF`` bytes (atomic writes). A send the
pipe refuses is retried at the next tick: values are cumulative, so nothing is counted twice.
Imports ``forkloop.metrics`` and the supervisor's pipe protocol.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from forkloop.supervisor.heartbeat import MAX_MESSAGE_BYTES, HeartbeatWriter

from .observer import HttpObserver
from .series import Store

__all__ = ["PipeSender", "WorkerMetricsObserver"]

_ENVELOPE = len(b'{"v":1,"k":"metrics","s":[],"slot":000,"pid":0000000}\n')


class PipeSender:
    """Sends a store's changed series over the worker's pipe as ``metrics`` messages."""

    def __init__(
        self,
        store: Store,
        writer: HeartbeatWriter,
        interval_s: float = 0.5,
        sample: Callable[[], None] | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.sample = sample
        self.fields = fields or {}  # sent with every message (slot and pid on a shared pipe)
        self.writer = writer
        self.interval_s = interval_s
        self._timer: asyncio.TimerHandle | None = None
        self.messages_sent = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is None:
            self._timer = loop.call_later(self.interval_s, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.sample is not None:
            self.sample()
        self.flush()
        self._timer = loop.call_later(self.interval_s, self._tick, loop)

    def flush(self) -> bool:
        """Send everything changed since the last successful send; False if some is pending."""
        store = self.store
        complete = True
        batch: list[list[Any]] = []
        size = _ENVELOPE
        for record in store.changed():
            encoded = len(json.dumps(record, separators=(",", ":"))) + 1
            if batch and size + encoded > MAX_MESSAGE_BYTES:
                complete &= self._send(batch)
                batch, size = [], _ENVELOPE
            batch.append(record)
            size += encoded
        if batch:
            complete &= self._send(batch)
        return complete

    def _send(self, batch: list[list[Any]]) -> bool:
        if not self.writer.send("metrics", s=batch, **self.fields):
            return False
        self.store.mark_sent(batch)
        self.messages_sent += 1
        return True


class WorkerMetricsObserver(HttpObserver):
    """The HTTP observer plus the sender's triggers (first use starts the timer)."""

    __slots__ = ("_started", "sender")

    def __init__(self, store: Store, sender: PipeSender) -> None:
        super().__init__(store)
        self.sender = sender
        sender.sample = self.sample_active
        self._started = False

    def connection_made(self) -> None:
        # Instead of HttpObserver's fold timer: each send folds the store (Store.changed).
        if not self._started:
            self._started = True
            self.sender.start(asyncio.get_running_loop())

    def connection_lost(self) -> None:
        # The last connection gone: a graceful stop ends this way, and its last requests must
        # reach the master before the process exits. Under load this is rare; the tick covers
        # the rest.
        if not any(len(server.connections) for server in self.servers):
            self.sample_active()
            self.sender.flush()

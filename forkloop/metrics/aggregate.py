"""The master's view of every worker's metrics, and the retired totals.

Owns: per worker slot, the latest values received from the process now in that slot; the
``retired`` totals into which a departed worker's counters are folded (so whole-server counters
never go backwards when a worker is replaced); heartbeat loop-lag histograms. Memory is bounded
by the number of slots, whatever the number of workers ever started. Thread-safe: messages
arrive on the master's loop thread, scrapes on the exposition thread.
Imports ``forkloop.metrics.series`` only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from .series import WorkerValues, merge_into

__all__ = ["Aggregator"]


class Aggregator:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.slots: dict[int, tuple[int, WorkerValues]] = {}
        self.retired = WorkerValues()
        self.bad_records = 0

    def _values(self, slot: int, pid: int) -> WorkerValues:
        current = self.slots.get(slot)
        if current is None or current[0] != pid:
            if current is not None:
                merge_into(self.retired, current[1])
            current = (pid, WorkerValues())
            self.slots[slot] = current
        return current[1]

    def on_metrics(self, slot: int, pid: int, records: Any) -> None:
        if not isinstance(records, list):
            self.bad_records += 1
            return
        with self.lock:
            values = self._values(slot, pid)
            for record in records:
                try:
                    values.apply(record)
                except (ValueError, TypeError):
                    self.bad_records += 1

    def on_beat(self, slot: int, pid: int, lag_s: float) -> None:
        with self.lock:
            self._values(slot, pid).lag.observe(max(0.0, lag_s))

    def reconcile(self, live: Iterable[tuple[int, int]]) -> None:
        """Fold the slots whose process is gone (call with the lock held)."""
        alive = set(live)
        for slot, (pid, values) in list(self.slots.items()):
            if (slot, pid) not in alive:
                merge_into(self.retired, values)
                del self.slots[slot]

    def view(self, live: Iterable[tuple[int, int]]) -> list[tuple[str, WorkerValues]]:
        """``(worker label, values)`` for live slots and the retired totals, consistently."""
        with self.lock:
            self.reconcile(live)
            rows = [(str(slot), values) for slot, (_, values) in sorted(self.slots.items())]
            rows.append(("retired", self.retired))
            return [(label, _copy(values)) for label, values in rows]


def _copy(values: WorkerValues) -> WorkerValues:
    return WorkerValues(
        requests={k: (a.copy(), b.copy(), c.copy()) for k, (a, b, c) in values.requests.items()},
        active=dict(values.active),
        ws_open=values.ws_open,
        ws_messages=dict(values.ws_messages),
        parse_errors=dict(values.parse_errors),
        fd_pressure=dict(values.fd_pressure),
        lag=values.lag.copy(),
        ws_sessions=values.ws_sessions.copy(),
        shed=dict(values.shed),
        queue=values.queue.copy(),
    )

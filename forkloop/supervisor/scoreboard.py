"""A shared-memory scoreboard: each worker's live connection count, visible to its siblings.

Owns: one anonymous shared ``mmap`` created by the master before any fork (so every worker
maps the same pages), its record layout, and the rules for reading it. Each worker writes
only its own slot's record -- ``(pid, connections, stamp)``, where ``stamp`` is the
``time.monotonic()`` of its last heartbeat -- and reads the others' to balance accepts on a
shared listening socket (see ``forkloop.workers.accept``). The master clears a slot when it
reaps the worker that owned it. Records are aligned 8-byte fields written with one
``pack_into``; a reader may see a slightly stale count, never a torn one that matters: the
scoreboard is a heuristic, not a lock.

Imports: stdlib only.
"""

from __future__ import annotations

import mmap
import struct
import time

__all__ = ["Scoreboard"]

_RECORD = struct.Struct("=qqd")  # pid, connections, stamp
_COUNT = struct.Struct("=q")


class Scoreboard:
    def __init__(self, slots: int = 256) -> None:
        self.slots = slots
        self._map = mmap.mmap(-1, slots * _RECORD.size)

    def publish(self, slot: int, pid: int, connections: int, stamp: float | None = None) -> None:
        if 0 <= slot < self.slots:
            now = time.monotonic() if stamp is None else stamp
            _RECORD.pack_into(self._map, slot * _RECORD.size, pid, connections, now)

    def set_connections(self, slot: int, connections: int) -> None:
        """The hot path: only the count changes (on every connection made or lost)."""
        if 0 <= slot < self.slots:
            _COUNT.pack_into(self._map, slot * _RECORD.size + 8, connections)

    def clear(self, slot: int, pid: int) -> None:
        if 0 <= slot < self.slots and self.read(slot)[0] == pid:
            _RECORD.pack_into(self._map, slot * _RECORD.size, 0, 0, 0.0)

    def read(self, slot: int) -> tuple[int, int, float]:
        pid, connections, stamp = _RECORD.unpack_from(self._map, slot * _RECORD.size)
        return int(pid), int(connections), float(stamp)

    def live(
        self, fresh_s: float, *, now: float | None = None, limit: int | None = None
    ) -> list[tuple[int, int, int]]:
        """``(slot, pid, connections)`` of workers whose stamp is at most ``fresh_s`` old."""
        moment = time.monotonic() if now is None else now
        found = []
        for slot in range(min(self.slots, limit if limit is not None else self.slots)):
            pid, connections, stamp = _RECORD.unpack_from(self._map, slot * _RECORD.size)
            if pid and moment - stamp <= fresh_s:
                found.append((slot, int(pid), int(connections)))
        return found

    def close(self) -> None:
        self._map.close()

"""A read-only view of the supervisor for metrics and status: :func:`take`.

Owns: :class:`Snapshot` -- workers by phase, restarts by cause, reloads, and per worker its
slot, pid, generation, phase, RSS, event-loop lag, requests served and in flight. The master
keeps its policy state immutable and replaces it whole, so a snapshot may be taken from another
thread of the master (e.g. a metrics exposition thread) without locks:
``Arbiter.snapshot()`` is the documented entry point.

Imports: stdlib and :mod:`forkloop.supervisor.policy` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .policy import Cause, Phase, State

__all__ = ["Snapshot", "WorkerSnapshot", "take"]


@dataclass(frozen=True)
class WorkerSnapshot:
    slot: int
    pid: int
    generation: int
    phase: str
    uptime_s: float
    requests: int
    inflight: int
    connections: int
    loop_lag_s: float
    rss_bytes: int


@dataclass(frozen=True)
class Snapshot:
    mode: str
    target: int
    generation: int
    booted: bool
    reloads: int
    reload_failed: bool
    workers_by_phase: Mapping[str, int]
    restarts_by_cause: Mapping[str, int]
    workers: tuple[WorkerSnapshot, ...] = field(default=())


def take(state: State, now: float) -> Snapshot:
    by_phase = {phase.value: 0 for phase in Phase}
    for worker in state.workers:
        by_phase[worker.phase.value] += 1
    restarts = {
        cause.value: 0
        for cause in Cause
        if cause not in (Cause.SCALE, Cause.SHUTDOWN, Cause.UPGRADE)
    }
    restarts.update(state.restarts)
    return Snapshot(
        mode=state.mode.value,
        target=state.target,
        generation=state.generation,
        booted=state.booted,
        reloads=state.reloads,
        reload_failed=state.reload_failed,
        workers_by_phase=by_phase,
        restarts_by_cause=restarts,
        workers=tuple(
            WorkerSnapshot(
                slot=w.slot,
                pid=w.pid,
                generation=w.generation,
                phase=w.phase.value,
                uptime_s=max(0.0, now - w.started_at),
                requests=w.requests,
                inflight=w.inflight,
                connections=w.connections,
                loop_lag_s=w.lag_s,
                rss_bytes=w.rss_bytes,
            )
            for w in sorted(state.workers, key=lambda w: (w.slot, w.pid))
        ),
    )

"""What the demo app keeps per worker process, under one typed application key.

Owns: :class:`DemoState` (this worker's identity, its chat rooms, its metrics panel) and the
``STATE`` key every handler reads it through.

Imports: ``forkloop.web`` and the demo's identity, rooms and stats modules.
"""

from __future__ import annotations

from dataclasses import dataclass

from forkloop import web

from .identity import WorkerIdentity
from .rooms import Rooms
from .stats import StatsPanel

__all__ = ["STATE", "DemoState"]


@dataclass(frozen=True)
class DemoState:
    identity: WorkerIdentity
    rooms: Rooms
    stats: StatsPanel


STATE = web.AppKey("forkloop_demo_state", DemoState)

"""Which worker this process is: its supervisor slot (when it can be found) and its pid.

Owns: :class:`WorkerIdentity` and :func:`find_identity`. The worker main does not (yet) hand
the app its slot, so this looks in two places, in order:

1. ``FORKLOOP_WORKER_SLOT`` in the environment (the stable way, should a worker ever export
   it);
2. the call stack of the app factory: ``forkloop serve`` without ``--preload`` calls the
   factory inside the worker, below the worker object whose ``ctx`` is the
   ``WorkerContext`` (``slot``, ``master_pid``). Only attributes are read -- duck typing, no
   import of the supervisor -- and only a context whose ``master_pid`` is our parent counts.

When neither answers (``--preload``, ``web.run_app``, a gunicorn worker), the slot is ``None``
and the page shows the pid alone.

Imports: stdlib only.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from types import FrameType

__all__ = ["SLOT_ENV", "WorkerIdentity", "find_identity"]

SLOT_ENV = "FORKLOOP_WORKER_SLOT"
_MAX_FRAMES = 64


@dataclass(frozen=True)
class WorkerIdentity:
    slot: int | None
    pid: int

    @property
    def label(self) -> str:
        if self.slot is None:
            return f"pid {self.pid}"
        return f"slot {self.slot} (pid {self.pid})"

    def as_dict(self) -> dict[str, int | None]:
        return {"slot": self.slot, "pid": self.pid}


def _slot_from_env() -> int | None:
    value = os.environ.get(SLOT_ENV, "").strip()
    if not value.isdigit():
        return None
    return int(value)


def _context_slot(candidate: object, parent: int) -> int | None:
    try:  # any object may sit in a frame; a property that raises must not stop the search
        ctx = getattr(candidate, "ctx", candidate)
        slot = getattr(ctx, "slot", None)
        master = getattr(ctx, "master_pid", None)
    except Exception:
        return None
    if isinstance(slot, int) and not isinstance(slot, bool) and master == parent:
        return slot
    return None


def _slot_from_stack(frame: FrameType | None) -> int | None:
    parent = os.getppid()
    depth = 0
    while frame is not None and depth < _MAX_FRAMES:
        local_vars = frame.f_locals
        for name in ("self", "ctx"):
            if name in local_vars:
                slot = _context_slot(local_vars[name], parent)
                if slot is not None:
                    return slot
        frame = frame.f_back
        depth += 1
    return None


def find_identity() -> WorkerIdentity:
    """Call from the app factory (the stack is searched from the caller upwards)."""
    slot = _slot_from_env()
    if slot is None:
        slot = _slot_from_stack(sys._getframe(1))
    return WorkerIdentity(slot=slot, pid=os.getpid())

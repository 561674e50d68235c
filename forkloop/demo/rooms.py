"""The chat rooms of this process: room name -> open sockets and their nicks.

Owns: :class:`Rooms` -- join, leave, broadcast to a room, list every socket (for shutdown).
Rooms are plain per-process state: nothing is shared between workers.

Imports: ``forkloop.web``.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from forkloop import web

from .identity import WorkerIdentity

__all__ = ["Rooms"]


class Rooms:
    """Room name -> set of open sockets (with their nick), in this process only."""

    def __init__(self, identity: WorkerIdentity) -> None:
        self.identity = identity
        self.members: dict[str, dict[web.WebSocketResponse, str]] = {}

    def join(self, room: str, ws: web.WebSocketResponse, name: str) -> int:
        members = self.members.setdefault(room, {})
        members[ws] = name
        return len(members)

    def leave(self, room: str, ws: web.WebSocketResponse) -> int:
        members = self.members.get(room, {})
        members.pop(ws, None)
        if not members:
            self.members.pop(room, None)
        return len(members)

    async def broadcast(self, room: str, payload: dict[str, Any]) -> None:
        text = json.dumps(payload)
        for ws in list(self.members.get(room, {})):
            if not ws.closed:
                # A peer that went away mid-send is dropped by its own handler.
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(text)

    def sockets(self) -> list[web.WebSocketResponse]:
        return [ws for members in self.members.values() for ws in members]

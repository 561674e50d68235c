"""The chat rooms of this process: room name -> open sockets and their nicks.

Owns: :class:`Rooms` -- join, leave, broadcast to a room, list every socket (for shutdown).
Rooms are plain per-process state: nothing is shared between workers. A broadcast sends to
every member concurrently; a member whose socket stays unwritable for ``SEND_TIMEOUT_S``
(its write buffer full: it stopped reading) is closed with 1013 rather than stalling the room.

Imports: ``forkloop.web``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from forkloop import web

from .identity import WorkerIdentity

__all__ = ["SEND_TIMEOUT_S", "Rooms"]

SEND_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 1.0


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
        """Send to every member at once: one slow reader must not hold up the room."""
        text = json.dumps(payload)
        sends = [self._send(ws, text) for ws in list(self.members.get(room, {})) if not ws.closed]
        await asyncio.gather(*sends)

    async def _send(self, ws: web.WebSocketResponse, text: str) -> None:
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await ws.send_str(text)
        except TimeoutError:
            # Its buffer stayed full: close it rather than queue without bound. A peer that
            # does not read will not answer the close either: give up on it quickly (the
            # engine then drops the connection).
            with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await ws.close(
                        code=web.WSCloseCode.TRY_AGAIN_LATER, message=b"too slow", drain=False
                    )
        except (ConnectionError, RuntimeError):
            pass  # a peer that went away mid-send is dropped by its own handler

    def sockets(self) -> list[web.WebSocketResponse]:
        return [ws for members in self.members.values() for ws in members]

"""The chat: WebSocket rooms that live inside one worker process.

Owns: the WebSocket handler at
``GET /ws/chat?room=NAME&name=NICK`` and the small JSON protocol the page speaks:

- server -> client: ``{"type": "hello", "room", "name", "members", "worker": {"slot", "pid"}}``
  once; ``{"type": "message", "room", "from", "text", "worker", "at"}`` for every message in
  the room (the sender's own included: that is the round trip the page shows);
  ``{"type": "presence", "room", "members", "joined"|"left": NICK}``;
  ``{"type": "error", "error": TEXT}`` for a message the server refuses (the socket stays open).
- client -> server: ``{"text": "..."}`` (a bare text frame is taken as the text too).

A room is per process: two browsers talk to each other only when their connections landed on
the same worker -- which is what the page's "worker slot" badge is there to show. Bad input
(an unknown room name, a nick or message too long, binary frames) gets an error frame or a
400 before the upgrade, never an exception in the worker. On shutdown every socket is closed
with 1001 (going away).

Imports: ``forkloop.web`` and the demo's state.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from typing import Any

from forkloop import web

from .state import STATE

__all__ = ["MAX_TEXT_CHARS", "chat_handler", "close_all"]

MAX_TEXT_CHARS = 2000
MAX_NAME_CHARS = 32
_ROOM_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _clean_name(raw: str) -> str:
    name = " ".join(raw.split())[:MAX_NAME_CHARS]
    return name or "guest"


def _parse_text(data: str) -> str:
    """The message text of a client frame; raises ValueError with the reason."""
    text = data
    if data.lstrip().startswith("{"):
        try:
            decoded: Any = json.loads(data)
        except json.JSONDecodeError:
            raise ValueError("not valid JSON") from None
        field = decoded.get("text") if isinstance(decoded, dict) else None
        if not isinstance(field, str):
            raise ValueError('expected {"text": "..."}')
        text = field
    text = text.strip()
    if not text:
        raise ValueError("empty message")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"message longer than {MAX_TEXT_CHARS} characters")
    return text


async def chat_handler(request: web.Request) -> web.StreamResponse:
    rooms = request.app[STATE].rooms
    room = request.query.get("room", "lobby")
    if not _ROOM_RE.match(room):
        raise web.HTTPBadRequest(text="room: 1 to 32 of A-Z a-z 0-9 _ -\n")
    name = _clean_name(request.query.get("name", ""))
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=64 * 1024)
    await ws.prepare(request)
    worker = rooms.identity.as_dict()
    count = rooms.join(room, ws, name)
    try:
        await ws.send_json(
            {"type": "hello", "room": room, "name": name, "members": count, "worker": worker}
        )
        await rooms.broadcast(
            room, {"type": "presence", "room": room, "members": count, "joined": name}
        )
        async for msg in ws:
            if msg.type == web.WSMsgType.TEXT:
                try:
                    text = _parse_text(msg.data)
                except ValueError as exc:
                    await ws.send_json({"type": "error", "error": str(exc)})
                    continue
                await rooms.broadcast(
                    room,
                    {
                        "type": "message",
                        "room": room,
                        "from": name,
                        "text": text,
                        "worker": worker,
                        "at": time.time(),
                    },
                )
            elif msg.type == web.WSMsgType.BINARY:
                await ws.send_json({"type": "error", "error": "text frames only"})
    finally:
        left = rooms.leave(room, ws)
        await rooms.broadcast(
            room, {"type": "presence", "room": room, "members": left, "left": name}
        )
    return ws


async def close_all(app: web.Application) -> None:
    """``on_shutdown``: tell every chat client the worker is going away (1001)."""
    for ws in app[STATE].rooms.sockets():
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.close(code=web.WSCloseCode.GOING_AWAY, message=b"server shutdown")

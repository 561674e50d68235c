"""Owner: websocket (issue 4). WebSocketResponse and friends."""

from __future__ import annotations

__all__: list[str] = []

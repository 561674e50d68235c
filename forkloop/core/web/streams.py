"""aiohttp.web's stream names; the implementation lives with the protocol that feeds it."""

from __future__ import annotations

from ..server.streams import EMPTY_PAYLOAD, EmptyStreamReader, EofStream, StreamReader

__all__ = ["EMPTY_PAYLOAD", "EmptyStreamReader", "EofStream", "StreamReader"]

"""Sans-I/O RFC 6455 WebSocket codec: handshake, frames, masking, UTF-8, deflate, close.

No asyncio and nothing of ours is imported here: ``forkloop.core.web.ws`` is the adapter.
Modules: ``models`` (message types, close codes), ``errors``, ``handshake``, ``reader``
(bytes -> messages), ``writer`` (messages -> bytes), ``masking``, ``deflate`` (RFC 7692),
``channel`` (the per-message engine the adapter drives, handed its loop and transport).
"""

from __future__ import annotations

from .deflate import DeflateParams, negotiate_deflate
from .errors import HandshakeError, WebSocketError
from .handshake import Handshake, accept_key, can_handshake, server_handshake
from .masking import apply_mask
from .models import WSCloseCode, WSMessage, WSMsgType, close_code_valid
from .reader import FrameReader, parse_close_payload
from .writer import FrameWriter, build_frame

__all__ = [
    "DeflateParams",
    "FrameReader",
    "FrameWriter",
    "Handshake",
    "HandshakeError",
    "WSCloseCode",
    "WSMessage",
    "WSMsgType",
    "WebSocketError",
    "accept_key",
    "apply_mask",
    "build_frame",
    "can_handshake",
    "close_code_valid",
    "negotiate_deflate",
    "parse_close_payload",
    "server_handshake",
]

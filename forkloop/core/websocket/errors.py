"""Errors of the WebSocket codec. Imports nothing of ours.

``WebSocketError`` carries the close code the connection must be failed with (RFC 6455
section 7.1.7): 1002 protocol error, 1007 invalid payload, 1009 message too big.
``HandshakeError`` carries the HTTP status (400, 405, 426) and headers for the refusal.
"""

from __future__ import annotations

__all__ = ["HandshakeError", "WebSocketError"]


class WebSocketError(Exception):
    """The peer broke the protocol; fail the connection with close ``code``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


class HandshakeError(Exception):
    """The opening handshake is refused with HTTP ``status`` (RFC 6455 section 4.2.1)."""

    def __init__(self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.headers = headers

    def __str__(self) -> str:
        return f"{self.status}: {self.reason}"

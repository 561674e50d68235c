"""The one frozen configuration of the HTTP engine's limits and timeouts.

Owns every number that bounds what a client may make the server hold or wait for. Units are in
the names. Imports nothing of ours.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]

KIB = 1024
MIB = 1024 * KIB


# Limits where 0 means "off": no keep-alive, no lingering after an error reply.
_ZERO_ALLOWED = frozenset(("keepalive_timeout_s", "lingering_timeout_s"))


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits of one server; build a variant with :func:`dataclasses.replace`."""

    max_request_line_bytes: int = 8190
    """Longest request-target (plus method) accepted; longer -> 414."""
    max_header_field_bytes: int = 8190
    """Longest single header line (name, colon, value); longer -> 431."""
    max_header_bytes: int = 64 * KIB
    """All header lines of one request together; more -> 431."""
    max_header_count: int = 128
    """Header lines in one request; more -> 431."""
    client_max_size: int = MIB
    """Largest body a handler may buffer with read()/text()/json()/post(); more -> 413."""
    header_timeout_s: float = 10.0
    """Time allowed from a request's first byte (or the connection) to its complete head."""
    keepalive_timeout_s: float = 75.0
    """Idle time allowed between requests on a keep-alive connection; 0 disables keep-alive."""
    body_idle_timeout_s: float = 60.0
    """Idle time allowed while a handler waits for request body bytes."""
    max_pipelined_requests: int = 32
    """Queued requests on one connection before the server stops reading from it."""
    lingering_timeout_s: float = 2.0
    """After an error response, how long unread input is drained before the socket closes."""
    write_buffer_high_bytes: int = 256 * KIB
    """Transport write buffer above which writers wait in drain()."""
    write_buffer_low_bytes: int = 64 * KIB
    """Transport write buffer below which waiting writers resume."""
    read_buffer_high_bytes: int = MIB
    """Unread request body bytes buffered before the server stops reading the socket."""

    def __post_init__(self) -> None:
        for name in self.__slots__:
            value = getattr(self, name)
            if (
                not isinstance(value, int | float)
                or value < 0
                or (value == 0 and name not in _ZERO_ALLOWED)
            ):
                raise ValueError(f"Limits.{name} must be a positive number, got {value!r}")
        if self.write_buffer_low_bytes > self.write_buffer_high_bytes:
            raise ValueError(
                "Limits.write_buffer_low_bytes must not exceed write_buffer_high_bytes"
            )

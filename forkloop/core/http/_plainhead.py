"""The bytes of a plain response: ``message(status_line, ctype_line, length, tail, body)``.

Owns the last step of ``serialize.plain_message`` (the one renderer of a plain HTTP/1.1
response): its pieces, in order, as one bytes object: the status line, the ``Content-Type``
line (or nothing), ``Content-Length: <length>`` and CRLF, ``tail`` (the Date and Server lines
and the blank line ending the head) and the body. Every piece but ``length`` is ``bytes``;
``length`` is an ``int`` from 0 to ``sys.maxsize``. Anything else raises ``TypeError``,
``ValueError`` or ``OverflowError``, and nothing is written. No piece is checked for CR or LF
here: they come from the renderer's own caches and from ``len(body)``.

This module is the fallback, and the definition. setup.py builds ``_plainhead.c``, its C twin
with the same names, which writes the pieces into one bytes object of the exact size (one copy
each, no intermediate ``Content-Length`` line or tuple); ``FORKLOOP_NO_EXTENSIONS=1`` runs this
file. tests/http compares the two. Imports nothing of ours.
"""

from __future__ import annotations

import sys

__all__ = ["message"]


def message(status_line: bytes, ctype_line: bytes, length: int, tail: bytes, body: bytes) -> bytes:
    """``status_line + ctype_line + b"Content-Length: %d\\r\\n" % length + tail + body``."""
    if not isinstance(length, int):
        raise TypeError(f"length must be an int, not {type(length).__name__}")
    if length < 0:
        raise ValueError(f"length must not be negative: {length}")
    if length > sys.maxsize:
        raise OverflowError(f"length past sys.maxsize: {length}")
    pieces = (status_line, ctype_line, b"Content-Length: %d\r\n" % length, tail, body)
    for piece in pieces:
        if not isinstance(piece, bytes):
            raise TypeError(f"a response piece must be bytes, not {type(piece).__name__}")
    return b"".join(pieces)

"""Sans-I/O response framing: status lines, header blocks, chunks, the Date value, error replies.

Owns the bytes of a response head and of chunked framing, and refuses header injection (CR, LF
or NUL in a name or value). Imports only ``errors`` and ``_plainhead`` of ours. No clock is read
here: callers pass the time, so the Date cache is testable.
"""

from __future__ import annotations

from collections.abc import Iterable
from email.utils import formatdate
from http import HTTPStatus
from typing import Final

from ._plainhead import message
from .errors import HttpError

__all__ = [
    "DateCache",
    "chunk",
    "error_response",
    "plain_message",
    "reason_phrase",
    "response_head",
    "status_line",
    "status_line_http11",
]

_REASONS: Final = {s.value: s.phrase for s in HTTPStatus}
_REASONS.setdefault(421, "Misdirected Request")
# Final: the compiled module reads these from C statics rather than the module's dict.
_STATUS_LINES: Final[dict[tuple[int, int, int], bytes]] = {}
_STATUS_LINES_11: Final[dict[int, bytes]] = {}
LAST_CHUNK: Final = b"0\r\n\r\n"
_message: Final = message  # its C twin where built: the pieces written in one copy each


def reason_phrase(status: int) -> str:
    return _REASONS.get(status, "")


def status_line(version: tuple[int, int], status: int, reason: str | None = None) -> bytes:
    """``HTTP/1.1 200 OK\\r\\n``; lines with the standard reason are cached."""
    if reason is None:
        key = (version[0], version[1], status)
        line = _STATUS_LINES.get(key)
        if line is None:
            line = f"HTTP/{version[0]}.{version[1]} {status} {reason_phrase(status)}\r\n".encode()
            _STATUS_LINES[key] = line
        return line
    _check_value(reason)
    return f"HTTP/{version[0]}.{version[1]} {status} {reason}\r\n".encode()


def status_line_http11(status: int) -> bytes:
    """``status_line((1, 1), status)``, from a cache keyed by the status alone."""
    line = _STATUS_LINES_11.get(status)
    if line is None:
        line = _STATUS_LINES_11[status] = status_line((1, 1), status)  # at most 900 entries
    return line


def plain_message(status: int, ctype_line: bytes, length: int, tail: bytes, body: bytes) -> bytes:
    """The one renderer of a plain HTTP/1.1 response: status line, ``ctype_line`` (a whole
    ``Content-Type`` line, or empty), ``Content-Length: length``, ``tail`` (the Date and Server
    lines and the blank line ending the head) and ``body`` (empty when the body follows)."""
    return _message(status_line_http11(status), ctype_line, length, tail, body)


def _check_value(text: str) -> None:
    if "\r" in text or "\n" in text or "\x00" in text:
        raise ValueError(f"newline or NUL in a response header or reason: {text!r}")


def response_head(status_line_bytes: bytes, headers: Iterable[tuple[str, str]]) -> bytes:
    """A complete response head: status line, header lines, blank line.

    Injection is refused by counting over the whole head (three scans at C speed): every line
    ends in the one CRLF put there, so a CR or LF more (or a NUL) is in a name or value, which
    are then checked one by one for the error message.
    """
    lines = list(headers)
    parts = [status_line_bytes.decode("latin-1")]
    for name, value in lines:
        parts.append(f"{name}: {value}\r\n")
    parts.append("\r\n")
    text = "".join(parts)
    ends = len(parts)  # the status line's CRLF, one per header, the blank line's
    if text.count("\n") != ends or text.count("\r") != ends or "\x00" in text:
        for name, value in lines:
            _check_value(name)
            _check_value(value)
    return text.encode("utf-8", "surrogateescape")


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (RFC 9112 §7.1); empty data is not a chunk."""
    return b"%x\r\n%b\r\n" % (len(data), data)


class DateCache:
    """The IMF-fixdate for the ``Date`` header, formatted at most once a second.

    ``tail(now)`` is the end of a response head: the Date and Server lines and the blank line.
    """

    __slots__ = ("_second", "_server", "_tail", "_value")

    def __init__(self, server: str = "forkloop") -> None:
        self._second = -1
        self._value = ""
        self._tail = b""
        self._server = server

    def value(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._update(second)
        return self._value

    def tail(self, now: float) -> bytes:
        second = int(now)
        if second != self._second:
            self._update(second)
        return self._tail

    def _update(self, second: int) -> None:
        self._second = second
        self._value = formatdate(second, usegmt=True)
        self._tail = f"Date: {self._value}\r\nServer: {self._server}\r\n\r\n".encode()


def error_response(error: HttpError, date: str) -> bytes:
    """The complete reply to a protocol error; the connection closes after it."""
    body = f"{error.status} {error.reason}: {error.message}\n".encode("utf-8", "replace")
    return (
        response_head(
            status_line((1, 1), error.status),
            (
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Date", date),
                *error.headers,
                ("Connection", "close"),
            ),
        )
        + body
    )

"""Protocol errors of the HTTP/1.1 layer, each carrying the status the server answers with.

Raised by the sans-I/O parser; the server turns one into a complete response with
``Connection: close`` and closes the connection, since framing is no longer trustworthy.
Imports nothing of ours.
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "ExpectationFailed",
    "HeadersTooLarge",
    "HttpError",
    "MethodNotImplemented",
    "PayloadTooLarge",
    "RequestLineTooLong",
    "RequestPayloadError",
    "RequestTimeout",
    "VersionNotSupported",
]


class HttpError(Exception):
    """A request the server refuses; ``status`` and ``reason`` form the response."""

    status = 400
    reason = "Bad Request"
    # Header lines the reply adds (a 503's Retry-After), besides its framing.
    headers: tuple[tuple[str, str], ...] = ()

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.reason)
        self.message = message or self.reason


class BadRequest(HttpError):
    status = 400
    reason = "Bad Request"


class RequestPayloadError(BadRequest):
    """The request body turned out malformed while the handler was reading it.

    aiohttp's name (``web.RequestPayloadError``); raised by the body's read methods. Being a
    ``BadRequest``, a handler that lets it escape answers 400.
    """


class RequestLineTooLong(HttpError):
    status = 414
    reason = "URI Too Long"


class HeadersTooLarge(HttpError):
    status = 431
    reason = "Request Header Fields Too Large"


class PayloadTooLarge(HttpError):
    status = 413
    reason = "Payload Too Large"


class ExpectationFailed(HttpError):
    status = 417
    reason = "Expectation Failed"


class VersionNotSupported(HttpError):
    status = 505
    reason = "HTTP Version Not Supported"


class RequestTimeout(HttpError):
    status = 408
    reason = "Request Timeout"


class MethodNotImplemented(HttpError):
    # Defined here, not in the parser that raises it: a subclass compiled by mypyc (setup.py)
    # would not see its class-level status and reason.
    status = 501
    reason = "Not Implemented"

"""aiohttp.web's stream and payload-error names; the implementation lives with the protocol."""

from __future__ import annotations

from ..http.errors import RequestPayloadError
from ..server.streams import EMPTY_PAYLOAD, EmptyStreamReader, EofStream, StreamReader

__all__ = [
    "EMPTY_PAYLOAD",
    "EmptyStreamReader",
    "EofStream",
    "PayloadAccessError",
    "RequestPayloadError",
    "StreamReader",
]


class PayloadAccessError(Exception):
    """aiohttp's name for reading a request body after its response was sent.

    forkloop never raises it: a body read after the response ends with the data that arrived
    (or an empty read). It exists so that code catching it keeps importing.
    """

"""A raw RSGI app for the granian RSGI peer: no framework, the least work granian can be given.

The same two routes as the other peers (``GET /`` plaintext, ``GET /json`` serialised per
request), answered through RSGI's ``response_bytes``.

    granian --interface rsgi --workers 1 --runtime-threads 1 rsgi_app:app  (cwd bench/peers)
"""

from __future__ import annotations

import json
from typing import Any

MESSAGE = "Hello, World!"
PLAIN_BODY = MESSAGE.encode()
PLAIN_HEADERS = [("content-type", "text/plain; charset=utf-8")]
JSON_HEADERS = [("content-type", "application/json; charset=utf-8")]
NOT_FOUND_HEADERS = [("content-type", "text/plain; charset=utf-8")]


async def app(scope: Any, protocol: Any) -> None:
    if scope.proto != "http":
        return
    path = scope.path
    if path == "/":
        protocol.response_bytes(200, PLAIN_HEADERS, PLAIN_BODY)
    elif path == "/json":
        body = json.dumps({"message": MESSAGE}).encode()
        protocol.response_bytes(200, JSON_HEADERS, body)
    else:
        protocol.response_bytes(404, NOT_FOUND_HEADERS, b"Not Found")

"""A raw ASGI app for the uvicorn peer: no framework, the least work uvicorn can be given.

    uvicorn asgi_app:app --app-dir bench/peers --http httptools --loop uvloop \
        --no-access-log --lifespan off
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MESSAGE = "Hello, World!"
PLAIN_BODY = MESSAGE.encode()
PLAIN_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(PLAIN_BODY)).encode()),
]
NOT_FOUND_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"9")]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/":
        headers, body, status = PLAIN_HEADERS, PLAIN_BODY, 200
    elif path == "/json":
        # Serialized per request, as the aiohttp and forkloop apps do.
        body = json.dumps({"message": MESSAGE}).encode()
        headers = [
            (b"content-type", b"application/json; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ]
        status = 200
    else:
        headers, body, status = NOT_FOUND_HEADERS, b"Not Found", 404
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

"""The upload: ``POST /api/upload`` streams a multipart body through ``request.multipart()``.

Owns: reading every part chunk by chunk (nothing is buffered or written to disk), hashing file
parts with SHA-256 as they arrive, and answering with JSON::

    {"files": [{"field", "filename", "size", "sha256"}], "bytes": N, "elapsed_s": S,
     "worker": {"slot", "pid"}}

Limits: at most ``MAX_UPLOAD_BYTES`` in total (413 past it) and ``MAX_PARTS`` parts. Ordinary
form fields are read and counted but not echoed. A body that is not multipart, or is malformed,
gets the 400 that ``request.multipart()`` raises, with its reason.

Imports: ``forkloop.web`` and the demo's state.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from forkloop import web

from .state import STATE

__all__ = ["MAX_PARTS", "MAX_UPLOAD_BYTES", "upload_handler"]

MAX_UPLOAD_BYTES = 256 * 1024 * 1024
MAX_PARTS = 16
CHUNK_BYTES = 64 * 1024


async def upload_handler(request: web.Request) -> web.Response:
    started = time.perf_counter()
    reader = await request.multipart()  # not multipart, or malformed: HTTPBadRequest (400)
    files: list[dict[str, Any]] = []
    total = 0
    parts = 0
    while True:
        part = await reader.next()
        if part is None:
            break
        parts += 1
        if parts > MAX_PARTS:
            raise web.HTTPBadRequest(text=f"more than {MAX_PARTS} parts\n")
        if not isinstance(part, web.BodyPartReader):
            raise web.HTTPBadRequest(text="nested multipart bodies are not accepted\n")
        digest = hashlib.sha256()
        size = 0
        while chunk := await part.read_chunk(CHUNK_BYTES):
            size += len(chunk)
            total += len(chunk)
            if total > MAX_UPLOAD_BYTES:
                raise web.HTTPRequestEntityTooLarge(max_size=MAX_UPLOAD_BYTES, actual_size=total)
            digest.update(chunk)
        if part.filename is not None:
            files.append(
                {
                    "field": part.name,
                    "filename": part.filename,
                    "size": size,
                    "sha256": digest.hexdigest(),
                }
            )
    return web.json_response(
        {
            "files": files,
            "bytes": total,
            "elapsed_s": round(time.perf_counter() - started, 6),
            "worker": request.app[STATE].identity.as_dict(),
        }
    )

"""Helpers for request-body tests: a real forkloop server on loopback and a raw HTTP client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from forkloop import web

Serve = Callable[[web.Application], Awaitable[str]]


async def raw_request(base_url: str, data: bytes | list[bytes], wait_s: float = 10.0) -> bytes:
    """Send raw bytes (a list is sent piece by piece, draining after each) and read to EOF."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        for piece in [data] if isinstance(data, bytes) else data:
            writer.write(piece)
            await writer.drain()
        return await asyncio.wait_for(reader.read(), wait_s)
    finally:
        writer.close()


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def body_of(response: bytes) -> bytes:
    return response.partition(b"\r\n\r\n")[2]

"""Helpers of the WebSocket tests: raw handshakes and a bare-stream frame client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from collections.abc import Awaitable, Callable

Serve = Callable[..., Awaitable[str]]


def handshake_request(path: str = "/", extra: str = "", key: str | None = None) -> bytes:
    key = key or base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


class RawClient:
    """A WebSocket client on a bare stream, for what real clients refuse to do."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.head = b""

    @classmethod
    async def connect(cls, url: str, path: str = "/", extra: str = "") -> RawClient:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        client = cls(reader, writer)
        writer.write(handshake_request(path, extra))
        client.head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        return client

    async def read_frame(self, timeout_s: float = 5.0) -> tuple[int, bytes]:
        """One unmasked server frame: (first byte, payload)."""
        head = await asyncio.wait_for(self.reader.readexactly(2), timeout_s)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await self.reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await self.reader.readexactly(8), "big")
        payload = await asyncio.wait_for(self.reader.readexactly(length), timeout_s)
        return head[0], payload

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()

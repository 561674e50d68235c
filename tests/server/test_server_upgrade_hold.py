"""Bytes that follow an upgrade request are held until its handler decides, in bounded memory.

While the handler of an upgrade request runs, the connection cannot tell whether what follows
is HTTP (the upgrade will be declined) or the new protocol (it will be accepted), so it holds
the bytes; past ``read_buffer_high_bytes`` it stops reading the socket. When the handler then
declines, reading resumes and the held bytes are parsed as HTTP (here: garbage, so a 400).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from pathlib import Path
from typing import Any

from rawhttp import parse_all

from forkloop.core.http.limits import Limits
from forkloop.core.web.response import Response

HIGH = 64 * 1024
CHUNK = 65534  # the payload of one 64 KiB frame


def _flood_frames() -> int:
    """Frames enough that the kernel cannot take them all while the server does not read: more
    than the largest receive buffer (autotuned up to ``tcp_rmem``'s maximum) plus the largest
    send buffer, with room to spare (4 MiB where the limits cannot be read)."""
    try:
        rmem = int(Path("/proc/sys/net/ipv4/tcp_rmem").read_text().split()[2])
        wmem = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        return 64
    return max(64, (rmem + wmem) // CHUNK + 64)


UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def test_held_bytes_pause_reading_then_parse_as_http_when_declined(serve: Any) -> None:
    decide = asyncio.Event()
    seen: list[Any] = []

    async def handler(request: Any) -> Response:
        seen.append(request.protocol)
        await decide.wait()
        return Response(status=426, text="no")

    limits = dataclasses.replace(Limits(), read_buffer_high_bytes=HIGH)
    served = await serve(handler, limits=limits)
    reader, writer = await asyncio.open_connection(served.host, served.port)

    async def flood() -> None:
        writer.write(UPGRADE)
        frame = b"\x81\xfe" + b"x" * CHUNK
        for _ in range(_flood_frames()):  # beyond what the server and both kernels may hold
            writer.write(frame)
            await writer.drain()

    sending = asyncio.create_task(flood())
    try:
        for _ in range(200):
            await asyncio.sleep(0.02)
            if seen and seen[0]._held_paused:
                break
        protocol = seen[0]
        assert protocol._held_paused, "reading did not pause"
        await asyncio.sleep(0.2)
        held = len(protocol._upgrade_data)
        # One read past the mark at most (uvloop and asyncio read up to 256 KiB at a time).
        assert HIGH < held <= HIGH + 256 * 1024
        assert not sending.done(), "the client could send everything: nothing held it back"
        decide.set()
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sending
        writer.close()
    responses = parse_all(data)
    assert [r.status for r in responses] == [426, 400]
    assert "close" not in responses[0].headers.get("Connection", "")
    assert responses[1].closes

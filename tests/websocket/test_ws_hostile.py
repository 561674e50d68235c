"""Hostile fragmentation (issue 15, defect 2): a message's frames are counted and its memory
is bounded by the bytes received, whatever the framing; past the bound the close code is 1009.
"""

from __future__ import annotations

import asyncio
import struct
import tracemalloc
from typing import Any

import pytest
from ws_helpers import RawClient, Serve

from forkloop import web
from forkloop.core.websocket import FrameReader, WSMsgType, build_frame
from forkloop.core.websocket.reader import MAX_FRAGMENTS


def fragments(opcode: int, pieces: list[bytes]) -> bytes:
    """One message as masked client frames: ``opcode`` first, continuations, the last FIN."""
    out = [build_frame(opcode, pieces[0], fin=len(pieces) == 1, mask=True)]
    out += [build_frame(0, p, fin=False, mask=True) for p in pieces[1:-1]]
    if len(pieces) > 1:
        out.append(build_frame(0, pieces[-1], fin=True, mask=True))
    return b"".join(out)


@pytest.mark.parametrize("opcode", [1, 2])
def test_empty_continuation_frames_past_the_bound_give_1009(opcode: int) -> None:
    reader = FrameReader()
    empty = build_frame(0, b"", fin=False, mask=True)
    reader.feed(build_frame(opcode, b"a", fin=False, mask=True))
    batch = empty * 10_000
    fed = 1
    while reader.error is None and fed < 3 * MAX_FRAGMENTS:
        assert reader.feed(batch) == []
        fed += 10_000
    assert reader.error is not None
    assert reader.error.code == 1009
    assert fed < MAX_FRAGMENTS + 10_001  # stopped at the bound, not at the test's cap


def test_fragment_bound_is_configurable_and_exact() -> None:
    wire = fragments(2, [b"a", b"b", b"c"])
    reader = FrameReader(max_fragments=3)
    assert [tuple(m) for m in reader.feed(wire)] == [(WSMsgType.BINARY, b"abc", "")]
    reader = FrameReader(max_fragments=2)
    assert reader.feed(wire) == []
    assert reader.error is not None
    assert reader.error.code == 1009
    with pytest.raises(ValueError, match="max_fragments"):
        FrameReader(max_fragments=0)


@pytest.mark.parametrize("opcode", [1, 2])
def test_one_byte_fragments_cost_no_per_fragment_memory(opcode: int) -> None:
    """100,000 one-byte frames (700 KB on the wire): the reader holds about the payload,
    not an object per frame (that was ~60 bytes each, 6 MB here; 105 MB for 1 MB in the issue)."""
    count = 100_000
    wire = fragments(opcode, [b"x"] * count)
    reader = FrameReader()
    step = 7 * 1000  # 1,000 frames (7 bytes each) per feed
    tracemalloc.start()
    try:
        out = []
        for i in range(0, len(wire), step):
            out += reader.feed(wire[i : i + step])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reader.error is None
    assert len(out) == 1
    assert len(out[0].data) == count
    # The payload twice (buffer + message) plus slack: far below one object per fragment.
    assert peak < 4 * count + 200_000, peak


def test_a_frame_trickled_byte_by_byte_is_held_as_bytes() -> None:
    payload = b"y" * 50_000
    wire = build_frame(2, payload, mask=True)
    reader = FrameReader()
    tracemalloc.start()
    try:
        out = []
        for i in range(len(wire)):
            out += reader.feed(wire[i : i + 1])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [tuple(m) for m in out] == [(WSMsgType.BINARY, payload, "")]
    assert peak < 4 * len(payload) + 100_000, peak


async def test_server_closes_with_1009_on_endless_empty_fragments(serve: Serve) -> None:
    seen: dict[str, Any] = {}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        msg = await ws.receive()
        seen["type"] = msg.type
        seen["close_code"] = ws.close_code
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    base = await serve(app)
    client = await RawClient.connect(base, "/ws")
    assert client.head.startswith(b"HTTP/1.1 101")
    client.writer.write(build_frame(2, b"", fin=False, mask=True))
    batch = build_frame(0, b"", fin=False, mask=True) * 20_000
    try:
        for _ in range(3 * MAX_FRAGMENTS // 20_000):
            client.writer.write(batch)
            await client.writer.drain()
    except ConnectionError:
        pass  # the server closed while we were still sending
    b0, payload = await client.read_frame(timeout_s=30)
    assert b0 == 0x88
    assert struct.unpack("!H", payload[:2])[0] == 1009
    await client.close()
    await asyncio.sleep(0.05)
    assert seen == {"type": web.WSMsgType.ERROR, "close_code": 1009}

"""Connection behaviour over real sockets: pipelining order and backpressure, the header
(slowloris) and keep-alive timers, HTTP/1.0 and 1.1 keep-alive rules."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from rawhttp import RawClient, request_bytes

from forkloop.core.http.limits import Limits
from forkloop.core.web.response import Response


async def test_100_pipelined_requests_in_order(serve: Any, recorder: Any) -> None:
    served = await serve(recorder)
    client = await served.client()
    batch = b"".join(request_bytes(f"/req/{i}") for i in range(100))
    await client.send(batch)
    for i in range(100):
        response = await client.response()
        assert response.status == 200
        assert response.text() == f"GET /req/{i} 0"
        assert not response.closes
    assert recorder.calls == [f"/req/{i}" for i in range(100)]
    # The connection is still usable afterwards.
    await client.send(request_bytes("/last"))
    assert (await client.response()).text() == "GET /last 0"


async def test_pipelined_handlers_run_one_at_a_time_in_order(serve: Any) -> None:
    # Handlers that finish in reverse order of their start if run concurrently: responses
    # must still come in request order, and no two handlers overlap.
    running = 0
    overlap = False
    order: list[int] = []

    async def handler(request: Any) -> Response:
        nonlocal running, overlap
        running += 1
        overlap = overlap or running > 1
        index = int(request.query["i"])
        await asyncio.sleep(0.002 * (20 - index))
        order.append(index)
        running -= 1
        return Response(text=str(index))

    served = await serve(handler)
    client = await served.client()
    await client.send(b"".join(request_bytes(f"/?i={i}") for i in range(20)))
    texts = [(await client.response()).text() for _ in range(20)]
    assert texts == [str(i) for i in range(20)]
    assert order == list(range(20))
    assert not overlap


async def test_pipelined_requests_with_bodies_in_order(serve: Any, recorder: Any) -> None:
    served = await serve(recorder)
    client = await served.client()
    parts = []
    for i in range(30):
        body = (b"x" * i) if i % 3 else b""
        if i % 2:
            chunked = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
            parts.append(
                request_bytes(
                    f"/b/{i}", "POST", headers={"Transfer-Encoding": "chunked"}, body=chunked
                )
            )
        else:
            parts.append(request_bytes(f"/b/{i}", "POST", body=body))
    await client.send(b"".join(parts))
    for i in range(30):
        expected_len = i if i % 3 else 0
        assert (await client.response()).text() == f"POST /b/{i} {expected_len}"


async def test_pipelined_backlog_is_bounded(serve: Any) -> None:
    # With max_pipelined_requests=4 the server stops reading while 4 requests wait; the
    # handler sees them all, in order, once it is released.
    release = asyncio.Event()
    seen: list[str] = []

    async def handler(request: Any) -> Response:
        seen.append(request.path)
        await release.wait()
        return Response(text=request.path)

    limits = Limits(max_pipelined_requests=4)
    served = await serve(handler, limits=limits)
    client = await served.client()
    await client.send(b"".join(request_bytes(f"/p/{i}") for i in range(50)))
    await asyncio.sleep(0.2)
    assert seen == ["/p/0"]
    (protocol,) = list(served.server.connections)
    assert protocol.transport is not None
    assert protocol.transport.is_reading() is False  # reading paused: the backlog is full
    release.set()
    texts = [(await client.response()).text() for _ in range(50)]
    assert texts == [f"/p/{i}" for i in range(50)]
    assert seen == texts


@pytest.mark.slow
async def test_slowloris_is_disconnected_while_others_are_served(serve: Any, recorder: Any) -> None:
    limits = Limits(header_timeout_s=2.0)
    served = await serve(recorder, limits=limits)
    loop = asyncio.get_running_loop()
    slow = await served.client()
    slow_head = b"GET /slow HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"z" * 100 + b"\r\n\r\n"
    started = loop.time()
    closed_at: float | None = None

    async def trickle() -> None:
        nonlocal closed_at
        for byte in slow_head:
            try:
                await slow.send(bytes([byte]))
            except ConnectionError:
                break
            if await slow.is_closed(wait=1.0):
                break
        closed_at = loop.time()

    answers: list[float] = []

    async def normal() -> None:
        client = await served.client()
        while closed_at is None and loop.time() - started < 15:
            await client.send(request_bytes("/normal"))
            response = await client.response()
            assert response.status == 200
            answers.append(loop.time())
            await asyncio.sleep(0.2)

    await asyncio.wait_for(asyncio.gather(trickle(), normal()), 30)
    assert closed_at is not None
    elapsed = closed_at - started
    assert 1.5 <= elapsed <= 8.0, elapsed  # the 2 s header timeout, generous bounds
    assert slow.buffer == b""  # no reply, only the closed socket
    assert "/slow" not in recorder.calls
    # The normal client kept getting answers all along, on its own connection.
    assert len(answers) >= 5
    assert answers[-1] - started >= 1.5


async def test_silent_connection_closed_after_header_timeout(serve: Any, recorder: Any) -> None:
    served = await serve(recorder, limits=Limits(header_timeout_s=0.5))
    client = await served.client()
    assert await client.read_until_closed(timeout_s=5) == b""


async def test_partial_head_after_keepalive_request_times_out(serve: Any, recorder: Any) -> None:
    served = await serve(recorder, limits=Limits(header_timeout_s=0.5))
    client = await served.client()
    await client.send(request_bytes("/one"))
    assert (await client.response()).status == 200
    await client.send(b"GET /two HTTP/1.1\r\nHos")
    assert await client.read_until_closed(timeout_s=5) == b""
    assert recorder.calls == ["/one"]


async def test_header_timer_does_not_cut_a_slow_handler(serve: Any) -> None:
    async def handler(request: Any) -> Response:
        await asyncio.sleep(0.8)
        return Response(text="late")

    served = await serve(handler, limits=Limits(header_timeout_s=0.3))
    client = await served.client()
    await client.send(request_bytes("/"))
    assert (await client.response()).text() == "late"


async def test_keepalive_idle_timeout_closes(serve: Any, recorder: Any) -> None:
    limits = Limits(keepalive_timeout_s=0.5)
    served = await serve(recorder, limits=limits)
    client = await served.client()
    loop = asyncio.get_running_loop()
    await client.send(request_bytes("/a"))
    response = await client.response()
    assert response.status == 200
    assert not response.closes
    idle_from = loop.time()
    assert await client.read_until_closed(timeout_s=10) == b""
    assert loop.time() - idle_from >= 0.4


async def test_keepalive_timer_restarts_with_each_request(serve: Any, recorder: Any) -> None:
    served = await serve(recorder, limits=Limits(keepalive_timeout_s=0.6))
    client = await served.client()
    for i in range(5):
        await client.send(request_bytes(f"/k/{i}"))
        assert (await client.response()).status == 200
        await asyncio.sleep(0.3)  # 1.5 s in total, each gap under the timeout
    assert recorder.calls == [f"/k/{i}" for i in range(5)]


async def test_keepalive_timeout_aiohttp_keyword(serve: Any, recorder: Any) -> None:
    served = await serve(recorder, keepalive_timeout=0.4)
    assert served.server.limits.keepalive_timeout_s == 0.4
    client = await served.client()
    await client.send(request_bytes("/"))
    await client.response()
    assert await client.read_until_closed(timeout_s=5) == b""


async def test_http10_without_keepalive_closes(serve: Any, recorder: Any) -> None:
    served = await serve(recorder)
    client = await served.client()
    await client.send(request_bytes("/old", version="1.0"))
    response = await client.response()
    assert response.status == 200
    assert response.version == "HTTP/1.0"
    assert response.closes
    assert await client.read_until_closed() == b""


async def test_http10_with_keepalive_stays_open(serve: Any, recorder: Any) -> None:
    served = await serve(recorder)
    client = await served.client()
    for path in ("/one", "/two"):
        await client.send(request_bytes(path, version="1.0", headers={"Connection": "keep-alive"}))
        response = await client.response()
        assert response.status == 200
        assert response.headers["Connection"].lower() == "keep-alive"
        assert response.framing == "length"
    assert not await client.is_closed(wait=0.3)
    assert recorder.calls == ["/one", "/two"]


async def test_http11_connection_close(serve: Any, recorder: Any) -> None:
    served = await serve(recorder)
    client = await served.client()
    await client.send(request_bytes("/bye", headers={"Connection": "close"}))
    response = await client.response()
    assert response.status == 200
    assert response.closes
    assert await client.read_until_closed() == b""
    assert recorder.calls == ["/bye"]


async def test_http11_connection_close_with_pipelined_request(serve: Any, recorder: Any) -> None:
    served = await serve(recorder)
    client = await served.client()
    await client.send(request_bytes("/bye", headers={"Connection": "close"}) + request_bytes("/no"))
    response = await client.response()
    assert response.status == 200
    assert response.closes
    assert await client.read_until_closed() == b""
    assert recorder.calls == ["/bye"]


async def test_http11_keepalive_by_default(serve: Any, recorder: Any) -> None:
    served = await serve(recorder)
    client = await served.client()
    for i in range(3):
        await client.send(request_bytes(f"/{i}"))
        response = await client.response()
        assert "Connection" not in response.headers
    assert not await client.is_closed(wait=0.2)


async def test_response_force_close(serve: Any) -> None:
    async def handler(request: Any) -> Response:
        response = Response(text="bye")
        response.force_close()
        return response

    served = await serve(handler)
    client = await served.client()
    await client.send(request_bytes("/") + request_bytes("/again"))
    response = await client.response()
    assert response.closes
    assert await client.read_until_closed() == b""


async def test_client_half_close_still_gets_answers(serve: Any, recorder: Any) -> None:
    served = await serve(recorder)
    client = await served.client()
    await client.send(request_bytes("/1") + request_bytes("/2"))
    client.writer.write_eof()
    data = [await client.response(), await client.response()]
    assert [r.text() for r in data] == ["GET /1 0", "GET /2 0"]
    assert await client.read_until_closed() == b""


async def test_date_and_server_headers(serve: Any, recorder: Any) -> None:
    served = await serve(recorder)
    client = await served.client()
    await client.send(request_bytes("/"))
    response = await client.response()
    from email.utils import parsedate_to_datetime

    date = parsedate_to_datetime(response.headers["Date"])
    assert date.tzinfo is not None
    assert response.headers["Date"].endswith(" GMT")
    assert response.headers["Server"]


async def test_connection_registry_tracks_connections(serve: Any, recorder: Any) -> None:
    served = await serve(recorder)
    clients = [await served.client() for _ in range(3)]
    for client in clients:
        await client.send(request_bytes("/"))
        await client.response()
    assert len(served.server.connections) == 3
    await clients[0].close()
    for _ in range(50):
        if len(served.server.connections) == 2:
            break
        await asyncio.sleep(0.02)
    assert len(served.server.connections) == 2


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_pipelining_on_both_loops(use_uvloop: bool) -> None:
    # The engine runs on uvloop by default and on plain asyncio as fallback: check the core
    # behaviour on a fresh loop of each kind.
    import uvloop
    from rawhttp import serving

    async def main() -> list[str]:
        async def handler(request: Any) -> Response:
            return Response(text=request.path)

        async with serving(handler) as served:
            client = await RawClient.connect(served.host, served.port)
            await client.send(b"".join(request_bytes(f"/{i}") for i in range(50)))
            texts = [(await client.response()).text() for _ in range(50)]
            await client.close()
            return texts

    runner = uvloop.run if use_uvloop else asyncio.run
    assert runner(main()) == [f"/{i}" for i in range(50)]


def test_limits_replace_keeps_other_defaults() -> None:
    limits = dataclasses.replace(Limits(), header_timeout_s=1.0)
    assert limits.keepalive_timeout_s == 75

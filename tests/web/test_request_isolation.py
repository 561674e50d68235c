"""Each request in its own context, and cancellation of its own handler, whatever its position
on a connection (issue 13).

- Client disconnect with ``handler_cancellation=True`` cancels the handler (and without it, the
  handler finishes), as in aiohttp, on the first request, the 5th keep-alive request and a
  pipelined one. (``asyncio.timeout`` and ``CancelledError`` raised by a handler are scenarios
  of ``test_differential_positions``.)
- A property test interleaves many requests over a few connections, some pipelined, some
  handlers waiting and some not: every response sees only its own request's context values,
  and every request starts from the defaults.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiohttp import web as aio_web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_differential_positions import serving

from forkloop import web as fl_web

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))

from rawhttp import RawClient, request_bytes

POSITIONS = ("first", "keepalive5", "pipelined")
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("REQUEST_ID", default="none")
SEEN_AT_START: contextvars.ContextVar[str] = contextvars.ContextVar("SEEN_AT_START", default="")


# -- cancellation on client disconnect ---------------------------------------------------------


def disconnect_app(
    web: ModuleType, outcomes: list[str], started: asyncio.Event, ended: asyncio.Event
) -> Any:
    async def quick(request: Any) -> Any:
        return web.Response(text="quick")

    async def slow(request: Any) -> Any:
        started.set()
        try:
            await asyncio.sleep(0.5)
        except asyncio.CancelledError:
            outcomes.append("cancelled")
            ended.set()
            raise
        outcomes.append("finished")
        ended.set()
        return web.Response(text="slow")

    app = web.Application()
    app.router.add_get("/quick", quick)
    app.router.add_get("/slow", slow)
    return app


async def disconnect_outcome(web: ModuleType, position: str, cancellation: bool) -> list[str]:
    outcomes: list[str] = []
    started, ended = asyncio.Event(), asyncio.Event()
    app = disconnect_app(web, outcomes, started, ended)
    async with serving(app, web, handler_cancellation=cancellation) as (host, port):
        client = await RawClient.connect(host, port)
        slow = request_bytes("/slow")
        if position == "first":
            await client.send(slow)
        elif position == "keepalive5":
            for _ in range(4):
                await client.send(request_bytes("/quick"))
                assert (await client.response()).status == 200
            await client.send(slow)
        else:
            await client.send(request_bytes("/quick") * 2 + slow + request_bytes("/quick"))
            for _ in range(2):
                assert (await client.response()).status == 200
        await asyncio.wait_for(started.wait(), 5)
        await client.close()
        await asyncio.wait_for(ended.wait(), 5)
    return outcomes


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("cancellation", [True, False])
@pytest.mark.parametrize("position", POSITIONS)
async def test_client_disconnect_cancels_the_handler_as_aiohttp(
    position: str, cancellation: bool
) -> None:
    expected = await disconnect_outcome(aio_web, position, cancellation)
    got = await disconnect_outcome(fl_web, position, cancellation)
    assert got == expected
    assert got == (["cancelled"] if cancellation else ["finished"])


# -- context isolation: a property over interleaved requests -----------------------------------


def isolation_app() -> Any:
    @fl_web.middleware
    async def tag(request: Any, handler: Any) -> Any:
        SEEN_AT_START.set(f"{REQUEST_ID.get()}")  # what this request inherited: must be none
        REQUEST_ID.set(request.query["id"])
        return await handler(request)

    async def on_prepare(request: Any, response: Any) -> None:
        response.headers["X-Hook-Sees"] = REQUEST_ID.get()

    async def echo(request: Any) -> Any:
        waits = int(request.query["waits"])
        for _ in range(waits):
            await asyncio.sleep(0)
        return fl_web.Response(text=f"{SEEN_AT_START.get()}|{REQUEST_ID.get()}")

    app = fl_web.Application(middlewares=[tag])
    app.on_response_prepare.append(on_prepare)
    app.router.add_get("/echo", echo)
    return app


def plain_isolation_app() -> Any:
    """No middleware or hook: the handler sets the variable, responses take the one write."""

    async def echo(request: Any) -> Any:
        inherited = REQUEST_ID.get()
        REQUEST_ID.set(request.query["id"])
        for _ in range(int(request.query["waits"])):
            await asyncio.sleep(0)
        return fl_web.Response(text=f"{inherited}|{REQUEST_ID.get()}")

    app = fl_web.Application()
    app.router.add_get("/echo", echo)
    return app


# (connection, burst size, handler waits) per step: bursts are pipelined in one write.
STEPS = st.lists(
    st.tuples(st.integers(0, 2), st.integers(1, 4), st.integers(0, 2)), min_size=1, max_size=12
)


async def check_interleaved(app: Any, steps: list[tuple[int, int, int]], hooked: bool) -> None:
    async with serving(app, fl_web) as (host, port):
        clients = [await RawClient.connect(host, port) for _ in range(3)]
        pending: list[list[str]] = [[], [], []]
        try:
            counter = 0
            for conn, burst, waits in steps:
                data = b""
                for _ in range(burst):
                    counter += 1
                    rid = f"r{counter}"
                    pending[conn].append(rid)
                    data += request_bytes(f"/echo?id={rid}&waits={waits}")
                await clients[conn].send(data)
                # Read one earlier request's answer on another connection, to interleave.
                other = (conn + 1) % 3
                if pending[other]:
                    await _expect(clients[other], pending[other].pop(0), hooked)
            for conn in range(3):
                while pending[conn]:
                    await _expect(clients[conn], pending[conn].pop(0), hooked)
        finally:
            for client in clients:
                await client.close()


async def _expect(client: RawClient, rid: str, hooked: bool) -> None:
    response = await client.response()
    assert response.status == 200
    assert response.text() == f"none|{rid}"
    if hooked:
        assert response.headers["X-Hook-Sees"] == rid


@pytest.mark.parametrize("hooked", [True, False])
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=STEPS)
def test_interleaved_requests_see_only_their_own_context(
    hooked: bool, steps: list[tuple[int, int, int]]
) -> None:
    app = isolation_app() if hooked else plain_isolation_app()
    asyncio.run(check_interleaved(app, steps, hooked))

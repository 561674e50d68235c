"""Differential harness: every scenario answered by forkloop as by aiohttp, at every position
of a connection.

One application (``test_parity_aiohttp.build_app`` plus the scenarios of issue 13) is built
from ``aiohttp.web`` and from ``forkloop.web`` and served by each on a real socket. Every
scenario is sent three ways, with a raw socket client:

- ``first``: the only request of a fresh connection;
- ``keepalive5``: the 5th request of a keep-alive connection, after four requests that set
  context variables (in a middleware, the handler and an ``on_response_prepare`` hook) or
  catch a cancellation of their task;
- ``pipelined``: the 3rd of four requests sent in one write (two of those warm-ups before it);
- ``first-close`` and ``keepalive5-close``: as ``first`` and ``keepalive5``, the request saying
  ``Connection: close``; whether the server then closed the connection is part of the outcome.

Status, headers (the values of ``Date`` and ``Server`` only where the server set them) and body
must be the same. A request that gets no response (the connection closed) is an outcome too.
Issue 13's defects are scenarios: context variables leaking to the next request (``/whoami``),
a timeout on a later request (``/timeout``), ``Response`` subclass hooks (``/subclass``) and
app-set ``Server``/``Date`` (``/server-header``...).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiohttp import web as aio_web
from test_parity_aiohttp import REQUESTS, build_app

from forkloop import web as fl_web

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))

from rawhttp import Incomplete, RawClient, request_bytes

POSITIONS = ("first", "keepalive5", "pipelined", "first-close", "keepalive5-close")
APP_DATE = "Thu, 01 Jan 2026 00:00:00 GMT"

# Set by requests to /set (middleware, handler, hook); read by /whoami. A fresh request must
# see the defaults, whatever ran before it on the connection.
MW_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("MW_VAR", default="-")
HANDLER_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("HANDLER_VAR", default="-")
HOOK_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("HOOK_VAR", default="-")


def _seen() -> str:
    return f"mw={MW_VAR.get()} handler={HANDLER_VAR.get()} hook={HOOK_VAR.get()}"


def build_scenario_app(web: ModuleType, kind: str) -> Any:
    """Issue 13's scenarios, against either module: in the parity app (``full``: middlewares
    and an ``on_response_prepare`` hook on every response), or alone in a bare app (``bare``:
    nothing between the handler and the wire, so the one-write path is taken where it can)."""
    if kind == "bare":
        app = web.Application()
        add_scenarios(web, app)
        return app
    app = build_app(web)
    add_scenarios(web, app)

    @web.middleware
    async def context_mw(request: Any, handler: Any) -> Any:
        before = _seen()
        if request.path.startswith("/set"):
            MW_VAR.set("mw-set")
        response = await handler(request)
        if request.path.startswith(("/set", "/whoami")):
            response.headers["X-Mw-Before"] = before
            response.headers["X-Mw-After"] = _seen()
        if request.path == "/server-header-mw":
            response.headers["server"] = "mw-server"
            response.headers["DATE"] = APP_DATE
        return response

    async def context_hook(request: Any, response: Any) -> None:
        if request.path.startswith(("/set", "/whoami")):
            response.headers["X-Hook-Before"] = _seen()
        if request.path.startswith("/set"):
            HOOK_VAR.set("hook-set")

    app.middlewares.append(context_mw)
    app.on_response_prepare.append(context_hook)
    return app


def add_scenarios(web: ModuleType, app: Any) -> None:
    async def json_handler(request: Any) -> Any:
        return web.json_response({"seen": _seen()})

    async def set_vars(request: Any) -> Any:
        HANDLER_VAR.set("handler-set")
        return web.Response(text=_seen())

    async def set_vars_waiting(request: Any) -> Any:
        HANDLER_VAR.set("handler-set")
        await asyncio.sleep(0)
        return web.Response(text=_seen())

    async def whoami(request: Any) -> Any:
        return web.Response(text=_seen())

    async def timeout_now(request: Any) -> Any:
        async with asyncio.timeout(0):
            await asyncio.sleep(1)
        return web.Response(text="not reached")

    async def timeout_later(request: Any) -> Any:
        await asyncio.sleep(0)
        async with asyncio.timeout(0.01):
            await asyncio.sleep(1)
        return web.Response(text="not reached")

    async def timeout_caught(request: Any) -> Any:
        try:
            async with asyncio.timeout(0):
                await asyncio.sleep(1)
        except TimeoutError:
            return web.Response(text="caught")
        return web.Response(text="not reached")

    async def cancelled(request: Any) -> Any:
        raise asyncio.CancelledError

    async def cancel_caught(request: Any) -> Any:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            return web.Response(text="caught")  # and left the cancellation counted
        return web.Response(text="not cancelled")

    async def cancelling(request: Any) -> Any:
        task = asyncio.current_task()
        assert task is not None
        return web.Response(text=f"cancelling={task.cancelling()}")

    class HookedResponse(web.Response):  # type: ignore[name-defined,misc]
        async def prepare(self, request: Any) -> Any:
            self.headers["X-Sub-Prepare"] = "called"
            return await super().prepare(request)

        async def write_eof(self, data: bytes = b"") -> None:
            self.body = b"eof-called!"  # as long as the body it replaces
            await super().write_eof()

    async def subclass(request: Any) -> Any:
        return HookedResponse(text="eof-skipped")

    class PlainSubclass(web.Response):  # type: ignore[name-defined,misc]
        pass

    async def plain_subclass(request: Any) -> Any:
        return PlainSubclass(text="plain subclass")

    async def server_header(request: Any) -> Any:
        return web.Response(text="h", headers={"SERVER": "mine", "date": APP_DATE})

    async def server_header_mw(request: Any) -> Any:
        return web.Response(text="mw")

    for path, handler in (
        ("/set", set_vars),
        ("/set-waiting", set_vars_waiting),
        ("/whoami", whoami),
        ("/timeout", timeout_now),
        ("/timeout-later", timeout_later),
        ("/timeout-caught", timeout_caught),
        ("/cancelled", cancelled),
        ("/cancel-caught", cancel_caught),
        ("/cancelling", cancelling),
        ("/subclass", subclass),
        ("/plain-subclass", plain_subclass),
        ("/server-header", server_header),
        ("/server-header-mw", server_header_mw),
        ("/json", json_handler),
    ):
        app.router.add_get(path, handler)


def _scenario_bytes(method: str, path: str, kwargs: dict[str, Any]) -> bytes:
    if "json" in kwargs:
        body = json.dumps(kwargs["json"]).encode()
        return request_bytes(path, method, headers={"Content-Type": "application/json"}, body=body)
    return request_bytes(path, method)


SCENARIOS: list[tuple[str, str, bytes]] = [
    (f"{method} {path}", method, _scenario_bytes(method, path, kwargs))
    for method, path, kwargs in REQUESTS
] + [
    (f"GET {path}", "GET", request_bytes(path))
    for path in (
        "/set",
        "/set-waiting",
        "/whoami",
        "/timeout",
        "/timeout-later",
        "/timeout-caught",
        "/cancelled",
        "/cancel-caught",
        "/cancelling",
        "/subclass",
        "/plain-subclass",
        "/server-header",
        "/server-header-mw",
        "/json",
    )
]

# Warm-ups: they set context variables, and catch a cancellation of their task.
WARM_UPS = (request_bytes("/set"), request_bytes("/cancel-caught"))
SERVER_ERRORS = (500, 504)
SERVER_ERROR_HEADERS = ("content-length", "content-type", "connection")
TRAILER = request_bytes("/whoami")


def normalized(response: Any) -> tuple[Any, ...]:
    """What must be equal: status, headers and body; the values of Date and Server only when
    the application chose them (each must still appear exactly once)."""
    headers = []
    for name, value in response.raw_headers:
        key = name.lower()
        if key == "date" and value != APP_DATE:
            value = "<server's date>"
        elif key == "server" and value not in ("mine", "mw-server"):
            value = "<server's name>"
        headers.append((key, value))
    body = response.body
    if response.status in SERVER_ERRORS:
        # Answers the server makes of a handler's exception: forkloop says what happened
        # (aiohttp sends an empty 504) and keeps the connection (aiohttp closes it).
        body = b"<server's error body>"
        headers = [(k, v) for k, v in headers if k not in SERVER_ERROR_HEADERS]
    return response.status, sorted(headers), body


async def _outcome(client: RawClient, method: str) -> tuple[Any, ...]:
    try:
        return normalized(await client.response(method, timeout_s=5.0))
    except (Incomplete, ConnectionError):
        return ("closed without a response",)


async def exchange(host: str, port: int, data: bytes, method: str, position: str) -> Any:
    """The response to ``data`` sent at ``position`` on a new connection."""
    client = await RawClient.connect(host, port)
    closing = position.endswith("-close")
    if closing:
        position = position.removesuffix("-close")
        data = data.replace(b"\r\n", b"\r\nConnection: close\r\n", 1)
    try:
        if position == "first":
            await client.send(data)
        elif position == "keepalive5":
            for warm_up in WARM_UPS * 2:
                await client.send(warm_up)
                warm = await client.response()
                assert warm.status == 200, warm
        else:
            await client.send(b"".join(WARM_UPS) + data + TRAILER)
            for _ in range(2):
                warm = await client.response()
                assert warm.status == 200, warm
        if position == "keepalive5":
            await client.send(data)
        outcome = await _outcome(client, method)
        if closing and outcome != ("closed without a response",):
            outcome = (*outcome, "closed" if await client.is_closed(wait=2.0) else "left open")
        return outcome
    finally:
        await client.close()


@asynccontextmanager
async def serving(app: Any, web: ModuleType, **kwargs: Any) -> AsyncIterator[tuple[str, int]]:
    """``app`` served by ``web`` (aiohttp's or ours) on 127.0.0.1, a free port."""
    runner = web.AppRunner(app, shutdown_timeout=1, **kwargs)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield host, port
    finally:
        await runner.cleanup()


async def answers(web: ModuleType, kind: str, position: str) -> dict[str, Any]:
    out = {}
    async with serving(build_scenario_app(web, kind), web) as (host, port):
        for name, method, data in SCENARIOS:
            out[name] = await exchange(host, port, data, method, position)
    return out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::aiohttp.web.NotAppKeyWarning")
@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("kind", ["full", "bare"])
async def test_every_scenario_at_every_position_answers_like_aiohttp(
    kind: str, position: str
) -> None:
    expected = await answers(aio_web, kind, position)
    got = await answers(fl_web, kind, position)
    differ = {
        name: {"aiohttp": expected[name], "forkloop": got[name]}
        for name in expected
        if expected[name] != got[name]
    }
    assert not differ, "\n".join(f"{name}: {diff}" for name, diff in differ.items())
    # The scenarios did what they are for (on both servers).
    assert got["GET /timeout"][0] == 504
    assert got["GET /cancelled"] == ("closed without a response",)
    assert got["GET /subclass"][2] == b"eof-called!"
    assert b"handler=-" in got["GET /whoami"][2]
    assert got["GET /cancelling"][2] == b"cancelling=0"
    if position.endswith("-close"):
        assert got["GET /whoami"][-1] == "closed"
        assert ("connection", "close") in got["GET /whoami"][1]


# -- issue 13, defect 5: an aiohttp Application handed to forkloop --------------------------

AIOHTTP_APP = """\
from aiohttp import web

async def hello(request):
    return web.Response(text="hi")

app = web.Application()
app.router.add_get("/", hello)
"""
FIX = "`from forkloop import web`"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=30
    )


def test_run_app_refuses_an_aiohttp_app_in_one_line_exit_3(tmp_path: Path) -> None:
    (tmp_path / "aioapp.py").write_text(AIOHTTP_APP)
    script = "import aioapp\nfrom forkloop import web\nweb.run_app(aioapp.app, port=0)\n"
    proc = _run(["-c", script], tmp_path)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert FIX in lines[0]
    assert "Running on" not in proc.stdout


def test_run_app_refuses_an_aiohttp_app_from_a_coroutine(tmp_path: Path) -> None:
    (tmp_path / "aioapp.py").write_text(AIOHTTP_APP)
    script = (
        "import aioapp\nfrom forkloop import web\n"
        "async def make():\n    return aioapp.app\n"
        "web.run_app(make(), port=0)\n"
    )
    proc = _run(["-c", script], tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert FIX in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("preload", [False, True])
def test_forkloop_serve_refuses_an_aiohttp_app_exit_3(tmp_path: Path, preload: bool) -> None:
    (tmp_path / "aioapp.py").write_text(AIOHTTP_APP)
    args = ["-m", "forkloop", "serve", "aioapp:app", "--bind", "127.0.0.1:0", "-w", "1"]
    proc = _run(args + (["--preload"] if preload else []), tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert FIX in proc.stderr, proc.stderr
    assert "ready" not in proc.stderr.lower().replace("readyz", "")

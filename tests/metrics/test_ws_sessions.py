"""End to end: a WebSocket session's request counts up to its 101, not the session; the
session's lifetime lands in ``forkloop_websocket_session_duration_seconds``."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from metrics_support import samples, scrape

pytestmark = pytest.mark.slow

SESSION_S = 10.0  # the 10 s session: past the 5 s bucket bound, inside the 15 s one

APP = """
from forkloop import web

async def chat(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        await ws.send_str(message.data)
    return ws

async def hello(request):
    return web.Response(text="hello")

app = web.Application()
app.router.add_get("/chat", chat)
app.router.add_get("/hello", hello)
"""


class Server:
    def __init__(self, tmp_path: Path) -> None:
        (tmp_path / "wsapp.py").write_text(APP)
        self.log = tmp_path / "server.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "forkloop", "serve", "wsapp:app", "-w", "1",
                    "-b", "127.0.0.1:0", "--metrics-bind", "127.0.0.1:0", "--no-access-log",
                ],
                cwd=tmp_path,
                env=dict(os.environ, PYTHONPATH=str(tmp_path)),
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.port = int(self.wait(r"listening on http://127\.0\.0\.1:(\d+)"))
        self.metrics_port = int(self.wait(r"metrics: http://127\.0\.0\.1:(\d+)/metrics"))
        self.wait(r"ready: 1 workers serving()")

    def wait(self, pattern: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.log.read_text(errors="replace"))
            if found:
                return found.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r}:\n{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path)
    try:
        yield running
    finally:
        running.stop()


async def _session(port: int) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{port}/chat") as ws,
    ):
        deadline = time.monotonic() + SESSION_S
        while time.monotonic() < deadline:
            await ws.send_str("ping")
            assert (await ws.receive_str()) == "ping"
            await asyncio.sleep(0.25)
        await ws.close()
        async with session.get(f"http://127.0.0.1:{port}/hello") as response:
            assert response.status == 200


def _wait_for_sessions(metrics_port: int, count: int) -> str:
    deadline = time.monotonic() + 10
    while True:
        text = scrape(metrics_port)
        found = samples(text, "forkloop_websocket_session_duration_seconds_count")
        if sum(found.values()) >= count or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


async def test_a_websocket_session_stays_out_of_the_http_latency_histogram(
    server: Server,
) -> None:
    await _session(server.port)
    text = _wait_for_sessions(server.metrics_port, 1)
    chat = {
        labels: value
        for labels, value in samples(text, "http_server_request_duration_seconds_bucket").items()
        if 'http_route="/chat"' in labels
    }
    below_1s = [v for k, v in chat.items() if 'le="1.0"' in k]
    every = [v for k, v in chat.items() if 'le="+Inf"' in k]
    assert every == [1.0], chat  # the upgrade request, answered 101
    assert below_1s == [1.0], "the session's lifetime was recorded as the request's duration"
    sums = samples(text, "http_server_request_duration_seconds_sum")
    assert next(v for k, v in sums.items() if "/chat" in k) < 1.0
    sessions = samples(text, "forkloop_websocket_session_duration_seconds_bucket")
    assert sessions['{le="5.0",worker="0"}'] == 0.0
    assert sessions['{le="15.0",worker="0"}'] == 1.0
    lifetime = samples(text, "forkloop_websocket_session_duration_seconds_sum")['{worker="0"}']
    assert SESSION_S <= lifetime < SESSION_S + 2.0

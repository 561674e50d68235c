"""``python -m forkloop.demo``: the supervisor in the foreground, stopped by Ctrl-C.

Real processes and real signals: the launcher on free ports, two workers each answering with
its own slot, the page and ``/metrics`` served, a chat message round-trip over a real
WebSocket client; then SIGINT (what a terminal's Ctrl-C sends) to the launcher's pid must
stop everything -- no worker left, both ports free again.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import websockets
from demo_helpers import Demo, alive, children_of, port_is_free

from forkloop.demo.__main__ import METRICS_URL_ENV, command

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def test_command_defaults() -> None:
    argv, _env = command([])
    assert argv[1:] == [
        "-m",
        "forkloop",
        "serve",
        "forkloop.demo:app",
        "-w",
        "2",
        "-b",
        "127.0.0.1:8080",
        "--metrics-bind",
        "127.0.0.1:9100",
    ]
    assert argv[0] == sys.executable


def test_command_derives_the_metrics_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(METRICS_URL_ENV, raising=False)
    assert command([])[1][METRICS_URL_ENV] == "http://127.0.0.1:9100/metrics"
    argv, env = command(["-b", "127.0.0.1:1234", "--metrics-bind", "0.0.0.0:4321", "-w", "3"])
    assert argv[5:] == ["-w", "3", "-b", "127.0.0.1:1234", "--metrics-bind", "0.0.0.0:4321"]
    assert env[METRICS_URL_ENV] == "http://127.0.0.1:4321/metrics"
    monkeypatch.setenv(METRICS_URL_ENV, "http://127.0.0.1:1/elsewhere")
    assert command([])[1][METRICS_URL_ENV] == "http://127.0.0.1:1/elsewhere"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-w", "0"], "-w/--workers must be at least 1"),
        (["--metrics-bind", "nowhere"], "--metrics-bind must be HOST:PORT"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_2_with_one_message(args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "forkloop.demo", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr


def test_bind_failure_is_reported() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "forkloop.demo", "-b", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert done.returncode != 0
    assert "forkloop: error:" in done.stderr


def test_a_taken_metrics_port_is_one_line_not_a_traceback() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "forkloop.demo",
                "-b",
                "127.0.0.1:0",
                "--metrics-bind",
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"forkloop.demo: error: cannot bind --metrics-bind 127.0.0.1:{port}: Address already in use"
    )


async def _chat_round_trip(url: str) -> dict[str, object]:
    async with websockets.connect(url, open_timeout=10) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert hello["type"] == "hello"
        await ws.send(json.dumps({"text": "ping from the launcher test"}))
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if msg["type"] == "message":
                assert msg["text"] == "ping from the launcher test"
                assert msg["worker"] == hello["worker"]
                return dict(hello["worker"])


def test_demo_serves_then_sigint_leaves_nothing_behind(demo: Demo) -> None:
    assert len(demo.workers) == 2
    master = demo.proc.pid
    # The launcher exec'd the supervisor: the pid we started is the master.
    assert f"master pid: {master}" in demo.log()

    page = demo.get("/").decode()
    assert "forkloop demo" in page
    assert "/static/demo.js?v=" in page
    # Fresh connections are spread over both workers; each knows its own slot.
    seen: dict[int, int] = {}
    deadline = time.monotonic() + 20
    while len(seen) < 2 and time.monotonic() < deadline:
        who = json.loads(demo.get("/api/whoami"))
        seen[who["slot"]] = who["pid"]
    assert sorted(seen) == [0, 1]
    assert sorted(seen.values()) == sorted(demo.workers)

    worker = asyncio.run(_chat_round_trip(demo.url.replace("http", "ws") + "/ws/chat?room=t"))
    assert worker["pid"] in demo.workers

    with urllib.request.urlopen(demo.metrics_url, timeout=10) as response:
        exposition = response.read().decode()
    assert "http_server_request_duration_seconds_bucket" in exposition

    assert demo.stop(signal.SIGINT) == 0, demo.log()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in demo.workers):
        time.sleep(0.05)
    assert [p for p in [master, *demo.workers] if alive(p)] == []
    assert children_of(master) == []
    assert port_is_free(demo.port)
    assert port_is_free(demo.metrics_port)

"""Overload protection end to end: ``forkloop serve --max-concurrency/--max-queue-time`` as a
real process, real clients, the metrics the master serves.

Shed requests get 503 + Retry-After + Connection: close, the app never sees them (its handler,
middleware and on_response_prepare counters say so), the probes are answered while the worker
is saturated, the metrics count them as shed and not as requests; a stale ``X-Request-Start``
is shed only when ``--trust-request-start`` is given. Also ``web.run_app(...,
max_concurrency=N)`` in a process of its own.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import re
import select
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

OVERLOAD_APP = """\
import asyncio

from forkloop import web

COUNTS = {"handler": 0, "middleware": 0, "prepare": 0}


@web.middleware
async def count_middleware(request, handler):
    COUNTS["middleware"] += 1
    return await handler(request)


async def on_prepare(request, response):
    COUNTS["prepare"] += 1


async def slow(request):
    COUNTS["handler"] += 1
    with open("started.log", "a") as started:  # the test waits for these lines
        started.write("slow\\n")
    await asyncio.sleep(float(request.query.get("s", "1")))
    return web.Response(text="slow done")


async def fast(request):
    COUNTS["handler"] += 1
    return web.Response(text="fast")


async def counts(request):
    return web.json_response(COUNTS)


app = web.Application(middlewares=[count_middleware])
app.router.add_get("/slow", slow)
app.router.add_get("/fast", fast)
app.router.add_get("/counts", counts)
app.on_response_prepare.append(on_prepare)
"""

RUN_APP = """\
import asyncio
import socket
import sys

from forkloop import web

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
print(f"PORT {sock.getsockname()[1]}", flush=True)
calls = []


async def slow(request):
    calls.append(request.path)
    print("STARTED", flush=True)  # the test waits for this line
    await asyncio.sleep(1.0)
    return web.Response(text=f"ran {len(calls)}")


app = web.Application()
app.router.add_get("/slow", slow)
web.run_app(app, sock=sock, print=None, max_concurrency=1)
"""


def _get(
    port: int, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def _wait_metric(port: int, name: str, want: float, **labels: str) -> str:
    deadline = time.monotonic() + 10
    while True:
        text = _scrape(port)
        if _metric(text, name, **labels) == want or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def _wait_lines(path: Path, count: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or len(path.read_text().splitlines()) < count:
        assert time.monotonic() < deadline, f"fewer than {count} lines in {path}"
        time.sleep(0.02)


@pytest.fixture
def overload_app(app_dir: Path) -> Path:
    (app_dir / "overload_app.py").write_text(OVERLOAD_APP)
    return app_dir


def test_concurrency_bound_sheds_without_the_app_and_counts(serve: Any, overload_app: Path) -> None:
    served = serve(
        "-w", "1", "--no-access-log", "--max-concurrency", "3",
        "--metrics-bind", "127.0.0.1:0", app="overload_app:app",
    )  # fmt: skip
    metrics_port = int(served.wait_log(r"metrics: http://127\.0\.0\.1:(\d+)/metrics").group(1))
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        slow = [pool.submit(_get, served.port, "/slow?s=3") for _ in range(3)]
        _wait_lines(overload_app / "started.log", 3)  # the three are in flight
        flood = [pool.submit(_get, served.port, "/slow?s=3") for _ in range(9)]
        refused = [f.result() for f in flood]
        # Saturated: the probes still answer.
        assert _get(served.port, "/-/healthz")[0] == 200
        assert _get(served.port, "/-/readyz")[0] == 200
        admitted = [f.result() for f in slow]
    assert [status for status, _, _ in admitted] == [200, 200, 200]
    for status, headers, body in refused:
        assert status == 503
        assert headers["retry-after"] == "1"
        assert headers["connection"] == "close"
        assert b"overloaded" in body
    # The app saw the three admitted requests only (and now this one).
    status, _, body = _get(served.port, "/counts")
    assert status == 200
    assert body == b'{"handler": 3, "middleware": 4, "prepare": 3}'
    text = _wait_metric(metrics_port, "http_server_requests_shed_total", 9, reason="concurrency")
    assert _metric(text, "http_server_requests_shed_total", reason="concurrency") == 9
    assert _metric(text, "http_server_requests_shed_total", reason="queue_time") == 0
    # Shed requests are not requests of the app: 3 slow ones in the duration histogram.
    assert _metric(text, "http_server_request_duration_seconds_count", http_route="/slow") == 3
    assert (
        _metric(text, "http_server_request_duration_seconds_count", http_response_status_code="503")
        == 0
    )
    assert "http_server_active_requests" in text


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "untrusted"])
def test_stale_x_request_start_is_shed_only_when_trusted(
    serve: Any, overload_app: Path, trusted: bool
) -> None:
    trust = ["--trust-request-start"] if trusted else []
    served = serve(
        "-w", "1", "--no-access-log", "--max-queue-time", "0.5", *trust,
        "--metrics-bind", "127.0.0.1:0", app="overload_app:app",
    )  # fmt: skip
    metrics_port = int(served.wait_log(r"metrics: http://127\.0\.0\.1:(\d+)/metrics").group(1))
    stale = {"X-Request-Start": f"t={int((time.time() - 10) * 1000)}"}  # queued 10 s upstream
    fresh = {"X-Request-Start": f"t={time.time():.3f}"}
    status, headers, _ = _get(served.port, "/fast", stale)
    assert status == (503 if trusted else 200)
    if trusted:
        assert headers["retry-after"] == "1"
    assert _get(served.port, "/fast", fresh)[0] == 200
    assert _get(served.port, "/fast", {"X-Request-Start": "t=garbage"})[0] == 200  # ignored
    assert _get(served.port, "/fast")[0] == 200
    assert _get(served.port, "/-/readyz", stale)[0] == 200  # probes: never shed
    _, _, body = _get(served.port, "/counts")
    admitted_fast = 3 if trusted else 4
    assert body.startswith(b'{"handler": %d,' % admitted_fast)
    want = 1 if trusted else 0
    text = _wait_metric(metrics_port, "http_server_requests_shed_total", want, reason="queue_time")
    assert _metric(text, "http_server_requests_shed_total", reason="queue_time") == want
    # Every admitted request's queue time is observed (the probe is not a request: /counts is).
    queued = _metric(text, "http_server_request_queue_duration_seconds_count")
    assert queued >= admitted_fast


def test_run_app_keyword_sheds_beyond_the_bound(tmp_path: Path) -> None:
    script = tmp_path / "run_app_overload.py"
    script.write_text(RUN_APP)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.match(r"PORT (\d+)", line)
        assert match, line
        port = int(match.group(1))
        deadline = time.monotonic() + 15
        while True:  # the socket is bound before run_app listens on it
            try:
                _get(port, "/-/nothing")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            first = pool.submit(_get, port, "/slow")
            ready, _, _ = select.select([proc.stdout], [], [], 15)
            assert ready
            assert proc.stdout.readline().strip() == "STARTED"
            second = pool.submit(_get, port, "/slow")
            refused = second.result()
            ran = first.result()
        assert ran[0] == 200
        assert ran[2] == b"ran 1"
        assert refused[0] == 503
        assert refused[1]["retry-after"] == "1"
        assert _get(port, "/slow")[2] == b"ran 2"  # the refused one never ran
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()

"""forkloop.workers.gunicorn_conf: one /metrics for all gunicorn workers, through churn."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest

pytestmark = pytest.mark.slow

APP = """
from forkloop import web

async def user(request):
    return web.Response(text="u")

app = web.Application()
app.router.add_get("/users/{id}", user)
"""


def _port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _total(metrics_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("http_server_request_duration_seconds_count{")
    )


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out: {what}")


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.add(int(entry))
    return found


async def _send(port: int, count: int) -> None:
    connector = aiohttp.TCPConnector(force_close=True, limit=8)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> None:
            async with session.get(f"http://127.0.0.1:{port}/users/{i}") as response:
                assert response.status == 200
                await response.read()

        await asyncio.gather(*(one(i) for i in range(count)))


@pytest.mark.parametrize("worker_class", ["GunicornWebWorker"])
def test_gunicorn_metrics_totals_survive_kill_and_reload(tmp_path: Path, worker_class: str) -> None:
    (tmp_path / "recipeapp.py").write_text(APP)
    port, metrics_port = _port(), _port()
    env = dict(
        os.environ, PYTHONPATH=str(tmp_path), FORKLOOP_METRICS_BIND=f"127.0.0.1:{metrics_port}"
    )
    log = (tmp_path / "gunicorn.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "recipeapp:app",
            "-k", f"forkloop.workers.{worker_class}", "-w", "2", "-b", f"127.0.0.1:{port}",
            "-c", "python:forkloop.workers.gunicorn_conf", "--no-control-socket",
            "--graceful-timeout", "5",
        ],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait(lambda: len(_children(proc.pid)) == 2 and _total(metrics_port) == 0, 20, "start")
        asyncio.run(_send(port, 100))
        _wait(lambda: _total(metrics_port) == 100, 10, "100 counted")
        workers = _children(proc.pid)
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        _wait(lambda: len(_children(proc.pid) - workers) == 2, 20, "respawn after kill")
        assert _total(metrics_port) == 100
        old = _children(proc.pid)
        proc.send_signal(signal.SIGHUP)
        _wait(
            lambda: len(_children(proc.pid) - old) == 2 and not (_children(proc.pid) & old),
            20,
            "HUP",
        )
        assert _total(metrics_port) == 100
        asyncio.run(_send(port, 20))
        _wait(lambda: _total(metrics_port) == 120, 10, "120 counted")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    text = (tmp_path / "gunicorn.log").read_text()
    assert "forkloop metrics: http://127.0.0.1:" in text
    assert "Traceback" not in text

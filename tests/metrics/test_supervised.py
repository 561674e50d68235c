"""End to end: `forkloop serve -w 3 --metrics-bind` under real requests, kills and reloads."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from metrics_support import Served, free_port, samples

pytestmark = pytest.mark.slow


async def _send(port: int, count: int) -> list[int]:
    # A new connection per request, so the kernel spreads them over the workers.
    connector = aiohttp.TCPConnector(force_close=True, limit=16)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> int:
            async with session.get(f"http://127.0.0.1:{port}/users/{i}") as response:
                await response.read()
                return response.status

        return list(await asyncio.gather(*(one(i) for i in range(count))))


def _replace_all(served: Served, how: str) -> None:
    old = served.worker_pids()
    assert len(old) == 3
    if how == "kill":
        for pid in old:
            os.kill(pid, signal.SIGKILL)
    else:
        served.proc.send_signal(signal.SIGHUP)

    def replaced() -> bool:
        pids = served.worker_pids()
        return len(pids) == 3 and not pids & old and served.ready() == 3

    served.wait_for(replaced, timeout=30, what=f"workers replaced by {how}")


def _live_reporting(text: str) -> int:
    lag = samples(text, "forkloop_worker_event_loop_lag_seconds_count")
    return sum(1 for key in lag if 'worker="retired"' not in key)


async def test_totals_exact_through_51_worker_replacements(served: Served) -> None:
    n = 300
    statuses = await _send(served.port, n)
    assert statuses == [200] * n
    served.wait_for(lambda: served.total() == n, what=f"{n} requests counted")
    first = served.scrape()
    by_worker = samples(first, "http_server_request_duration_seconds_count")
    assert len(by_worker) >= 2, f"requests were not spread over workers: {by_worker}"
    for _ in range(10):
        assert served.total() == n
    sizes = []
    # SIGKILL rounds: the supervisor backs off repeated crashes (0, 0.25, 0.5 ... s), so two
    # rounds of three; then rolling reloads, which replace every worker without backoff.
    for how in ["kill"] * 2 + ["reload"] * 15:
        _replace_all(served, how)
        # Sizes compare like with like: every live worker has reported its first heartbeat.
        served.wait_for(
            lambda: _live_reporting(served.scrape()) == 3, what="3 new workers reporting"
        )
        text = served.scrape()
        assert served.total(text) == n, f"after a {how}: {served.total(text)} != {n}"
        sizes.append(len(text))
    text = served.scrape()
    restarts = samples(text, "forkloop_supervisor_worker_restarts_total")
    assert restarts['{cause="crash"}'] == 6
    assert restarts['{cause="reload"}'] == 45
    retired = {
        k: v
        for k, v in samples(text, "http_server_request_duration_seconds_count").items()
        if 'worker="retired"' in k
    }
    assert sum(retired.values()) == n
    # Bounded: the scrape holds live slots plus one retired set, however many workers ran.
    assert max(sizes) <= min(sizes) * 1.05, sizes
    # Nothing on disk: the server's TMPDIR stays empty.
    tmp = served.log.parent / "tmp"
    assert list(tmp.iterdir()) == []


async def test_counts_survive_a_graceful_recycle_of_fresh_requests(served: Served) -> None:
    # Requests served just before a rolling reload reach the master with the worker's last
    # flush, not only on the periodic tick.
    statuses = await _send(served.port, 60)
    assert set(statuses) == {200}
    _replace_all(served, "reload")
    served.wait_for(lambda: served.total() == 60, timeout=5, what="60 requests counted")


def test_promtool_finds_nothing_to_report(served: Served) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package 'prometheus'); CI installs it")
    asyncio.run(_send(served.port, 20))
    served.wait_for(lambda: served.total() == 20, what="20 requests counted")
    check = subprocess.run(
        [promtool, "check", "metrics"], input=served.scrape().encode(), capture_output=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout == b""
    assert check.stderr == b""


def test_openmetrics_is_negotiated(served: Served) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{served.metrics_port}/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        content_type = response.headers["Content-Type"]
        body = response.read().decode()
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith("# EOF\n")
    assert "# TYPE http_server_request_duration_seconds histogram" in body


def test_real_prometheus_scrapes_the_server(served: Served, tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("prometheus not installed (Debian package 'prometheus'); CI installs it")
    asyncio.run(_send(served.port, 30))
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: forkloop\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{served.metrics_port}']\n"
    )
    with (tmp_path / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def query(expr: str) -> list[dict[str, object]]:
            url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
            with urllib.request.urlopen(url, timeout=5) as response:
                import json

                return list(json.loads(response.read())["data"]["result"])

        deadline = time.monotonic() + 30
        up = count = None
        while time.monotonic() < deadline:
            try:
                up = query('up{job="forkloop"}')
                count = query("sum(http_server_request_duration_seconds_count)")
            except OSError:
                time.sleep(0.3)
                continue
            if up and count and float(count[0]["value"][1]) > 0:  # type: ignore[index]
                break
            time.sleep(0.3)
        assert up, "Prometheus has no 'up' sample for the forkloop target"
        assert up[0]["value"][1] == "1", up  # type: ignore[index]
        assert count, "Prometheus has no http_server_request_duration_seconds_count"
        assert float(count[0]["value"][1]) >= 30, count  # type: ignore[index]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_taken_metrics_port_is_one_line_and_nonzero(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable, "-m", "forkloop", "serve", "forkloop.demo:app", "-w", "1",
                "-b", f"127.0.0.1:{free_port()}", "--metrics-bind", f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )  # fmt: skip
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    expected = f"--metrics-bind 127.0.0.1:{port}: cannot listen: Address already in use"
    assert lines[-1] == f"forkloop: error: {expected}"
    assert "Traceback" not in result.stderr

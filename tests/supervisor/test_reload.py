"""Rolling reloads and recycling under real load: zero failed requests."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import Served, alive, finish_load
from .test_e2e import http_get

pytestmark = pytest.mark.slow

WRK = shutil.which("wrk")


def wrk_summary(output: str) -> dict[str, int]:
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = sum(int(n) for n in errors.groups()) if errors else 0
    return {
        "requests": requests,
        "socket_errors": socket_errors,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
    }


@pytest.mark.skipif(WRK is None, reason="wrk is not installed (apt-get install wrk)")
def test_twenty_hup_reloads_under_wrk_load_fail_nothing(serve: Any, app_dir: Path) -> None:
    served: Served = serve("-w", "2", "--no-access-log")
    assert http_get(served.port, "/version") == (200, b"v1")
    wrk = subprocess.Popen(
        [
            str(WRK),
            "-t1",
            "-c16",
            "-d60s",
            "--timeout",
            "10s",
            f"http://127.0.0.1:{served.port}/pid",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(0.5)
        for generation in range(2, 22):
            if generation == 12:  # the reload picks up changed code
                source = (app_dir / "app.py").read_text()
                (app_dir / "app.py").write_text(source.replace('VERSION = "v1"', 'VERSION = "v2"'))
            served.send(signal.SIGHUP)
            served.wait_log(rf"reload complete: generation {generation},", timeout=20)
    finally:
        wrk.send_signal(signal.SIGINT)  # wrk prints its summary on SIGINT
        output, _ = wrk.communicate(timeout=20)
    summary = wrk_summary(output)
    print(f"20 reloads under wrk: {summary}")
    assert summary["requests"] > 1000, output
    assert summary["socket_errors"] == 0, output
    assert summary["non2xx"] == 0, output
    assert served.count(r"reload complete") == 20
    assert http_get(served.port, "/version") == (200, b"v2")
    assert len(served.workers()) == 2


def test_reload_with_broken_code_keeps_the_old_workers(serve: Any, app_dir: Path) -> None:
    served: Served = serve("-w", "2")
    old = sorted(served.workers())
    (app_dir / "app.py").write_text("this is not python\n")
    served.send(signal.SIGHUP)
    served.wait_log(r"reload to generation 2 failed .*: the previous workers keep serving")
    time.sleep(0.5)
    assert sorted(served.workers()) == old
    assert http_get(served.port, "/version") == (200, b"v1")
    assert served.proc.poll() is None


def test_max_requests_recycles_under_load_without_failures(serve: Any) -> None:
    served: Served = serve(
        "-w", "2", "--max-requests", "100", "--max-requests-jitter", "20", "--no-access-log"
    )
    stats = served.load(5.0, connections=8)
    recycled = served.count(r"replacing after max_requests")
    print(
        f"max-requests: {recycled} recycles, {stats['ok']} ok, {stats['failed']} failed, "
        f"{stats['closes']} Connection: close, {len(stats['by_pid'])} workers served"
    )
    assert recycled >= 3
    assert stats["failed"] == 0, stats
    assert stats["ok"] > 500
    time.sleep(0.5)
    assert 2 <= len(served.workers()) <= 3


def test_memory_limit_recycles_workers_while_serving(serve: Any) -> None:
    served: Served = serve("-w", "2", "--max-worker-memory", "1M", "--no-access-log")
    stats = served.load(3.0, connections=4)
    recycled = served.count(r"replacing after memory")
    print(f"max-worker-memory: {recycled} recycles, {stats['ok']} ok, {stats['failed']} failed")
    assert recycled >= 2  # every worker is over 1 MiB: replaced about once a second
    assert stats["failed"] == 0, stats
    assert len(served.workers()) >= 2


def test_usr2_reexecutes_the_master_on_the_same_sockets(serve: Any) -> None:
    served: Served = serve("-w", "2", "--no-access-log")
    old_workers = served.workers()
    load = served.load(4.0, connections=4, background=True)
    time.sleep(0.5)
    served.send(signal.SIGUSR2)
    served.wait_log(r"USR2: started a new master (\d+)")
    new_master = int(served.wait_log(r"USR2: started a new master (\d+)").group(1))
    served.wait_log(r"upgrade complete: stopping the previous master", timeout=20)
    assert served.proc.wait(20) == 0  # the old master drained and left
    stats = finish_load(load)  # type: ignore[arg-type]
    try:
        assert stats["failed"] == 0, stats
        assert alive(new_master)
        assert http_get(served.port, "/pid")[0] == 200
        assert not any(alive(pid) for pid in old_workers)
    finally:
        import os

        os.kill(new_master, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while alive(new_master) and time.monotonic() < deadline:
            time.sleep(0.05)

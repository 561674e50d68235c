"""``forkloop serve`` end to end: real processes, real signals, bounded load on loopback."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import APP, PYTHON, Served, alive, finish_load

pytestmark = pytest.mark.slow


def http_get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    if not data:
        raise ConnectionResetError("closed without a response")
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_health_endpoints_and_banner(serve: Any) -> None:
    served: Served = serve("-w", "2", "--metrics-bind", "127.0.0.1:0")
    assert http_get(served.port, "/-/healthz") == (200, b"ok\n")
    assert http_get(served.port, "/-/readyz") == (200, b"ready\n")
    status, body = http_get(served.port, "/pid")
    assert status == 200
    assert int(body) in served.workers()
    log = served.log
    assert "workers: 2, loop: uvloop" in log
    assert f"master pid: {served.pid}" in log
    assert "metrics: " in log
    assert len(served.workers()) == 2


def test_syntax_error_exits_non_zero_quickly_with_the_error(serve: Any, app_dir: Path) -> None:
    (app_dir / "broken.py").write_text("from forkloop import web\n\ndef oops(:\n    pass\n")
    started = time.monotonic()
    served: Served = serve("-w", "2", app="broken:app", ready=False)
    code = served.proc.wait(10)
    elapsed = time.monotonic() - started
    assert code == 3
    assert elapsed < 5
    log = served.log
    assert "forkloop: error: cannot import 'broken': SyntaxError" in log
    assert "broken.py, line 3" in log


def test_bad_option_is_one_line_and_exit_2(app_dir: Path) -> None:
    for args, needle in (
        (["app:app", "--workers", "zero"], "--workers: expected an integer"),
        (["app:app", "--bind", "nowhere"], "expected HOST:PORT"),
        (["app:app", "--log-format", "xml"], "expected one of text, json"),
        (["notanapp"], "APP must look like module:attr"),
        (["app:app", "--no-such-option"], "unrecognized arguments"),
        (["app:app", "--config", "missing.toml"], "cannot read config file"),
    ):
        proc = subprocess.run(
            [PYTHON, "-m", "forkloop", "serve", *args],
            cwd=app_dir,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith("forkloop: error: "), proc.stderr
        assert needle in lines[0]


def test_term_drains_in_flight_request_then_refuses_and_exits_zero(serve: Any) -> None:
    served: Served = serve("-w", "2", "--drain-delay", "1", "--graceful-timeout", "10")
    port = served.port
    result: list[object] = []
    slow = threading.Thread(target=lambda: result.append(http_get(port, "/slow?s=3")))
    slow.start()
    time.sleep(0.7)  # the request is in flight
    workers = served.workers()
    started = time.monotonic()
    served.send(signal.SIGTERM)
    time.sleep(0.3)
    assert http_get(port, "/-/readyz")[0] == 503  # readiness turns at once
    assert http_get(port, "/pid")[0] == 200  # ... while still serving during the drain delay
    while not refused(port):  # past the drain delay: the port stops accepting
        assert time.monotonic() - started < 5, "still accepting long after the drain delay"
        time.sleep(0.05)
    assert time.monotonic() - started >= 1.0  # not before the drain delay
    slow.join(10)
    assert result == [(200, b"slow done")]
    assert served.proc.wait(15) == 0
    assert time.monotonic() - started < 10
    for pid in workers:
        assert not alive(pid)
    log = served.log
    assert log.count("on_shutdown") == 2
    assert log.count("on_cleanup") == 2


def test_connections_queued_at_stop_are_served_not_dropped(serve: Any) -> None:
    served: Served = serve("-w", "1", "--drain-delay", "0")
    results: list[object] = []
    holder = threading.Thread(target=lambda: results.append(http_get(served.port, "/hold?s=1.5")))
    holder.start()
    time.sleep(0.4)  # the only worker's loop is blocked in the handler
    served.send(signal.SIGTERM)
    time.sleep(0.3)
    # This connection waits in the kernel's accept queue while the worker is blocked and the
    # TERM is pending: the worker must still accept and answer it before it exits.
    queued = http_get(served.port, "/pid")
    holder.join(10)
    assert results == [(200, b"held")]
    assert queued[0] == 200
    assert served.proc.wait(15) == 0
    assert refused(served.port)


def test_kill_master_takes_every_worker_down_within_a_second(serve: Any) -> None:
    served: Served = serve("-w", "3")
    workers = served.workers()
    assert len(workers) == 3
    served.send(signal.SIGKILL)
    served.proc.wait(5)
    deadline = time.monotonic() + 1.0
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(alive(pid) for pid in workers)
    assert refused(served.port)


def test_blocked_event_loop_is_detected_dumped_and_replaced(serve: Any) -> None:
    served: Served = serve("-w", "1", "--timeout", "2")
    victim = served.workers()[0]
    with pytest.raises(OSError, match=r"closed|reset|timed out"):  # the worker is aborted
        http_get(served.port, "/block", timeout=8)
    served.wait_log(rf"worker {victim} timed out", timeout=10)
    served.wait_log(r"worker (\d+) ready \(slot", start=served.log.index("timed out"))
    log = served.log
    assert "Fatal Python error: Aborted" in log
    line = next(i for i, text in enumerate(APP.splitlines(), 1) if "BLOCKING-LINE" in text)
    assert f'app.py", line {line} in block' in log  # the blocking line, from faulthandler
    assert not alive(victim)
    assert http_get(served.port, "/pid")[0] == 200


def test_ttin_ttou_change_the_worker_count(serve: Any) -> None:
    served: Served = serve("-w", "2", "--loop", "asyncio")  # the plain asyncio loop too
    assert "loop: asyncio" in served.log
    served.send(signal.SIGTTIN)
    served.wait_log(r"SIGTTIN: 3 workers")
    deadline = time.monotonic() + 10
    while len(served.workers()) != 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(served.workers()) == 3
    served.send(signal.SIGTTOU)
    served.wait_log(r"SIGTTOU: 2 workers")
    served.send(signal.SIGTTOU)  # one at a time: a second one sent at once may merge
    served.wait_log(r"SIGTTOU: 1 workers")
    deadline = time.monotonic() + 10
    while len(served.workers()) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(served.workers()) == 1
    assert http_get(served.port, "/pid")[0] == 200


def test_sigkill_of_one_worker_under_load(serve: Any) -> None:
    served: Served = serve("-w", "2")
    load = served.load(4.0, connections=8, background=True)
    time.sleep(1.5)
    victim = served.workers()[0]
    served.send(signal.SIGCONT)  # no-op: the master ignores it
    import os

    os.kill(victim, signal.SIGKILL)
    exited = served.wait_log(rf"worker {victim} \(slot \d+\) exited: killed by SIGKILL")
    ready = served.wait_log(r"worker (\d+) ready", start=exited.end())
    stats = finish_load(load)  # type: ignore[arg-type]
    stamp = served.log
    t_exit = _stamp(stamp, exited.start())
    t_ready = _stamp(stamp, ready.start())
    print(f"SIGKILL -> replacement ready in {t_ready - t_exit:.3f}s; load: {stats}")
    assert t_ready - t_exit < 1.0, (t_exit, t_ready)
    assert stats["ok"] > 100
    # Only requests on the killed worker's connections fail.
    assert set(stats["failure_pids"]) <= {str(victim)}, stats  # type: ignore[arg-type]
    assert stats["failed"] <= 8, stats


def _stamp(log: str, index: int) -> float:
    """Seconds of day of the log line containing ``index``."""
    start = log.rfind("\n", 0, index) + 1
    clock = log[start:].split(" ", 1)[0]  # 2026-11-21T05:51:27.626Z
    hours, minutes, seconds = clock.split("T")[1].rstrip("Z").split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def test_python_dash_m_and_console_script_both_work(app_dir: Path) -> None:
    proc = subprocess.run(
        [PYTHON, "-m", "forkloop", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0
    assert "forkloop" in proc.stdout
    script = Path(sys.executable).parent / "forkloop"
    if script.exists():
        proc = subprocess.run(
            [str(script), "serve", "--help"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert proc.returncode == 0
        assert "--graceful-timeout" in proc.stdout

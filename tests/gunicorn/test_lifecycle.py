"""gunicorn's worker lifecycle with forkloop's worker classes: boot, signals, timeouts, HUP.

Every test runs a real gunicorn master (tests/gunicorn/conftest.py) with both worker classes.
"""

from __future__ import annotations

import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from gunicorn_harness import WORKER_CLASSES, Gunicorn, alive

pytestmark = pytest.mark.timeout(60)


def get(url: str, timeout: float = 10) -> httpx.Response:
    return httpx.get(url, timeout=timeout)


@pytest.mark.parametrize(
    "app", ["fl_app:app", "fl_app:factory", "fl_app:async_factory", "fl_app:runner_factory"]
)
def test_serves_app_factory_and_async_factory(gunicorn, worker_class: str, app: str) -> None:
    server: Gunicorn = gunicorn(app=app, worker=worker_class)
    [pid] = server.wait_booted()
    response = get(server.url("/pid"))
    assert response.status_code == 200
    assert response.text == f"{pid} v1"
    assert get(server.url("/hello")).text == "hello"


def test_handler_errors_reach_gunicorns_error_log(gunicorn) -> None:
    server: Gunicorn = gunicorn()
    server.wait_booted()
    assert get(server.url("/boom")).status_code == 500
    log = server.wait_for("RuntimeError: boom in a handler")
    assert re.search(r"\[\d+\] \[ERROR\] Error handling request", log), log
    assert get(server.url("/hello")).status_code == 200


def test_term_finishes_in_flight_request_then_exits_0(gunicorn, worker_class: str) -> None:
    server: Gunicorn = gunicorn("--graceful-timeout", "10", worker=worker_class)
    [pid] = server.wait_booted()
    url = server.url("/slow?s=3")
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(get, url, 15)
        time.sleep(0.5)  # let the request reach the worker
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        response = pending.result(timeout=15)
    assert response.status_code == 200
    assert response.text == "slow done"
    assert server.wait_exit(15) == 0
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 9.5, elapsed  # waited for the request, not for the graceful timeout
    assert not alive(pid)
    assert f"fl_app cleanup ran in {pid}" in server.log()
    # New connections were refused once the master closed its listeners.
    with pytest.raises(httpx.TransportError):
        get(server.url("/hello"), timeout=2)


def test_term_caps_in_flight_requests_at_95_percent_of_graceful_timeout(gunicorn) -> None:
    server: Gunicorn = gunicorn("--graceful-timeout", "2")
    [pid] = server.wait_booted()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(get, server.url("/slow?s=30"), 15)
        time.sleep(0.5)
        server.signal(signal.SIGTERM)
        code = server.wait_exit(10)
        with pytest.raises(httpx.TransportError):
            pending.result(timeout=10)
    assert code == 0
    # The worker gave up on the request and exited by itself, before the master's SIGKILL
    # (a SIGKILLed worker never logs this line).
    assert f"Worker exiting (pid: {pid})" in server.log()


@pytest.mark.parametrize("sig", [signal.SIGQUIT, signal.SIGINT], ids=["QUIT", "INT"])
def test_quit_and_int_exit_at_once(gunicorn, worker_class: str, sig: signal.Signals) -> None:
    server: Gunicorn = gunicorn("--graceful-timeout", "30", worker=worker_class)
    [pid] = server.wait_booted()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(get, server.url("/slow?s=20"), 15)
        time.sleep(0.5)
        started = time.monotonic()
        server.signal(sig)
        server.wait_exit(10)
        elapsed = time.monotonic() - started
        with pytest.raises(httpx.TransportError):
            pending.result(timeout=10)
    assert elapsed < 3, elapsed
    assert not alive(pid)
    assert f"fl_app cleanup ran in {pid}" in server.log()  # on_cleanup still ran


def test_quit_during_a_graceful_stop_makes_it_quick(gunicorn) -> None:
    server: Gunicorn = gunicorn("--graceful-timeout", "30", worker=WORKER_CLASSES[1])
    [pid] = server.wait_booted()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(get, server.url("/slow?s=20"), 25)
        time.sleep(0.5)
        server.signal(signal.SIGTERM)
        server.wait_for(f"Worker {pid}: TERM received")
        started = time.monotonic()
        server.signal(signal.SIGQUIT)
        server.wait_exit(10)
        elapsed = time.monotonic() - started
        with pytest.raises(httpx.TransportError):
            pending.result(timeout=10)
    assert elapsed < 4, elapsed
    assert f"Worker {pid}: SIGQUIT received" in server.log()
    assert f"Worker exiting (pid: {pid})" in server.log()


def test_blocked_loop_is_killed_by_timeout_and_replaced(gunicorn, worker_class: str) -> None:
    server: Gunicorn = gunicorn("--timeout", "2", worker=worker_class)
    [pid] = server.wait_booted()
    assert get(server.url("/pid")).text == f"{pid} v1"  # the heartbeat keeps an idle worker
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(get, server.url("/block?s=60"), 30)
        log = server.wait_for(rf"WORKER TIMEOUT \(pid:{pid}\)", timeout=20)
        with pytest.raises(httpx.TransportError):
            pending.result(timeout=20)
    [_, new_pid] = server.wait_booted(count=2, timeout=20)
    assert new_pid != pid
    assert get(server.url("/pid")).text == f"{new_pid} v1"
    log = server.log()
    assert "Most recent call first" in log or "most recent call first" in log  # faulthandler
    assert "in block" in log  # the dump shows the handler that blocked the loop
    assert not alive(pid)


def test_hup_replaces_workers_and_serves_new_code(gunicorn, workdir: Path, worker_class) -> None:
    server: Gunicorn = gunicorn(workers=2, worker=worker_class)
    old = set(server.wait_booted(count=2))
    assert get(server.url("/pid")).text.endswith(" v1")
    source = workdir / "fl_app.py"
    source.write_text(source.read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))
    server.signal(signal.SIGHUP)
    booted = server.wait_booted(count=4, timeout=20)
    new = set(booted) - old
    assert len(new) == 2
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in old) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in old)
    for _ in range(6):
        pid, version = get(server.url("/pid")).text.split()
        assert int(pid) in new
        assert version == "v2"


def test_worker_exits_when_its_master_dies(gunicorn, worker_class: str) -> None:
    server: Gunicorn = gunicorn(worker=worker_class)
    [pid] = server.wait_booted()
    server.proc.kill()
    server.proc.wait(5)
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid)
    assert "Parent changed, shutting down" in server.log()


FAILING_APPS = {
    "broken_import:app": (3, "boom while importing the app module"),
    "fl_app:failing_factory": (3, "boom in the app factory"),
    "fl_app:failing_startup": (3, "boom in on_startup"),
    "fl_app:wsgi_like": (3, "looks like a WSGI/ASGI application"),
    "fl_app:VERSION": (4, "Application object must be callable"),  # gunicorn's own check
}


@pytest.mark.parametrize(
    ("app", "worker"),
    [(app, WORKER_CLASSES[0]) for app in FAILING_APPS]
    + [
        ("fl_app:failing_factory", WORKER_CLASSES[1]),
        ("fl_app:failing_startup", WORKER_CLASSES[1]),
    ],
)
def test_failing_app_stops_gunicorn_without_respawning(gunicorn, app: str, worker: str) -> None:
    # One worker: with several, gunicorn 27 itself may exit 1 instead of 3 when a second worker
    # fails while the master halts (HaltServer raised again from Arbiter.stop()).
    server: Gunicorn = gunicorn(app=app, worker=worker)
    code = server.wait_exit(20)
    log = server.log()
    expected_code, message = FAILING_APPS[app]
    assert code == expected_code, log
    assert message in log
    assert "serving" not in log
    assert len(server.worker_pids()) == 1, log  # the master halted: no respawn loop


@pytest.mark.parametrize(
    ("worker", "sig"),
    [
        (WORKER_CLASSES[0], signal.SIGQUIT),
        (WORKER_CLASSES[1], signal.SIGQUIT),
        (WORKER_CLASSES[1], signal.SIGTERM),
    ],
    ids=["asyncio-QUIT", "uvloop-QUIT", "uvloop-TERM"],
)
def test_signal_while_the_app_is_imported_is_not_lost(gunicorn, worker: str, sig) -> None:
    # The loop does not run yet while gunicorn imports the app (and uvloop only listens for
    # signals while it runs): the signal must still stop the worker once the import is done.
    server: Gunicorn = gunicorn("--graceful-timeout", "30", app="slow_import:app", worker=worker)
    server.wait_for(r"Booting worker")
    [pid] = server.worker_pids()
    time.sleep(0.5)
    started = time.monotonic()
    server.signal(sig)
    assert server.wait_exit(15) == 0
    assert time.monotonic() - started < 10  # not the 30 s graceful timeout
    assert not alive(pid)
    assert "serving" not in server.log()  # it stopped before building the app

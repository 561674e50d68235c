"""``/-/healthz`` and ``/-/readyz`` under ``gunicorn -k forkloop.workers.GunicornWebWorker``:
answered before the app, as the supervised workers answer them, and readiness 503 once
gunicorn tells the worker to stop (a real TERM to the gunicorn master)."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable

import pytest
from gunicorn_harness import WORKER_CLASSES, Gunicorn

pytestmark = pytest.mark.timeout(60)
StartGunicorn = Callable[..., Gunicorn]


def _request(port: int, path: str) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        return _read(sock)


def _read(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head, "closed without a response"
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize("worker", WORKER_CLASSES)
def test_probes_answer_before_the_app(gunicorn: StartGunicorn, worker: str) -> None:
    server = gunicorn(worker=worker)
    server.wait_booted()
    assert _request(server.port, "/-/healthz") == (200, b"ok\n")
    assert _request(server.port, "/-/readyz") == (200, b"ready\n")
    assert _request(server.port, "/-/readyz?verbose=1") == (200, b"ready\n")
    assert _request(server.port, "/-/other")[0] == 404  # the app's, as under the supervisor
    assert _request(server.port, "/hello") == (200, b"hello")
    time.sleep(0.3)
    logged = server.access_lines()
    assert any("/hello" in line for line in logged), logged
    assert not any("/-/readyz" in line or "/-/healthz" in line for line in logged), logged


@pytest.mark.parametrize("worker", WORKER_CLASSES)
def test_readyz_turns_503_when_gunicorn_stops_the_worker(
    gunicorn: StartGunicorn, worker: str
) -> None:
    server = gunicorn("--graceful-timeout", "10", worker=worker)
    (pid,) = server.wait_booted()
    port = server.port
    # A request in flight keeps the stopping worker serving; a probe is on its way on a second
    # connection (its head not complete yet) when the TERM arrives.
    slow: list[tuple[int, bytes]] = []
    in_flight = threading.Thread(target=lambda: slow.append(_request(port, "/slow?s=2")))
    in_flight.start()
    probe = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        probe.sendall(b"GET /-/readyz HTTP/1.1\r\nHost: t\r\n")
        time.sleep(0.3)
        server.signal(signal.SIGTERM)  # gunicorn's master: close the listeners, TERM workers
        server.wait_for(rf"Worker {pid}: TERM received")
        probe.sendall(b"\r\n")
        status, body = _read(probe)
    finally:
        probe.close()
    in_flight.join(15)
    assert (status, body) == (503, b"draining\n")
    assert slow == [(200, b"slow done")]  # the in-flight request finished
    assert server.wait_exit(20) == 0

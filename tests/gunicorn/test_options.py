"""gunicorn options honoured by forkloop's worker: limits, keep-alive, TLS, log reopening."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from gunicorn_harness import Gunicorn

pytestmark = pytest.mark.timeout(60)


def _exchange(port: int, raw: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_limit_request_options_map_to_engine_limits(gunicorn) -> None:
    server: Gunicorn = gunicorn(
        "--limit-request-line",
        "100",
        "--limit-request-fields",
        "5",
        "--limit-request-field_size",
        "60",
    )
    server.wait_booted()
    port = server.port
    ok = b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    assert _status(_exchange(port, ok)) == 200
    long_line = b"GET /hello?" + b"x" * 120 + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    assert _status(_exchange(port, long_line)) == 414
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(8))
    too_many = b"GET /hello HTTP/1.1\r\nHost: t\r\n" + many + b"Connection: close\r\n\r\n"
    assert _status(_exchange(port, too_many)) == 431
    big_field = b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: " + b"v" * 80 + b"\r\n\r\n"
    assert _status(_exchange(port, big_field)) == 431


def test_unix_socket_bind(gunicorn) -> None:
    directory = Path(tempfile.mkdtemp(prefix="flg-", dir="/tmp"))  # short: sun_path is 108 bytes
    path = directory / "s.sock"
    server: Gunicorn = gunicorn(bind=f"unix:{path}")
    try:
        [pid] = server.wait_booted()
        transport = httpx.HTTPTransport(uds=str(path))
        with httpx.Client(transport=transport, timeout=10) as client:
            response = client.get("http://localhost/pid")
        assert response.text == f"{pid} v1"
        assert f"serving http://unix:{path}:" in server.log()
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_keep_alive_option_closes_idle_connections(gunicorn) -> None:
    server: Gunicorn = gunicorn("--keep-alive", "1")
    server.wait_booted()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        rest = sock.recv(65536)  # blocks until the server closes the idle connection
        waited = time.monotonic() - started
    assert rest == b""
    assert 0.5 < waited < 8, waited


def test_keep_alive_zero_closes_after_each_response(gunicorn) -> None:
    server: Gunicorn = gunicorn("--keep-alive", "0")
    server.wait_booted()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    assert response.startswith(b"HTTP/1.1 200")
    assert b"connection: close" in response.lower()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def test_certfile_and_keyfile_serve_https(gunicorn, worker_class, certificate) -> None:
    cert, key = certificate
    server: Gunicorn = gunicorn("--certfile", str(cert), "--keyfile", str(key), worker=worker_class)
    [pid] = server.wait_booted()
    response = httpx.get(server.url("/pid", scheme="https"), verify=False, timeout=10)
    assert response.status_code == 200
    assert response.text == f"{pid} v1"
    assert "https://127.0.0.1:" in server.log()
    with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port is refused
        httpx.get(server.url("/pid"), timeout=5)


def test_usr1_reopens_the_access_log(gunicorn, workdir: Path) -> None:
    server: Gunicorn = gunicorn()
    server.wait_booted()
    assert httpx.get(server.url("/hello"), timeout=10).status_code == 200
    rotated = workdir / "access.log.1"
    deadline = time.monotonic() + 10
    while not server.access_lines() and time.monotonic() < deadline:
        time.sleep(0.05)
    server.access_path.rename(rotated)
    server.signal(signal.SIGUSR1)
    server.wait_for("Handling signal: usr1")
    deadline = time.monotonic() + 10
    while not server.access_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the master forwards USR1 to the worker after reopening its own files
    assert httpx.get(server.url("/teapot"), timeout=10).status_code == 418
    deadline = time.monotonic() + 10
    while not server.access_lines() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert '"GET /teapot HTTP/1.1" 418' in server.access_lines()[0]
    assert '"GET /hello HTTP/1.1" 200' in rotated.read_text()
    assert "teapot" not in rotated.read_text()


def test_overload_protection_from_the_environment(gunicorn) -> None:
    server: Gunicorn = gunicorn(extra_env={"FORKLOOP_MAX_CONCURRENCY": "1"})
    server.wait_booted()
    port = server.port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as busy:
        busy.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        deadline = time.monotonic() + 2.5  # /slow lasts 3 s: soon it is in flight
        hello = b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        while _status(refused := _exchange(port, hello)) != 503:
            assert time.monotonic() < deadline, refused
            time.sleep(0.05)
        assert _status(refused) == 503
        assert b"\r\nRetry-After: 1\r\n" in refused
        probe = _exchange(port, b"GET /-/healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert _status(probe) == 200
        busy.settimeout(20)
        assert busy.recv(65536).startswith(b"HTTP/1.1 200")


def test_a_bad_overload_variable_stops_the_worker_in_one_line(gunicorn) -> None:
    server: Gunicorn = gunicorn(extra_env={"FORKLOOP_MAX_QUEUE_TIME": "soon"})
    assert server.wait_exit(30) != 0
    assert "FORKLOOP_MAX_QUEUE_TIME: expected seconds > 0, got 'soon'" in server.log()

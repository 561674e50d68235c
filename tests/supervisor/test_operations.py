"""Operating ``forkloop serve``: config file + HUP, --reload, --preload, --pid, JSON logs,
--log-file + USR1, TLS, unix sockets."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import PYTHON, Served
from .test_e2e import http_get

pytestmark = pytest.mark.slow


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_hup_rereads_the_config_file(serve: Any, app_dir: Path) -> None:
    toml = app_dir / "forkloop.toml"
    toml.write_text("workers = 1\n")
    served: Served = serve("--config", str(toml))
    assert len(served.workers()) == 1
    toml.write_text("workers = 3\nmax-requests = 1000\n")
    served.send(signal.SIGHUP)
    served.wait_log(r"reload complete: generation 2, 3 workers")
    wait_for(lambda: len(served.workers()) == 3)
    toml.write_text("workers = [oops\n")
    served.send(signal.SIGHUP)
    served.wait_log(r"configuration not reloaded: .*invalid TOML")
    served.wait_log(r"reload complete: generation 3, 3 workers")  # old config kept


def test_reload_option_restarts_workers_on_source_change(serve: Any, app_dir: Path) -> None:
    served: Served = serve("-w", "1", "--reload")
    assert http_get(served.port, "/version") == (200, b"v1")
    time.sleep(1.1)  # mtime granularity and the watcher's one-second poll
    source = (app_dir / "app.py").read_text()
    (app_dir / "app.py").write_text(source.replace('VERSION = "v1"', 'VERSION = "v2"'))
    served.wait_log(r"--reload: app.py changed")
    served.wait_log(r"reload complete: generation 2")
    assert http_get(served.port, "/version") == (200, b"v2")


def test_preload_pid_file_and_json_logs(serve: Any, app_dir: Path) -> None:
    pid_file = app_dir / "master.pid"
    served: Served = serve("-w", "2", "--preload", "--pid", str(pid_file), "--log-format", "json")
    assert pid_file.read_text().strip() == str(served.pid)
    assert http_get(served.port, "/pid")[0] == 200
    records = [json.loads(line) for line in served.log.splitlines() if line.startswith("{")]
    assert any(r["message"].startswith("ready: 2 workers") for r in records)
    assert {"time", "level", "logger", "pid", "message"} <= set(records[0])
    assert "preloaded" in served.log
    served.send(signal.SIGTERM)
    assert served.proc.wait(15) == 0
    assert not pid_file.exists()


def test_log_file_is_reopened_on_usr1(serve: Any, app_dir: Path) -> None:
    log_file = app_dir / "forkloop.log"
    served: Served = serve("-w", "1", "--log-file", str(log_file), ready=False)
    wait_for(lambda: log_file.exists() and "workers serving" in log_file.read_text())
    served.port = int(log_file.read_text().split("listening on http://127.0.0.1:")[1].split()[0])
    rotated = app_dir / "forkloop.log.1"
    log_file.rename(rotated)
    served.send(signal.SIGUSR1)
    wait_for(log_file.exists)
    assert http_get(served.port, "/pid")[0] == 200
    wait_for(lambda: '"GET /pid HTTP/1.1" 200' in log_file.read_text())  # the worker reopened
    assert "USR1: log files reopened" in log_file.read_text()
    assert '"GET /pid' not in rotated.read_text()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_and_a_unix_socket(serve: Any, app_dir: Path) -> None:
    cert, key = app_dir / "cert.pem", app_dir / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    path = app_dir / "app.sock"
    served: Served = serve(
        "-w", "1", "--certfile", str(cert), "--keyfile", str(key), "-b", f"unix:{path}"
    )
    assert f"listening on https://127.0.0.1:{served.port}" in served.log
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    with (
        socket.create_connection(("127.0.0.1", served.port), timeout=10) as raw,
        context.wrap_socket(raw) as tls,
    ):
        tls.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert data.endswith(b"v1")
    with socket.socket(socket.AF_UNIX) as unix:
        unix.settimeout(10)
        unix.connect(str(path))
        with context.wrap_socket(unix) as tls:
            tls.sendall(b"GET /-/readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert tls.recv(65536).startswith(b"HTTP/1.1 200")
    served.send(signal.SIGTERM)
    assert served.proc.wait(15) == 0
    assert not path.exists()  # the master removes the unix socket it created


def test_bad_tls_files_are_a_config_error(app_dir: Path) -> None:
    (app_dir / "junk.pem").write_text("not a certificate")
    proc = subprocess.run(
        [
            PYTHON,
            "-m",
            "forkloop",
            "serve",
            "app:app",
            "--certfile",
            "junk.pem",
            "--keyfile",
            "junk.pem",
        ],
        cwd=app_dir,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("forkloop: error: --certfile/--keyfile: cannot load")

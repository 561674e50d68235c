"""Fixtures for the metrics tests: a `forkloop serve` subprocess with metrics on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from metrics_support import APP, Served, free_port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "metricsapp.py").write_text(APP)
    port, metrics_port = free_port(), free_port()
    log = tmp_path / "server.log"
    env = dict(os.environ, PYTHONPATH=str(app_dir), TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "forkloop", "serve", "metricsapp:app",
                "-w", "3", "-b", f"127.0.0.1:{port}",
                "--metrics-bind", f"127.0.0.1:{metrics_port}",
                "--graceful-timeout", "5",
            ],
            cwd=app_dir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Served(proc, port, metrics_port, log)
    try:
        server.wait_for(lambda: server.ready() == 3, what="3 ready workers")
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

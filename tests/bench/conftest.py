"""Fixtures of the benchmark-harness smoke tests: bench/ on sys.path, peer servers by PID."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import common  # noqa: E402
import run  # noqa: E402

StartPeer = Callable[..., common.ServerProcess]  # also spelled out in test_peers.py


@pytest.fixture
def start_peer() -> Iterator[StartPeer]:
    """Start a peer of bench/run.py pinned to CPU 0; every one started is stopped by PID."""
    started: list[common.ServerProcess] = []

    def start(key: str, *, wait: bool = True) -> common.ServerProcess:
        port = common.free_port()
        server = common.ServerProcess(key, common.pinned(0, run.PEERS[key].command(port)), port)
        server.start()
        started.append(server)
        if wait:
            server.wait_ready(timeout_s=30)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        pytest.skip("wrk is not installed (apt-get install -y wrk); make bench installs it")
    return path

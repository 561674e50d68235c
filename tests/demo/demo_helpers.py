"""Helpers for the demo's tests: the demo as a real ``python -m forkloop.demo`` process,
free loopback ports, and the process table read from /proc."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

READY = re.compile(r"ready: (\d+) workers serving")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Nobody listens on ``port`` and a new server could listen there (as servers do, with
    SO_REUSEADDR: connections the old one closed may linger in TIME_WAIT)."""
    with socket.socket() as probe:
        probe.settimeout(2)
        try:
            probe.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            pass
        else:
            return False
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


class Demo:
    """A running ``python -m forkloop.demo``."""

    def __init__(self, tmp: Path, workers: int = 2) -> None:
        self.port = free_port()
        self.metrics_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self.log_path = tmp / "demo.log"
        env = dict(os.environ)
        env.pop("FORKLOOP_DEMO_METRICS_URL", None)
        env.pop("FORKLOOP_WORKER_SLOT", None)
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "forkloop.demo",
                "-b",
                f"127.0.0.1:{self.port}",
                "--metrics-bind",
                f"127.0.0.1:{self.metrics_port}",
                "-w",
                str(workers),
            ],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the test's own Ctrl-C is not the demo's
        )
        self.workers: list[int] = []

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"demo exited with {self.proc.returncode}:\n{self.log()}")
            if READY.search(self.log()):
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"demo not ready in {timeout}s:\n{self.log()}")
        self.workers = children_of(self.proc.pid)

    def get(self, path: str, timeout: float = 10.0) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            data: bytes = response.read()
            return data

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> int | None:
        """Send ``sig`` to the launcher's pid; return its exit status (None: still running)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill_leftovers(self) -> None:
        for pid in [self.proc.pid, *self.workers, *children_of(self.proc.pid)]:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._log.close()

"""End-to-end fixtures: ``forkloop serve`` as a real subprocess on 127.0.0.1 port 0.

The port comes from the startup banner. Every process started here is stopped by PID at
teardown (the master, then any worker still alive).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
PYTHON = sys.executable

APP = """\
import asyncio
import os
import sys
import time

from forkloop import web

VERSION = "v1"


async def pid(request):
    return web.Response(text=f"{os.getpid()}\\n")


async def version(request):
    return web.Response(text=VERSION)


async def slow(request):
    await asyncio.sleep(float(request.query.get("s", "3")))
    return web.Response(text="slow done")


async def block(request):
    time.sleep(60)  # BLOCKING-LINE
    return web.Response(text="never")


async def hold(request):
    time.sleep(float(request.query["s"]))  # blocks the loop: new connections queue up
    return web.Response(text="held")


async def on_shutdown(app):
    print(f"on_shutdown {os.getpid()}", file=sys.stderr, flush=True)


async def on_cleanup(app):
    print(f"on_cleanup {os.getpid()}", file=sys.stderr, flush=True)


def make_app():
    app = web.Application()
    app.router.add_get("/pid", pid)
    app.router.add_get("/version", version)
    app.router.add_get("/slow", slow)
    app.router.add_get("/block", block)
    app.router.add_get("/hold", hold)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app


app = make_app()
"""


def children_of(pid: int) -> list[int]:
    """Live (non-zombie) direct children of ``pid``, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as file:
                stat = file.read()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
            return file.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


class Served:
    """A running ``forkloop serve``."""

    def __init__(self, cwd: Path, args: list[str], env: dict[str, str] | None = None) -> None:
        self.cwd = cwd
        self.log_path = cwd / f"serve-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        full_env.pop("WEB_CONCURRENCY", None)
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "forkloop", "serve", *args],
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
        self.pid = self.proc.pid
        self.port = 0
        self.known_workers: set[int] = set()

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 15.0, start: int = 0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            text = self.log
            match = regex.search(text, start)
            if match:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {pattern!r} in the log within {timeout}s:\n{text[-4000:]}"
                )
            if self.proc.poll() is not None and not regex.search(self.log, start):
                raise AssertionError(
                    f"server exited ({self.proc.returncode}) without {pattern!r}:\n{text[-4000:]}"
                )
            time.sleep(0.05)

    def wait_ready(self, timeout: float = 20.0) -> Served:
        self.wait_log(r"ready: \d+ workers serving", timeout)
        self.port = int(self.wait_log(r"listening on https?://127\.0\.0\.1:(\d+)").group(1))
        self.known_workers.update(self.workers())
        return self

    def workers(self) -> list[int]:
        found = children_of(self.pid)
        self.known_workers.update(found)
        return found

    def send(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.log))

    def load(
        self, duration: float, connections: int = 8, path: str = "/pid", background: bool = False
    ) -> dict[str, object] | subprocess.Popen[str]:
        cmd = [
            PYTHON,
            str(HERE / "loadgen.py"),
            "127.0.0.1",
            str(self.port),
            "--path",
            path,
            "--connections",
            str(connections),
            "--duration",
            str(duration),
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        if background:
            return proc
        return finish_load(proc)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.workers()
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(8)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pid in self.known_workers:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._log.close()


def finish_load(proc: subprocess.Popen[str], timeout: float = 120) -> dict[str, object]:
    out, _ = proc.communicate(timeout=timeout)
    return dict(json.loads(out))


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


@pytest.fixture
def serve(app_dir: Path) -> Iterator[object]:
    started: list[Served] = []

    def start(
        *args: str, env: dict[str, str] | None = None, ready: bool = True, app: str = "app:app"
    ) -> Served:
        served = Served(app_dir, [app, "-b", "127.0.0.1:0", *args], env)
        started.append(served)
        return served.wait_ready() if ready else served

    yield start
    for served in started:
        served.stop()

"""Harness of the gunicorn worker tests: one real gunicorn master run as a subprocess.

Every master binds 127.0.0.1:0 and logs (error and access) into files in its working
directory; ``stop()`` ends it, and any worker it left behind, by PID.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
WORKER_CLASSES = (
    "forkloop.workers.GunicornWebWorker",
    "forkloop.workers.GunicornUVLoopWebWorker",
)
BOOTED = re.compile(r"forkloop worker (\d+) serving")
BOOTING = re.compile(r"Booting worker with pid: (\d+)")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - reused by another user's process
        return False
    try:  # a zombie of ours counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return False


class Gunicorn:
    """One gunicorn master (and its workers) started for a test."""

    def __init__(self, workdir: Path, argv: list[str], env: dict[str, str]) -> None:
        self.workdir = workdir
        self.argv = argv
        self.log_path = workdir / "gunicorn.log"
        self.access_path = workdir / "access.log"
        self._log_file = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [GUNICORN, *argv],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    # -- observing ----------------------------------------------------------------------------

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def access_lines(self) -> list[str]:
        if not self.access_path.exists():
            return []
        return self.access_path.read_text().splitlines()

    def wait_for(self, pattern: str | re.Pattern[str], count: int = 1, timeout: float = 15) -> str:
        """Wait until the log holds ``count`` matches of ``pattern``; return the log."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            if len(regex.findall(text)) >= count:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{regex.pattern!r} x{count} not logged within {timeout}s; log:\n{text}"
                )
            if self.proc.poll() is not None and len(regex.findall(self.log())) < count:
                raise AssertionError(
                    f"gunicorn exited ({self.proc.returncode}) before {regex.pattern!r}; "
                    f"log:\n{self.log()}"
                )
            time.sleep(0.05)

    def wait_booted(self, count: int = 1, timeout: float = 15) -> list[int]:
        text = self.wait_for(BOOTED, count, timeout)
        return [int(pid) for pid in BOOTED.findall(text)]

    @property
    def port(self) -> int:
        match = re.search(r"Listening at: https?://127\.0\.0\.1:(\d+)", self.wait_for("Listening"))
        assert match, self.log()
        return int(match.group(1))

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def worker_pids(self) -> list[int]:
        return [int(pid) for pid in BOOTING.findall(self.log())]

    def live_workers(self) -> list[int]:
        return [pid for pid in self.worker_pids() if alive(pid)]

    # -- acting -------------------------------------------------------------------------------

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"gunicorn still running after {timeout}s; log:\n{self.log()}"
            ) from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        deadline = time.monotonic() + 5
        for pid in self.worker_pids():
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self._log_file.close()

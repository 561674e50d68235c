"""Support for the metrics tests: run `forkloop serve` with metrics on, scrape, parse."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

APP = """
from forkloop import web

async def user(request):
    return web.Response(text="user " + request.match_info["id"])

async def echo(request):
    return web.Response(body=await request.read())

app = web.Application()
app.router.add_get("/users/{id}", user)
app.router.add_post("/echo", echo)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int, accept: str | None = None) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if accept:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=5) as response:
        return str(response.read().decode())


def samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric name in a text-format scrape."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, _, value = line.rpartition(" ")
            found[labels[len(name) :]] = float(value)
    return found


class Served:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, metrics_port: int, log: Path):
        self.proc = proc
        self.port = port
        self.metrics_port = metrics_port
        self.log = log

    def scrape(self, accept: str | None = None) -> str:
        return scrape(self.metrics_port, accept)

    def total(self, text: str | None = None) -> float:
        text = self.scrape() if text is None else text
        return sum(samples(text, "http_server_request_duration_seconds_count").values())

    def ready(self, text: str | None = None) -> float:
        text = self.scrape() if text is None else text
        return samples(text, "forkloop_supervisor_workers").get('{state="ready"}', 0.0)

    def worker_pids(self) -> set[int]:
        children = set()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rpartition(")")[2].split()[1]) == self.proc.pid:
                    children.add(int(entry))
        return children

    def wait_for(self, predicate, timeout: float = 20.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; log:\n{self.log.read_text()[-3000:]}")

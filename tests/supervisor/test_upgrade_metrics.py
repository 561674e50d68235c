"""USR2 with ``--metrics-bind``: the metrics listener passes to the new master like the app
listeners, scrapes are answered throughout, and the request totals carry on."""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .conftest import Served, alive, finish_load
from .test_e2e import http_get

pytestmark = pytest.mark.slow


def _total(text: str) -> float:
    name = "http_server_request_duration_seconds_count"
    return sum(
        float(line.rpartition(" ")[2]) for line in text.splitlines() if line.startswith(name + "{")
    )


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


class Scraper(threading.Thread):
    """Scrapes every 0.1 s until stopped; keeps every total and every failure."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.totals: list[float] = []
        self.failures: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                self.totals.append(_total(_scrape(self.port)))
            except OSError as exc:
                self.failures.append(repr(exc))
            self.done.wait(0.1)


def _stop(pid: int) -> None:
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_usr2_with_metrics_bind_hands_over_the_metrics_port_and_totals(serve: Any) -> None:
    served: Served = serve("-w", "2", "--no-access-log", "--metrics-bind", "127.0.0.1:0")
    port = int(served.wait_log(r"metrics: http://127\.0\.0\.1:(\d+)/metrics").group(1))
    scraper = Scraper(port)
    scraper.start()
    load = served.load(8.0, connections=4, background=True)
    new_master = 0
    try:
        deadline = time.monotonic() + 4
        while (before := _total(_scrape(port))) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)  # the workers report every half second
        served.send(signal.SIGUSR2)
        new_master = int(served.wait_log(r"USR2: started a new master (\d+)").group(1))
        served.wait_log(r"upgrade complete: stopping the previous master", timeout=30)
        assert served.proc.wait(30) == 0  # the old master drained and left
        stats = finish_load(load)  # type: ignore[arg-type]
        assert stats["failed"] == 0, stats
        assert alive(new_master)
        # The old master is gone: whatever answers now is the new master, and it counts
        # every request served, the old workers' included.
        deadline = time.monotonic() + 10
        while _total(_scrape(port)) < stats["ok"] and time.monotonic() < deadline:  # type: ignore[operator]
            time.sleep(0.1)
        after = _total(_scrape(port))
        scraper.done.set()
        scraper.join(15)
        print(
            f"USR2 with metrics: {stats['ok']} requests ok, {stats['failed']} failed; totals "
            f"{before:.0f} before USR2, {after:.0f} after; {len(scraper.totals)} scrapes, "
            f"{len(scraper.failures)} failed"
        )
        assert before > 0
        assert after == stats["ok"], (after, stats)
        assert scraper.failures == []
        assert len(scraper.totals) > 20
        drops = [(a, b) for a, b in zip(scraper.totals, scraper.totals[1:], strict=False) if b < a]
        assert drops == [], "the request totals went backwards"
    finally:
        scraper.done.set()
        if new_master:
            _stop(new_master)


def test_a_failed_usr2_keeps_the_metrics_and_a_second_one_carries_the_totals(
    serve: Any, app_dir: Path
) -> None:
    served: Served = serve("-w", "1", "--no-access-log", "--metrics-bind", "127.0.0.1:0")
    port = int(served.wait_log(r"metrics: http://127\.0\.0\.1:(\d+)/metrics").group(1))
    for _ in range(20):
        assert http_get(served.port, "/pid")[0] == 200
    deadline = time.monotonic() + 10
    while _total(_scrape(port)) < 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _total(_scrape(port)) == 20
    good = (app_dir / "app.py").read_text()
    (app_dir / "app.py").write_text("raise RuntimeError('broken on purpose')\n")
    served.send(signal.SIGUSR2)
    served.wait_log(r"the upgraded master \d+ exited", timeout=30)
    assert _total(_scrape(port)) == 20  # the old master still answers, and counts
    assert http_get(served.port, "/pid")[0] == 200
    (app_dir / "app.py").write_text(good)
    mark = len(served.log)
    served.send(signal.SIGUSR2)
    new_master = int(served.wait_log(r"USR2: started a new master (\d+)", start=mark).group(1))
    try:
        served.wait_log(r"upgrade complete", timeout=30, start=mark)
        assert served.proc.wait(30) == 0
        assert _total(_scrape(port)) == 21  # the 20, and the /pid during the failed upgrade
    finally:
        _stop(new_master)

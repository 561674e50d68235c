"""--max-requests with jitter: workers recycle under load and no request fails."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter

import aiohttp
import pytest
from gunicorn_harness import Gunicorn, alive

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

TOTAL = 360
CONCURRENCY = 6
BUDGET = re.compile(r"forkloop worker (\d+) serving .* \(max requests (\d+)\)")


async def _load(url: str) -> tuple[Counter[int], list[str]]:
    served: Counter[int] = Counter()
    failures: list[str] = []
    remaining = iter(range(TOTAL))
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def client() -> None:
            for _ in remaining:
                try:
                    async with session.get(url) as response:
                        body = await response.text()
                        if response.status != 200:
                            failures.append(f"{response.status} {body}")
                        else:
                            served[int(body.split()[0])] += 1
                except (TimeoutError, aiohttp.ClientError) as exc:
                    failures.append(repr(exc))

        await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return served, failures


def test_max_requests_with_jitter_recycles_workers_without_failures(
    gunicorn, worker_class: str
) -> None:
    server: Gunicorn = gunicorn(
        "--max-requests",
        "50",
        "--max-requests-jitter",
        "10",
        workers=2,
        worker=worker_class,
        access_log=False,
    )
    server.wait_booted(count=2)
    served, failures = asyncio.run(_load(server.url("/pid")))
    assert failures == []
    assert sum(served.values()) == TOTAL
    log = server.log()
    budgets = {int(pid): int(limit) for pid, limit in BUDGET.findall(log)}
    assert all(50 <= limit <= 60 for limit in budgets.values()), budgets
    # Recycling happened: far more workers served than the two alive at any time.
    assert len(served) >= 4, served
    assert log.count("Autorestarting worker after current request.") >= 2
    deadline = time.monotonic() + 10
    recycled = [pid for pid in served if pid in budgets and served[pid] >= budgets[pid]]
    while any(alive(pid) for pid in recycled) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid, count in served.items():
        limit = budgets[pid]
        # Never more than the budget plus the requests that were already in flight.
        assert count <= limit + CONCURRENCY, (pid, count, limit)
        if not alive(pid):
            assert count >= limit, (pid, count, limit)  # only the budget stops a worker here
            assert f"Worker exiting (pid: {pid})" in log  # it exited by itself

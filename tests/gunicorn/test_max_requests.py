"""--max-requests with jitter: workers recycle under load and no request fails."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter

import httpx
import pytest
from gunicorn_harness import Gunicorn, alive

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

TOTAL = 360
CONCURRENCY = 6
BUDGET = re.compile(r"forkloop worker (\d+) serving .* \(max requests (\d+)\)")


async def _load(url: str) -> tuple[Counter[int], list[str]]:
    """TOTAL GETs over CONCURRENCY keep-alive connections.

    httpx does not retry a request whose keep-alive connection the server closed, so a worker
    that closes a connection while a request is on its way shows up here as a failure.
    """
    served: Counter[int] = Counter()
    failures: list[str] = []
    remaining = iter(range(TOTAL))
    async with httpx.AsyncClient(timeout=20) as client:

        async def one_connection() -> None:
            for _ in remaining:
                try:
                    response = await client.get(url)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
                else:
                    served[int(response.text.split()[0])] += 1

        await asyncio.gather(*(one_connection() for _ in range(CONCURRENCY)))
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
    try:
        served, failures = asyncio.run(asyncio.wait_for(_load(server.url("/pid")), 60))
    except TimeoutError:
        pytest.fail(f"the load did not finish in 60 s; gunicorn log:\n{server.log()}")
    assert failures == [], server.log()
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
    time.sleep(0.2)  # a worker logs its exit just before it ends
    log = server.log()
    for pid, count in served.items():
        limit = budgets[pid]
        # Never more than the budget plus the requests that were already in flight.
        assert count <= limit + CONCURRENCY, (pid, count, limit)
        if not alive(pid):
            assert count >= limit, (pid, count, limit)  # only the budget stops a worker here
            assert f"Worker exiting (pid: {pid})" in log  # it exited by itself


@pytest.mark.parametrize("app", ["fl_app:app", "fl_app:runner_factory"])
def test_sequential_requests_recycle_exactly_at_the_budget(gunicorn, app: str) -> None:
    server: Gunicorn = gunicorn("--max-requests", "5", app=app, access_log=False)
    server.wait_booted()
    served: Counter[int] = Counter()
    for _ in range(12):
        response = httpx.get(server.url("/pid"), timeout=20)
        assert response.status_code == 200
        served[int(response.text.split()[0])] += 1
    # One request at a time: nothing is in flight when the budget is reached, so no overshoot.
    assert sorted(served.values()) == [2, 5, 5], served

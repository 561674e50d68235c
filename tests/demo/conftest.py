"""Fixtures for the demo's tests.

``demo`` starts ``python -m forkloop.demo`` on two free loopback ports (page and metrics),
waits until both workers are ready and yields a :class:`demo_helpers.Demo`; teardown sends
SIGINT (what Ctrl-C sends) and, as a last resort, SIGKILL to the processes it started, by pid.
``aiohttp_client`` / ``aiohttp_server`` serve an app in-process through forkloop.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_helpers import Demo

from forkloop.pytest_plugin import aiohttp_client, aiohttp_server  # noqa: F401 - fixtures


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    for attempt in range(3):
        running = Demo(tmp_path)
        try:
            running.wait_ready()
            break
        except AssertionError:
            running.stop()
            running.kill_leftovers()
            # Another process took a port between our probe and the demo's bind: try again.
            if attempt == 2 or "cannot bind" not in running.log():
                raise
    try:
        yield running
    finally:
        running.stop()
        running.kill_leftovers()

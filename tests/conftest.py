"""Shared test configuration. Keep it small: area fixtures live in tests/<area>/conftest.py.

With ``--import-mode=importlib`` test folders are not put on ``sys.path`` by pytest, so each
folder's helper modules (``rawhttp``, ``mp_helpers`` ...) are made importable here; their names
are unique across folders.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).resolve().parent
for _folder in sorted(p for p in _HERE.iterdir() if p.is_dir() and not p.name.startswith(".")):
    if str(_folder) not in sys.path:
        sys.path.append(str(_folder))


@pytest.fixture
async def serve() -> AsyncIterator[Any]:
    """``base_url = await serve(app, **runner_kwargs)``: run ``app`` on 127.0.0.1 (a free port)
    for the test; stopped afterwards. ``serve.runners`` lists the runners still to clean up.
    Folders that need another kind of server define their own ``serve`` (closer wins)."""
    from forkloop import web

    runners: list[Any] = []

    async def start(app: Any, **kwargs: Any) -> str:
        kwargs.setdefault("access_log", None)
        runner = web.AppRunner(app, **kwargs)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, shutdown_timeout=5.0)
        await site.start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    start.runners = runners  # type: ignore[attr-defined]
    yield start
    for runner in reversed(runners):
        await asyncio.wait_for(runner.cleanup(), 15)

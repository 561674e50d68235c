"""Fixtures of the web area: forkloop's aiohttp-compatible pytest fixtures, and a pytest run
in a fresh interpreter for tests of documented test modules.

The aiohttp-named fixtures come from ``forkloop.pytest_plugin`` (a ``pytest11`` entry point
once forkloop is installed); importing them here keeps the tests working from a plain source
checkout.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from forkloop.pytest_plugin import (  # noqa: F401
    aiohttp_client,
    aiohttp_raw_server,
    aiohttp_server,
    aiohttp_unused_port,
)

RunPytest = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_pytest(tmp_path: Path) -> RunPytest:
    """``run_pytest(target, env=None)``: pytest on ``target`` (under ``tmp_path``) in its own
    interpreter, asyncio auto mode, no cache, ``tmp_path`` as root and working directory."""

    def run(target: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        argv += ["-o", "asyncio_mode=auto", "--rootdir", str(tmp_path), str(target)]
        return subprocess.run(
            argv, cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env
        )

    return run

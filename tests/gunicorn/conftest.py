"""Fixtures for the gunicorn worker tests: real gunicorn masters run as subprocesses."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gunicorn_harness import WORKER_CLASSES, Gunicorn

APPS = Path(__file__).with_name("apps")
StartGunicorn = Callable[..., Gunicorn]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A copy of tests/gunicorn/apps: the cwd (and import path) of the gunicorn masters."""
    for source in APPS.glob("*.py"):
        shutil.copy(source, tmp_path / source.name)
    return tmp_path


@pytest.fixture
def gunicorn(workdir: Path) -> Iterator[StartGunicorn]:
    """Start a gunicorn master: ``gunicorn("--timeout", "2", app="fl_app:app", ...)``."""
    started: list[Gunicorn] = []

    def start(
        *args: str,
        app: str = "fl_app:app",
        worker: str | None = WORKER_CLASSES[0],
        workers: int = 1,
        access_log: bool = True,
        extra_env: dict[str, str] | None = None,
        bind: str = "127.0.0.1:0",
        subdir: str | None = None,
    ) -> Gunicorn:
        directory = workdir / subdir if subdir else workdir
        directory.mkdir(exist_ok=True)
        if subdir:
            for source in workdir.glob("*.py"):
                shutil.copy(source, directory / source.name)
        argv = ["--bind", bind, "--workers", str(workers), "--no-control-socket"]
        if worker:
            argv += ["--worker-class", worker]
        if access_log:
            argv += ["--access-logfile", str(directory / "access.log")]
        argv += [*args, app]
        env = {
            **os.environ,
            "PYTHONDONTWRITEBYTECODE": "1",  # the HUP test rewrites the app module in place
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        process = Gunicorn(directory, argv, env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture(params=WORKER_CLASSES, ids=["asyncio", "uvloop"])
def worker_class(request: pytest.FixtureRequest) -> str:
    return str(request.param)

"""tests/packaging fixtures: ``built``, the isolated builds and their venv, made once per session
and shared by pytest-xdist workers (pkgbuild.py has the steps)."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest
from pkgbuild import Built, build_all


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Built:
    # Under xdist every worker has its own basetemp; their parent is shared: one build for all.
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if worker_id != "master" else base
    work = shared / "packaging"
    work.mkdir(exist_ok=True)
    with (shared / "packaging.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = work / "built.json"
        if not done.exists():
            done.write_text(json.dumps(build_all(work)))
        fcntl.flock(lock, fcntl.LOCK_UN)
    return Built(**{k: Path(v) for k, v in json.loads(done.read_text()).items()})

"""Builds for tests/packaging (the ``built`` fixture in conftest.py makes them once per session,
shared by pytest-xdist workers).

``build_all``: a copy of the source tree (git's tracked and untracked, not ignored, files: what a
fresh clone plus your uncommitted work holds), from which ``python -m build`` makes the sdist and
a wheel from that sdist, and, from a second copy, a wheel straight from the tree; all with build
isolation. The tree wheel is installed into a fresh venv outside the tree, with the ``testing``
extra. The two compiled builds run at the same time (a minute or two each).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 900


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would point a build or an install at this tree."""
    drop = ("FORKLOOP_", "PYTHONPATH", "PYTEST_", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


def run(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        pytest.fail(
            f"{' '.join(argv)} -> {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
    return done


def copy_tree(dest: Path) -> Path:
    """The files of a fresh clone plus uncommitted work (no .venv, build/, *.so)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout to know the source files")
    listed = run(["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"], cwd=ROOT).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@dataclass(frozen=True)
class Built:
    sdist: Path
    wheel_from_sdist: Path
    wheel_from_tree: Path
    venv: Path
    log: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def forkloop(self) -> Path:
        return self.venv / "bin" / "forkloop"


def build_all(work: Path) -> dict[str, str]:
    python = sys.executable
    via_sdist = copy_tree(work / "src-sdist")
    via_tree = copy_tree(work / "src-tree")
    env = clean_env(FORKLOOP_REQUIRE_EXTENSIONS="1")  # a silently pure build must fail here
    jobs = (
        (via_sdist, "dist-sdist", []),  # sdist, then a wheel built from the sdist
        (via_tree, "dist-tree", ["--wheel"]),  # a wheel built from the tree
    )
    procs = []
    for src, out, extra in jobs:
        with (work / f"{out}.log").open("w") as log:
            argv = [python, "-m", "build", "--outdir", str(work / out), ".", *extra]
            procs.append(
                subprocess.Popen(argv, cwd=src, env=env, stdout=log, stderr=subprocess.STDOUT)
            )
    for proc, (_, out, _) in zip(procs, jobs, strict=True):
        if proc.wait(timeout=BUILD_TIMEOUT_S) != 0:
            pytest.fail(f"python -m build failed:\n{(work / f'{out}.log').read_text()[-6000:]}")
    (sdist,) = (work / "dist-sdist").glob("*.tar.gz")
    (from_sdist,) = (work / "dist-sdist").glob("*.whl")
    (from_tree,) = (work / "dist-tree").glob("*.whl")

    # A fresh venv outside the source tree, the tree's wheel and the testing extra in it.
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=True)
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q"]
    run([*pip, f"{from_tree}[testing]"], cwd=work, timeout=600)
    return {
        "sdist": str(sdist),
        "wheel_from_sdist": str(from_sdist),
        "wheel_from_tree": str(from_tree),
        "venv": str(env_dir),
        "log": str(work / "dist-sdist.log"),
    }

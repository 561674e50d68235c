"""The mypyc build (setup.py): where it was built, the hot path really runs compiled, and
``FORKLOOP_NO_EXTENSIONS=1`` really runs every module from its .py source."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _hot_modules() -> list[str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "HOT_MODULES":
            paths = ast.literal_eval(node.value)
            return [p.removesuffix(".py").replace("/", ".") for p in paths]
    raise AssertionError("setup.py has no HOT_MODULES list")


def _origins(env: dict[str, str]) -> dict[str, str]:
    code = (
        "import importlib, json, sys\n"
        f"names = {_hot_modules()!r}\n"
        "print(json.dumps({n: importlib.import_module(n).__file__ for n in names}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout))


def test_hot_modules_load_compiled_where_built() -> None:
    built = list((ROOT / "forkloop").rglob("*.so"))
    if not built:
        pytest.skip("no mypyc build in this tree (make compiled builds one)")
    env = {k: v for k, v in os.environ.items() if k != "FORKLOOP_NO_EXTENSIONS"}
    origins = _origins(env)
    assert all(path.endswith(".so") for path in origins.values()), origins


def test_no_extensions_runs_the_sources() -> None:
    origins = _origins({**os.environ, "FORKLOOP_NO_EXTENSIONS": "1"})
    assert all(path.endswith(".py") for path in origins.values()), origins

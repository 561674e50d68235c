"""The C build (setup.py: mypyc and the C twins): where it was built, the hot path really
runs compiled, and ``FORKLOOP_NO_EXTENSIONS=1`` really runs every module from its .py source."""

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
    """setup.py's mypyc modules (HOT_MODULES) and hand-written C twins (C_MODULES)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    lists = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
        if node.targets[0].id in ("HOT_MODULES", "C_MODULES")
    }
    assert set(lists) == {"HOT_MODULES", "C_MODULES"}, "setup.py lists changed"
    names = [p.removesuffix(".py").replace("/", ".") for p in lists["HOT_MODULES"]]
    for name, source in lists["C_MODULES"]:
        assert (ROOT / source).is_file()
        assert (ROOT / source).with_suffix(".py").is_file()
        names.append(name)
    return names


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

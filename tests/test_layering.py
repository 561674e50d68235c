"""The import direction of docs/dev/architecture.md, checked on the source with ``ast``:

- ``core.http``, ``core.websocket``, ``core.multipart``: nothing of ours but their own package
  and each other's ``errors``;
- ``core.hooks``: nothing of ours;
- ``core.server``: only ``core.http`` (and itself);
- ``core`` as a whole: never ``workers``, ``metrics``, ``supervisor``, ``cli``, the facade
  ``forkloop.web``, nor ``prometheus_client``;
- ``supervisor``: the standard library and itself only (no ``core``, ``web``, ``metrics``,
  ``workers``, no third-party package);
- and, in a fresh interpreter, importing each ``forkloop.supervisor`` module loads no
  ``forkloop.core`` (nor web, metrics, workers) module.

Every import counts, including those inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "forkloop"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, text: str | None = None) -> set[str]:
    """Absolute names of every module ``path`` imports (``from x import y`` gives x and x.y)."""
    source = path.read_text(encoding="utf-8") if text is None else text
    tree = ast.parse(source, filename=str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join(base_parts)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def modules_under(relative: str) -> list[Path]:
    base = PACKAGE / relative
    if base.is_dir():
        return sorted(base.rglob("*.py"))
    file = base.with_suffix(".py")
    return [file] if file.exists() else []


def ours(names: set[str]) -> set[str]:
    return {n for n in names if n == "forkloop" or n.startswith("forkloop.")}


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(paths: list[Path], allowed: tuple[str, ...]) -> list[str]:
    """``path: name`` for every import of ours that is not within one of ``allowed``."""
    bad = []
    for path in paths:
        for name in sorted(ours(imports_of(path))):
            if not any(within(name, prefix) for prefix in allowed):
                bad.append(f"{path.relative_to(ROOT)}: {name}")
    return bad


def existing(paths: list[Path]) -> list[Path]:
    if not paths:
        pytest.skip("the layer has no modules yet")
    return paths


ERRORS = ("forkloop.core.http.errors", "forkloop.core.websocket.errors")


@pytest.mark.parametrize(
    ("layer", "own"),
    [
        ("core/http", "forkloop.core.http"),
        ("core/websocket", "forkloop.core.websocket"),
        ("core/multipart", "forkloop.core.multipart"),
    ],
)
def test_sans_io_layers_import_only_each_others_errors(layer: str, own: str) -> None:
    assert violations(existing(modules_under(layer)), (own, *ERRORS)) == []


def test_hooks_import_nothing_of_ours() -> None:
    assert violations(existing(modules_under("core/hooks")), ("forkloop.core.hooks",)) == []


def test_server_layer_imports_only_http() -> None:
    paths = existing(modules_under("core/server"))
    assert violations(paths, ("forkloop.core.server", "forkloop.core.http")) == []


def test_core_never_imports_outer_layers() -> None:
    bad = []
    for path in existing(modules_under("core")):
        for name in imports_of(path):
            outer = ours({name}) and not within(name, "forkloop.core")
            if outer or within(name, "prometheus_client"):
                bad.append(f"{path.relative_to(ROOT)}: {name}")
    assert bad == []


def test_supervisor_is_stdlib_only() -> None:
    bad = []
    for path in existing(modules_under("supervisor")):
        for name in sorted(imports_of(path)):
            top = name.split(".")[0]
            if top == "forkloop":
                if not within(name, "forkloop.supervisor") and name != "forkloop":
                    bad.append(f"{path.relative_to(ROOT)}: {name}")
            elif top not in sys.stdlib_module_names and top != "__future__":
                bad.append(f"{path.relative_to(ROOT)}: {name} (not stdlib)")
    assert bad == []


def test_checker_sees_relative_and_lazy_imports() -> None:
    # The checker itself: a relative import two levels up, one inside a function, and one
    # under TYPE_CHECKING are all found, and reported as violations of the server layer.
    probe = PACKAGE / "core" / "server" / "probe.py"  # never written: parsed from text
    text = (
        "from typing import TYPE_CHECKING\n"
        "from ..web import request\n"
        "from . import streams\n"
        "from ..http.errors import HttpError\n"
        "if TYPE_CHECKING:\n"
        "    from forkloop.metrics import observer\n"
        "def f():\n"
        "    import forkloop.supervisor.policy\n"
    )
    names = imports_of(probe, text)
    assert {
        "forkloop.core.web",
        "forkloop.core.web.request",
        "forkloop.core.server",
        "forkloop.core.server.streams",
        "forkloop.core.http.errors",
        "forkloop.metrics",
        "forkloop.supervisor.policy",
    } <= names
    allowed = ("forkloop.core.server", "forkloop.core.http")
    bad = sorted(n for n in ours(names) if not any(within(n, a) for a in allowed))
    assert bad == [
        "forkloop.core.web",
        "forkloop.core.web.request",
        "forkloop.metrics",
        "forkloop.metrics.observer",
        "forkloop.supervisor.policy",
    ]


SUPERVISOR_MODULES = sorted(
    module_name(p) for p in modules_under("supervisor") if p.name != "__init__.py"
)

PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
loaded = sorted(
    m for m in sys.modules
    if m.startswith(("forkloop.core", "forkloop.metrics", "forkloop.workers", "forkloop.cli"))
    or m in ("forkloop.web", "httptools", "uvloop", "multidict", "yarl", "prometheus_client",
             "aiohttp")
)
print(json.dumps(loaded))
"""


@pytest.mark.skipif(not SUPERVISOR_MODULES, reason="no supervisor modules yet")
def test_importing_supervisor_loads_no_core() -> None:
    names = ["forkloop.supervisor", *SUPERVISOR_MODULES]
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *names],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []

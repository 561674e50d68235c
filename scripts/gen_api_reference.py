"""Write docs/api.md: every public name of ``forkloop.web`` and the other public modules.

Run ``python scripts/gen_api_reference.py`` after changing a public signature or docstring;
``tests/docs/test_api_reference.py`` fails while docs/api.md is out of date.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from pathlib import Path

# Signatures and docstrings come from the .py sources, not mypyc's compiled modules (setup.py).
os.environ.setdefault("FORKLOOP_NO_EXTENSIONS", "1")

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "api.md"

SECTIONS = [
    ("forkloop.web", "The web API (`from forkloop import web`)", None),
    ("forkloop.test_utils", "Testing helpers (`forkloop.test_utils`)", None),
    ("forkloop.metrics", "Metrics (`forkloop.metrics`)", None),
    ("forkloop.core.http.limits", "Limits (`forkloop.core.http.limits`)", None),
    ("forkloop.core.hooks", "Observers (`forkloop.core.hooks`)", None),
]


def _summary(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    first = doc.strip().split("\n\n", 1)[0].replace("\n", " ").strip()
    return first


def _signature(name: str, obj: object) -> str:
    try:
        signature = str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return name
    signature = signature.replace("'", "")
    # Defaults whose repr holds an address (sentinels, functions) would change every run.
    signature = re.sub(r"<object object at 0x[0-9a-f]+>", "<sentinel>", signature)
    signature = re.sub(r"<(function|built-in function) ([\w.]+) at 0x[0-9a-f]+>", r"\2", signature)
    return f"{name}{signature}"


def _kind(obj: object) -> str:
    if inspect.isclass(obj):
        if issubclass(obj, BaseException):
            return "exception"
        return "class"
    if inspect.iscoroutinefunction(obj):
        return "async function"
    if callable(obj):
        return "function"
    return "value"


def render() -> str:
    lines = [
        "# API reference",
        "",
        "Generated from the code by `scripts/gen_api_reference.py`; the guides explain how the",
        "pieces fit (start at the [overview](index.md)). forkloop's web API is aiohttp.web's:",
        "where a name exists in both, aiohttp's documentation of it applies too, and the",
        "[migration page](migrating-from-aiohttp.md) lists what differs.",
        "",
    ]
    for module_name, title, _ in SECTIONS:
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None) or [
            n for n in vars(module) if not n.startswith("_")
        ]
        if module_name == "forkloop.web":
            # Its __all__ is aiohttp.web's (for star imports); forkloop's additions are public
            # too, so the reference lists every public name the module offers.
            names = [n for n in vars(module) if not n.startswith("_")]
        lines += [f"## {title}", ""]
        summary = _summary(module)
        if summary and module_name != "forkloop.web":
            lines += [summary, ""]
        for name in sorted(set(names), key=lambda n: (n.lower(), n)):
            obj = getattr(module, name, None)
            if obj is None or inspect.ismodule(obj) or type(obj).__name__ == "_Feature":
                continue
            kind = _kind(obj)
            heading = _signature(name, obj) if kind != "value" else name
            text = _summary(obj) if kind != "value" else ""
            if kind == "value":
                text = f"`{obj!r}`" if isinstance(obj, str | int | float) else ""
            lines.append(f"- **`{heading}`** ({kind})" + (f": {text}" if text else ""))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    OUT.write_text(render())
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

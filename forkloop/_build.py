"""Which build of forkloop is running: the compiled hot path (mypyc and the C twins) or pure
Python. Owns :func:`describe`, shown by ``forkloop --version``.

An installed module counts as compiled when an extension file for it sits next to its .py
source and the module, imported, comes from that file (``FORKLOOP_NO_EXTENSIONS=1`` at run time
loads the .py sources instead).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os

__all__ = ["compiled_modules", "describe", "installed_extensions"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def installed_extensions() -> list[str]:
    """Names of the forkloop modules installed as C extensions (mypyc's shared runtime library
    excluded), sorted."""
    names: list[str] = []
    for directory, subdirs, files in os.walk(_PACKAGE_DIR):
        subdirs[:] = [d for d in subdirs if d != "__pycache__"]
        package = os.path.relpath(directory, os.path.dirname(_PACKAGE_DIR)).replace(os.sep, ".")
        for file in files:
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                if file.endswith(suffix) and "__mypyc" not in file:
                    names.append(f"{package}.{file.removesuffix(suffix)}")
                    break
    return sorted(names)


def compiled_modules() -> list[str]:
    """The installed extension modules that are really loaded from their extension file."""
    loaded = []
    for name in installed_extensions():
        origin = getattr(importlib.import_module(name), "__file__", None) or ""
        if origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            loaded.append(name)
    return loaded


def describe() -> str:
    """One line: ``compiled: 11 modules``, ``pure Python``, or why an installed compiled build
    is not the one running."""
    installed = installed_extensions()
    if not installed:
        return "pure Python"
    loaded = compiled_modules()
    if len(loaded) == len(installed):
        return f"compiled: {len(loaded)} modules"
    if not loaded:
        reason = "FORKLOOP_NO_EXTENSIONS is set" if os.environ.get("FORKLOOP_NO_EXTENSIONS") else ""
        return f"pure Python: {reason or 'compiled modules not loaded'}"
    return f"partly compiled: {len(loaded)} of {len(installed)} modules"

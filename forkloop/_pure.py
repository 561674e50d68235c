"""Run forkloop from its .py sources even where mypyc-compiled modules are installed.

``FORKLOOP_NO_EXTENSIONS=1`` at build time builds no extensions (setup.py); set at run time, it
makes ``forkloop/__init__.py`` call :func:`use_python_sources`, so every ``forkloop.*`` module
loads from its .py file: for coverage, debugging, signatures and docstrings (``inspect``), and
after editing a source whose compiled form an editable install still holds.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["use_python_sources"]


class _SourceFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith("forkloop.") or path is None:
            return None
        leaf = fullname.rpartition(".")[2]
        for entry in path:
            source = os.path.join(entry, leaf + ".py")
            if os.path.isfile(source):
                return importlib.util.spec_from_file_location(fullname, source)
        return None  # a package, or not ours to find: the usual finders decide


def use_python_sources() -> None:
    """Load every ``forkloop.*`` module imported from now on from its .py source."""
    if not any(isinstance(finder, _SourceFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SourceFinder())

"""The definition of a C twin: its .py module, loaded from the package's own directory.

A C twin (setup.py's ``C_MODULES``) shadows the .py of the same name wherever it is built, so a
test comparing the two loads the .py by path, under a name of its own. From the package's
directory: a compiled module's ``__file__`` need not be beside the sources.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def definition(package: ModuleType, name: str) -> ModuleType:
    """``package``'s ``name``.py, loaded afresh as ``<name>_definition``."""
    assert package.__file__ is not None
    source = Path(package.__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"{name.lstrip('_')}_definition", source)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

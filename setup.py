"""Optional mypyc compilation of forkloop's per-request hot path (pyproject.toml has the rest).

The compiled modules are the same .py files, turned into C extensions by mypyc; the .py files
stay in the package and are the fallback. Compilation is on by default and skipped (pure Python)
when ``FORKLOOP_NO_EXTENSIONS`` is set to a non-empty value, when mypy is missing, or when the C
build fails (no compiler, no Python headers). Build in place for development with

    python setup.py build_ext --inplace      # or: pip install --no-build-isolation .

``FORKLOOP_MYPYC_MODULES`` (comma-separated paths) overrides the list, for experiments.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# The per-request hot path. Compiled (with the C twins below), these and the code changes they
# allowed take GET / from ~106k to ~47k instructions per request (bench/count_instructions.py).
# Not compiled, deliberately:
# - core/http/limits.py: its __post_init__ reads the dataclass's __slots__, which mypyc drops;
# - core/http/errors.py: compiled Exception subclasses lose class-level status/reason;
# - core/server/streams.py: async generators (mypyc cannot compile them);
# - core/web/response.py: HTTPException derives from Response *and* Exception, which no native
#   class allows, and a non-native class cannot have property setters;
# - core/web/urldispatcher.py, app.py: classes users subclass (resources, views, dict and list
#   subclasses, __init_subclass__ reading cls.__dict__), frame inspection in AppKey;
# - metrics/observer.py: measured slower compiled (what it touches are interpreted objects).
HOT_MODULES = [
    "forkloop/core/http/parser.py",
    "forkloop/core/http/serialize.py",
    "forkloop/core/server/protocol.py",
    "forkloop/core/web/lowlevel.py",
    "forkloop/core/web/request.py",
    "forkloop/core/web/tally.py",
    "forkloop/core/web/writer.py",
    # The WebSocket codec: every message goes through the reader, the frame writer and masking.
    "forkloop/core/websocket/masking.py",
    "forkloop/core/websocket/reader.py",
    "forkloop/core/websocket/writer.py",
]


# Hand-written C twins of .py modules (same names and behaviour; the .py is the fallback).
C_MODULES = [
    # A handler step run inside data_received, its return reported without a StopIteration.
    ("forkloop.core.server._stepping", "forkloop/core/server/_stepping.c"),
]


def _ext_modules() -> list[Any]:
    if os.environ.get("FORKLOOP_NO_EXTENSIONS"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("forkloop: mypy/mypyc not installed, building pure Python", file=sys.stderr)
        return []
    override = os.environ.get("FORKLOOP_MYPYC_MODULES")
    modules = [m for m in override.split(",") if m] if override else HOT_MODULES
    compiled = list(mypycify(modules, opt_level="3", group_name="forkloop._compiled"))
    return compiled + [Extension(name, [source]) for name, source in C_MODULES]


class _OptionalBuildExt(build_ext):
    """A failing C build leaves the pure-Python package (like aiohttp's optional extensions)."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any compiler trouble means: no extensions
            # All or nothing: a module's shim without the shared library would not import.
            for path in self.get_outputs():
                if os.path.exists(path):
                    os.remove(path)
            print(f"forkloop: C extensions not built ({exc}); pure Python", file=sys.stderr)


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": _OptionalBuildExt})

"""Optional compilation of forkloop's per-request hot path (pyproject.toml has the rest).

The compiled modules are the same .py files, turned into C extensions by mypyc, plus the C twins
below; the .py files stay in the package and are the fallback. Compilation is on by default and
any failure of it, at any stage (mypyc missing, mypyc's type check, no C compiler or Python
headers, a failing C build), leaves the pure-Python package with one warning line on stderr.

- ``FORKLOOP_NO_EXTENSIONS=1`` (any non-empty value): build pure Python (a ``py3-none-any``
  wheel), no warning.
- ``FORKLOOP_REQUIRE_EXTENSIONS=1`` (any non-empty value): any such failure is an error instead,
  so a release wheel or an image can never be silently pure.
- ``FORKLOOP_MYPYC_MODULES`` (comma-separated paths) overrides the mypyc list, for experiments.

Only the commands that build (``build_ext``, ``bdist_wheel``, ``editable_wheel``, ...) run mypyc;
metadata and sdist requests from pip/build do not pay for it. In place, for development:

    python setup.py build_ext --inplace      # what `make compiled` runs
"""

from __future__ import annotations

import os
import sys
import tempfile
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
    "forkloop/core/web/dispatch.py",
    "forkloop/core/web/jsontext.py",
    "forkloop/core/web/lowlevel.py",
    "forkloop/core/web/request.py",
    "forkloop/core/web/tally.py",
    "forkloop/core/web/writer.py",
    # The WebSocket codec: every message goes through the reader, the frame writer and masking.
    "forkloop/core/websocket/channel.py",
    "forkloop/core/websocket/masking.py",
    "forkloop/core/websocket/reader.py",
    "forkloop/core/websocket/writer.py",
]


# Hand-written C twins of .py modules (same names and behaviour; the .py is the fallback).
C_MODULES = [
    # A handler step run inside data_received, its return reported without a StopIteration.
    ("forkloop.core.server._stepping", "forkloop/core/server/_stepping.c"),
    # Unmasking a client frame's payload: a loop in C, not big-integer arithmetic.
    ("forkloop.core.websocket._unmask", "forkloop/core/websocket/_unmask.c"),
    # Response(...) from a handler: a vectorcall constructor, no argument tuple and dict.
    ("forkloop.core.web._construct", "forkloop/core/web/_construct.c"),
    # The simple-head branch of the request parser: a common request head without llhttp.
    ("forkloop.core.http._simplehead", "forkloop/core/http/_simplehead.c"),
    # json_response's text for a flat object: one pass over the dict into one string.
    ("forkloop.core.web._flatjson", "forkloop/core/web/_flatjson.c"),
    # A plain response's bytes: its pieces written into one bytes object of the exact size.
    ("forkloop.core.http._plainhead", "forkloop/core/http/_plainhead.c"),
]


# The setup.py commands that compile; anything else (egg_info, dist_info, sdist) needs no C.
_BUILDING = {"build", "build_ext", "bdist", "bdist_wheel", "bdist_egg", "editable_wheel"}
_BUILDING |= {"install", "develop"}


class ExtensionsUnavailable(Exception):
    """The compiled build cannot be made here; the message says why, in one line."""


def _required() -> bool:
    return bool(os.environ.get("FORKLOOP_REQUIRE_EXTENSIONS"))


def _fall_back(reason: str) -> list[Any]:
    reason = " ".join(reason.split())
    if _required():
        sys.exit(f"forkloop: FORKLOOP_REQUIRE_EXTENSIONS is set and {reason}")
    print(f"WARNING: forkloop: building pure Python (slower): {reason}", file=sys.stderr)
    return []


def _check_c_toolchain() -> None:
    """Compile and link a one-line extension: a C compiler and Python's headers are present."""
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.errors import CCompilerError, DistutilsError
    from setuptools._distutils.sysconfig import customize_compiler, get_python_inc

    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as f:
            f.write("#include <Python.h>\nint forkloop_probe(void) { return 0; }\n")
        compiler: Any = new_compiler()
        customize_compiler(compiler)
        try:
            objects = compiler.compile(
                [source], output_dir=tmp, include_dirs=[get_python_inc()], extra_postargs=[]
            )
            compiler.link_shared_object(objects, os.path.join(tmp, "probe.so"))
        except (CCompilerError, DistutilsError, OSError) as exc:
            raise ExtensionsUnavailable(f"no working C compiler ({exc})") from None


def _mypyc_modules() -> list[Any]:
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        raise ExtensionsUnavailable(f"mypyc is not installed ({exc})") from None
    override = os.environ.get("FORKLOOP_MYPYC_MODULES")
    modules = [m for m in override.split(",") if m] if override else HOT_MODULES
    try:
        return list(mypycify(modules, opt_level="3", group_name="forkloop._compiled"))
    except (Exception, SystemExit) as exc:  # mypyc exits on type errors (printed above)
        raise ExtensionsUnavailable(f"mypyc failed ({exc!r})") from None


def _ext_modules() -> list[Any]:
    if os.environ.get("FORKLOOP_NO_EXTENSIONS"):  # any value, as forkloop/__init__.py reads it
        return []
    if not _BUILDING & set(sys.argv[1:]):
        return []
    try:
        _check_c_toolchain()
        compiled = _mypyc_modules()
    except ExtensionsUnavailable as exc:
        return _fall_back(str(exc))
    return compiled + [Extension(name, [source]) for name, source in C_MODULES]


class _OptionalBuildExt(build_ext):
    """A failing C build leaves the pure-Python package (like aiohttp's optional extensions)."""

    def run(self) -> None:
        try:
            super().run()
        except (Exception, SystemExit) as exc:  # any compiler trouble means: no extensions
            # All or nothing: a module's shim without the shared library would not import.
            for path in self.get_outputs():
                if os.path.exists(path):
                    os.remove(path)
            self.extensions = []
            _fall_back(f"the C build failed ({exc!r})")


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": _OptionalBuildExt})

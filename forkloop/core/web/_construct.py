"""A cheaper call of an exact class: ``install(cls)``, ``installed(cls)``.

Owns how ``Response(...)`` is constructed when the C twin is built: ``_construct.c`` (same
names; setup.py builds it) gives the class its own vectorcall constructor, which skips the
argument tuple and keyword dict ``type.__call__`` packs on CPython 3.11 and 3.12 and does
nothing else differently (subclasses and unusual classes take ``type.__call__``). This file
is the fallback (``FORKLOOP_NO_EXTENSIONS=1``, no compiler): the class keeps the interpreter's
own call. Imports nothing of ours.
"""

from __future__ import annotations

__all__ = ["install", "installed"]


def install(cls: type) -> bool:
    """Nothing to install without the C twin: False (``cls`` is called as any class)."""
    if not isinstance(cls, type):
        raise TypeError("install() takes a class defined in Python")
    return False


def installed(cls: type) -> bool:
    """Whether calls of exactly ``cls`` take the C twin's constructor: never, here."""
    if not isinstance(cls, type):
        raise TypeError("installed() takes a class")
    return False

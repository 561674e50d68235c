"""Worker processes: the forkloop worker main and the gunicorn worker classes.

``gunicorn app:app -k forkloop.workers.GunicornWebWorker`` (or ``GunicornUVLoopWebWorker``)
resolves the class through this package. gunicorn is an optional extra, so the two classes are
looked up lazily by the module ``__getattr__`` below: ``import forkloop.workers`` never imports
gunicorn; only touching one of the two names does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .gunicorn import GunicornUVLoopWebWorker, GunicornWebWorker

__all__ = ["GunicornUVLoopWebWorker", "GunicornWebWorker"]

_LAZY = frozenset(__all__)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import gunicorn

        return getattr(gunicorn, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)

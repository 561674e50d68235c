"""One step of a coroutine inside a ``contextvars.Context``: ``step(context, coro)``.

Owns the way the connection protocol runs a handler's step outside its task (see
``HttpProtocol._run_eagerly``): ``coro.send(None)`` inside ``context``, returning what the
coroutine yielded, or :data:`DONE` once it returned. Exceptions from the step propagate.

This module is the fallback. setup.py builds ``_stepping.c``, its C twin with the same names,
which reports a return without a StopIteration (an exception per request otherwise);
``FORKLOOP_NO_EXTENSIONS=1`` runs this file.
"""

from __future__ import annotations

from contextvars import Context
from typing import Any, Final

__all__ = ["DONE", "step"]

DONE: Final[Any] = object()  # step()'s answer when the coroutine returned


def step(context: Context, coro: Any) -> Any:
    """``coro.send(None)`` inside ``context``: what it yielded, or DONE if it returned."""
    try:
        return context.run(coro.send, None)
    except StopIteration:
        return DONE

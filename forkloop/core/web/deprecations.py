"""The warnings aiohttp.web emits for deprecated or discouraged uses, emitted at the same points.

Owns the helpers the request, response and server modules call where aiohttp warns: a plain
(non-typed) key stored on a request or a response (``NotAppKeyWarning``, once per key and
class, as aiohttp does), ``request.loop``, and a handler returning an ``HTTPException`` instead
of raising it.
The application's own warnings (``router=``, ``loop=``, subclassing, ``make_handler()``,
old-style middlewares, plain ``str`` keys) live in ``app``. Imports ``app`` lazily (``app``
imports the request module, which calls these).
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

__all__ = [
    "set_internal_key",
    "warn_deprecated_loop_access",
    "warn_plain_request_key",
    "warn_plain_response_key",
    "warn_returned_exception",
]

_DOCS = "https://docs.aiohttp.org/en/stable/web_advanced.html"

# The plain keys already warned about, per storage: aiohttp warns once per distinct key.
_seen_request_keys: set[Any] = set()
_seen_response_keys: set[Any] = set()


def warn_plain_request_key(key: Any) -> None:
    """``request[key] = value`` with a key that is not a ``web.RequestKey``."""
    from .app import RequestKey

    _warn_plain_key(key, RequestKey, _seen_request_keys, "RequestKey", "request-s-storage")


def warn_plain_response_key(key: Any) -> None:
    """``response[key] = value`` with a key that is not a ``web.ResponseKey``."""
    from .app import ResponseKey

    _warn_plain_key(key, ResponseKey, _seen_response_keys, "ResponseKey", "response-s-storage")


def warn_deprecated_loop_access() -> None:
    """``request.loop`` (deprecated in aiohttp 3.x): attributed to the caller outside this
    package, as the plain-key warning is."""
    warnings.warn(
        "request.loop property is deprecated", DeprecationWarning, stacklevel=_caller_level()
    )


def _caller_level() -> int:
    """The ``stacklevel`` naming the first frame outside ``forkloop.core.web``, for a
    warning issued by a helper here, counted on the real stack: the compiled build's request
    module leaves no frame of its own (setup.py, HOT_MODULES)."""
    level, frame = 1, sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(__package__):
        frame = frame.f_back
        level += 1
    return level


def _warn_plain_key(key: Any, typed: type, seen: set[Any], name: str, anchor: str) -> None:
    from .app import NotAppKeyWarning

    if isinstance(key, typed) or key in seen:
        return
    seen.add(key)
    warnings.warn(
        f"It is recommended to use web.{name} instances for keys.\n{_DOCS}#{anchor}",
        category=NotAppKeyWarning,
        stacklevel=_caller_level(),
    )


def warn_returned_exception() -> None:
    """A handler returned an ``HTTPException`` (it is sent as the response, as in aiohttp)."""
    warnings.warn(
        "returning HTTPException object is deprecated (#2415) and will be removed, "
        "please raise the exception instead",
        DeprecationWarning,
        stacklevel=2,
    )


def set_internal_key(app: Any, key: str, value: Any) -> None:
    """Store ``value`` under forkloop's own plain ``str`` key (such as ``OBSERVERS_KEY``, kept
    a string so ``core.hooks`` imports nothing) without the warning meant for applications."""
    from .app import NotAppKeyWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotAppKeyWarning)
        app[key] = value

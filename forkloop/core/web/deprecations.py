"""The warnings aiohttp.web emits for deprecated or discouraged uses, emitted at the same points.

Owns the helpers the request, response and server modules call where aiohttp warns: a plain
(non-typed) key stored on a request or a response (``NotAppKeyWarning``, once per key and
class, as aiohttp does) and a handler returning an ``HTTPException`` instead of raising it.
The application's own warnings (``router=``, ``loop=``, subclassing, ``make_handler()``,
old-style middlewares, plain ``str`` keys) live in ``app``. Imports ``app`` lazily (``app``
imports the request module, which calls these).
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = [
    "set_internal_key",
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
    from .app import NotAppKeyWarning, RequestKey

    if isinstance(key, RequestKey) or key in _seen_request_keys:
        return
    _seen_request_keys.add(key)
    warnings.warn(
        f"It is recommended to use web.RequestKey instances for keys.\n{_DOCS}#request-s-storage",
        category=NotAppKeyWarning,
        stacklevel=3,
    )


def warn_plain_response_key(key: Any) -> None:
    """``response[key] = value`` with a key that is not a ``web.ResponseKey``."""
    from .app import NotAppKeyWarning, ResponseKey

    if isinstance(key, ResponseKey) or key in _seen_response_keys:
        return
    _seen_response_keys.add(key)
    warnings.warn(
        f"It is recommended to use web.ResponseKey instances for keys.\n{_DOCS}#response-s-storage",
        category=NotAppKeyWarning,
        stacklevel=3,
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

"""The JSON text of ``json_response``: exactly ``json.dumps(data)``, made cheaper.

Owns turning a handler's data into JSON text with ``json.dumps``'s default settings (ASCII
escapes, ``", "`` and ``": "`` separators, NaN allowed, keys in insertion order): the same text
and the same errors as ``json.dumps``. Compiled (setup.py); imports ``core.web._flatjson``.

Two ways to the same text, one predicate between them: a flat object (a ``dict`` whose keys are
``str`` and whose values are ``str``, ``int``, ``bool`` or ``None``; the common JSON answer) is
written by ``_flatjson.flat_object`` (a C twin where it is built); anything else is
``json.dumps`` itself (no encoder state shared between calls or threads).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from ._flatjson import flat_object

__all__ = ["dumps"]

_json_dumps: Final[Callable[[Any], str]] = json.dumps
_flat_object: Final[Callable[[Any], str | None]] = flat_object


def dumps(data: Any) -> str:
    """``json.dumps(data)``: the same text, and the same errors."""
    text = _flat_object(data)  # None unless data is a flat object: the one predicate
    return text if text is not None else _json_dumps(data)

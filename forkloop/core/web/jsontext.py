"""The JSON text of ``json_response``: exactly ``json.dumps(data)``, made cheaper.

Owns turning a handler's data into JSON text with ``json.dumps``'s default settings (ASCII
escapes, ``", "`` and ``": "`` separators, NaN allowed, keys in insertion order): the same text
and the same errors as ``json.dumps``. Compiled (setup.py); imports nothing of ours.

Two ways to the same text, one predicate between them: a flat object (a ``dict`` whose keys are
``str`` and whose values are ``str``, ``int``, ``bool`` or ``None``; the common JSON answer) is
written here, each string escaped by the json module's own escaper; anything else is
``json.dumps`` itself (no encoder state shared between calls or threads).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

__all__ = ["dumps"]

# json.dumps's string escaper (ensure_ascii=True): the C one when the accelerator is there.
_escape: Final[Callable[[str], str]] = json.encoder.encode_basestring_ascii
_json_dumps: Final[Callable[[Any], str]] = json.dumps
# Escaped object keys by key: a handler's keys are nearly always the same few strings, and a
# lookup (the key's hash is cached in it) costs less than escaping again. Bounded in count
# and in key length; a str key's escape depends on its text only.
_KEYS: Final[dict[str, str]] = {}
_MAX_KEYS: Final = 1024
_MAX_KEY_CHARS: Final = 64


def dumps(data: Any) -> str:
    """``json.dumps(data)``: the same text, and the same errors."""
    if type(data) is dict:
        text = _flat_object(data)
        if text is not None:
            return text
    return _json_dumps(data)


def _flat_object(data: dict[Any, Any]) -> str | None:
    """The JSON text of a flat object, or None (nothing done) for any other dict.

    Flat: every key a ``str``, every value a ``str``, ``int``, ``bool`` or ``None`` (exact
    types: a subclass may render itself differently). No Python code runs while the dict is
    read, so it cannot change under the loop.
    """
    # Pieces joined once: fewer intermediate strings than one f-string per member.
    pieces: list[str] = ["{"]
    for key, value in data.items():
        if type(key) is not str:
            return None
        if type(value) is str:
            rendered = _escape(value)
        elif type(value) is int:
            rendered = str(value)  # int.__repr__, as json.dumps (and its digit limit)
        elif value is None:
            rendered = "null"
        elif value is True:
            rendered = "true"
        elif value is False:
            rendered = "false"
        else:
            return None
        if len(pieces) > 1:
            pieces.append(", ")
        escaped = _KEYS.get(key)
        if escaped is None:
            escaped = _escape(key)
            if len(_KEYS) < _MAX_KEYS and len(key) <= _MAX_KEY_CHARS:
                _KEYS[key] = escaped
        pieces.append(escaped)
        pieces.append(": ")
        pieces.append(rendered)
    pieces.append("}")
    return "".join(pieces)

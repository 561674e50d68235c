"""The JSON text of a flat object: ``flat_object(data)``, ``json.dumps``'s text written directly.

Owns which dicts ``jsontext.dumps`` writes without ``json.dumps`` and how. A *flat object* is
an exact ``dict`` whose keys are exact ``str`` and whose values are exact ``str``, ``int``,
``bool`` or ``None`` (a subclass may render itself differently); its text is what
``json.dumps`` gives with its default settings: ``{``, then ``"key": value`` pairs in insertion
order separated by ``", "``, then ``}``; each string escaped as ``ensure_ascii=True`` escapes it
(by the json module's own escaper), each int as ``int.__repr__`` writes it (so the same
``ValueError`` past the digit limit), ``true``, ``false`` and ``null``. For any other dict
``flat_object`` returns None and the caller asks ``json.dumps``. No Python code of the caller's
runs while the dict is read.

This module is the fallback, and the definition. setup.py builds ``_flatjson.c``, its C twin
with the same names, which reads the dict once and writes the text into one string;
``FORKLOOP_NO_EXTENSIONS=1`` runs this file. tests/core_web compares the two, and both with
``json.dumps``. Imports nothing of ours.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

__all__ = ["flat_object"]

# json.dumps's string escaper (ensure_ascii=True): the C one when the accelerator is there.
_escape: Final[Callable[[str], str]] = json.encoder.encode_basestring_ascii
# Escaped object keys by key: a handler's keys are nearly always the same few strings, and a
# lookup (the key's hash is cached in it) costs less than escaping again. Bounded in count
# and in key length; a str key's escape depends on its text only.
_KEYS: Final[dict[str, str]] = {}
_MAX_KEYS: Final = 1024
_MAX_KEY_CHARS: Final = 64


def flat_object(data: Any) -> str | None:
    """The JSON text of ``data`` if it is a flat object (see the module), else None."""
    if type(data) is not dict:
        return None
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

"""Unmasking a payload inside a received buffer: ``unmask(data, at, start, length)``.

Owns the XOR of ``length`` bytes of ``data`` from ``start`` with the 4-byte key at ``at``
(RFC 6455 section 5.3), without slicing the key or the payload out first. This module is the
fallback; setup.py builds ``_unmask.c``, its C twin with the same name (a loop in C instead of
big-integer arithmetic); ``FORKLOOP_NO_EXTENSIONS=1`` runs this file. Imports nothing of ours
but the codec.
"""

from __future__ import annotations

from typing import Final

from .masking import apply_mask

__all__ = ["unmask"]

_from_bytes: Final = int.from_bytes
_INT_MAX: Final = 256


def unmask(data: bytes, at: int, start: int, length: int) -> bytes:
    """``data[start:start + length]`` XOR-ed with the repeating key ``data[at:at + 4]``."""
    size = len(data)
    if at < 0 or start < 0 or length < 0 or at > size - 4 or start > size - length:
        raise ValueError("unmask(): key or payload outside the data")
    if length >= _INT_MAX:
        return apply_mask(data[at : at + 4], data[start : start + length])
    words = (length + 3) >> 2
    key = _from_bytes(data[at : at + 4] * words, "little")
    payload = _from_bytes(data[start : start + length], "little") ^ key
    if length & 3:  # the key covers whole words: its top bytes XOR zero bytes
        return payload.to_bytes(words << 2, "little")[:length]
    return payload.to_bytes(length, "little")

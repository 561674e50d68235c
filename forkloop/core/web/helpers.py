"""Small value types of aiohttp.web's API shared by requests and responses.

Owns ``ChainMapProxy``, ``ETag`` and HTTP-date parsing; content-type parsing comes from
``core.http.headers``, which it imports.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple

# Linear-time parsing of request header values (issue 15); re-exported for this package.
from ..http.headers import parse_content_type as parse_content_type

__all__ = ["ChainMapProxy", "ETag"]


class ETag(NamedTuple):
    value: str
    is_weak: bool = False


class ChainMapProxy(Mapping[Any, Any]):
    """Read-only lookup through several mappings, first match wins (``request.config_dict``)."""

    __slots__ = ("_maps",)

    def __init__(self, maps: Sequence[Mapping[Any, Any]]) -> None:
        self._maps = tuple(maps)

    def __init_subclass__(cls) -> None:
        raise TypeError(f"Inheritance class {cls.__name__} from ChainMapProxy is forbidden")

    def __getitem__(self, key: Any) -> Any:
        for mapping in self._maps:
            try:
                return mapping[key]
            except KeyError:
                pass
        raise KeyError(key)

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __len__(self) -> int:
        return len(set().union(*self._maps))

    def __iter__(self) -> Iterator[Any]:
        seen: dict[Any, None] = {}
        for mapping in reversed(self._maps):
            seen.update(dict.fromkeys(mapping))
        return iter(seen)

    def __contains__(self, key: object) -> bool:
        return any(key in mapping for mapping in self._maps)

    def __bool__(self) -> bool:
        return any(self._maps)

    def __repr__(self) -> str:
        return f"ChainMapProxy({', '.join(map(repr, self._maps))})"


def parse_http_date(value: str | None) -> datetime.datetime | None:
    """An RFC 9110 HTTP-date as an aware datetime, or None when absent or malformed."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed


def is_etagc(value: str) -> bool:
    """``1*etagc`` (RFC 9110 section 8.8.3): ``!``, ``#``..``~`` and obs-text (0x80-0xFF)."""
    return bool(value) and all(c == "!" or "#" <= c <= "~" or "\x80" <= c <= "\xff" for c in value)


def parse_etags(value: str | None) -> tuple[ETag, ...] | None:
    """``If-Match``/``If-None-Match`` values as aiohttp reads them; None when absent or empty.

    ``*`` alone is ``(ETag("*"),)``. Otherwise entity-tags (``"x"`` or ``W/"x"``, RFC 9110
    section 8.8.3) separated by commas and optional whitespace are read from the start, and
    reading stops, keeping what came before, at the first thing that is not one (a ``*`` in a
    list, an empty or unquoted tag, a lower-case ``w/``, a character outside etagc). One
    left-to-right scan: linear in the header's length.
    """
    if not value:
        return None
    if value == "*":
        return (ETag("*"),)
    tags: list[ETag] = []
    pos, end = 0, len(value)
    while pos < end:
        weak = value.startswith('W/"', pos)
        start = pos + 3 if weak else pos + 1
        if not weak and value[pos] != '"':
            break
        close = value.find('"', start)
        if close < 0 or not is_etagc(value[start:close]):
            break
        pos = close + 1
        after = pos
        while after < end and value[after].isspace():
            after += 1
        if after < end and value[after] == ",":
            after += 1
            while after < end and value[after].isspace():
                after += 1
        elif pos != end and value[pos:] != "\n":  # a tag must end the value or the item
            break
        tags.append(ETag(value[start:close], weak))
        pos = after
    return tuple(tags)

"""Linear-time parsers of request header values the web layer reads: ``Cookie`` and
``Content-Type``, and the ``*`` masks a ``Host`` is matched against.

Owns: splitting those values into their parts in one forward pass, whatever the input
(issue 15). The standard library's ``SimpleCookie`` unquotes backslash escapes in time
quadratic in their number on the Pythons we support (CVE-2024-7592: an 8 KB Cookie header of
backslashes costs half a second per request), and a split that copies the rest of the value
per parameter is quadratic in the number of ``;``. No regex, no asyncio; imports nothing of
ours.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["match_wildcard", "parse_content_type", "parse_cookie_headers", "split_unquoted"]

# Characters that cannot be part of a cookie name (RFC 6265 cookie-name is an RFC 2616
# token; like aiohttp we accept other printable characters, but not these).
_NOT_IN_COOKIE_NAME = frozenset(' \t\r\n\x0b\x0c",;\\=') | frozenset(map(chr, range(32)))
_OCTAL = frozenset("01234567")


def _unquote_cookie_value(text: str) -> str:
    """Undo the quoted-string escapes of a cookie value: ``\\ooo`` (octal) and ``\\c``."""
    if "\\" not in text:
        return text
    out: list[str] = []
    pos = 0
    n = len(text)
    while pos < n:
        k = text.find("\\", pos)
        if k < 0 or k + 1 >= n:
            out.append(text[pos:])
            break
        out.append(text[pos:k])
        octal = text[k + 1 : k + 4]
        if len(octal) == 3 and set(octal) <= _OCTAL:
            out.append(chr(int(octal, 8)))
            pos = k + 4
        else:
            out.append(text[k + 1])
            pos = k + 2
    return "".join(out)


def parse_cookie_headers(values: Iterable[str]) -> dict[str, str]:
    """The cookies of ``Cookie`` header values (RFC 6265 section 5.4): ``name=value`` pairs
    separated by ``;``, values unquoted; later pairs win. Pairs without ``=`` or with an
    invalid name are skipped, the rest kept. Linear in the total length."""
    cookies: dict[str, str] = {}
    for value in values:
        for item in value.split(";"):
            name, eq, val = item.partition("=")
            name = name.strip(" \t")
            if not eq or not name or not _NOT_IN_COOKIE_NAME.isdisjoint(name):
                continue
            val = val.strip(" \t")
            if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
                val = _unquote_cookie_value(val[1:-1])
            cookies[name] = val
    return cookies


def split_unquoted(text: str, sep: str) -> list[str]:
    """``text`` split at each ``sep`` outside double quotes (a backslash escapes the next
    character inside quotes). One pass: linear in the length."""
    pieces: list[str] = []
    start = 0
    quoted = escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            pieces.append(text[start:index])
            start = index + 1
    pieces.append(text[start:])
    return pieces


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """``text/html; charset="utf-8"`` -> ``("text/html", {"charset": "utf-8"})``.

    The media type and parameter names are lowercased; parameters without ``=`` or a name
    are skipped; a later duplicate wins; a value in double quotes loses them and its
    ``\\"`` / ``\\\\`` escapes."""
    main, _, rest = value.partition(";")
    params: dict[str, str] = {}
    if rest:
        for item in split_unquoted(rest, ";"):
            name, eq, val = item.partition("=")
            name = name.strip().lower()
            if not name or not eq:
                continue
            val = val.strip()
            if len(val) >= 2 and val[0] == val[-1] == '"':
                val = val[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            params[name] = val
    return main.strip().lower(), params


def match_wildcard(mask: str, text: str) -> bool:
    """Whether ``text`` matches ``mask``, where each ``*`` stands for any run of characters
    (dots included: ``*.example.com`` matches ``a.b.example.com``) and the rest is literal.

    The regex ``.*\\.`` ``.*`` ... this replaces backtracks polynomially with the number of
    ``*``; here the literal pieces between them are placed leftmost in order, which decides the
    match in one forward pass (``str.find``), the fixed first and last pieces checked first.
    """
    pieces = mask.split("*")
    if len(pieces) == 1:
        return mask == text
    first, last = pieces[0], pieces[-1]
    if len(text) < len(first) + len(last) or not text.startswith(first):
        return False
    if not text.endswith(last):
        return False
    pos = len(first)
    end = len(text) - len(last)
    for piece in pieces[1:-1]:
        index = text.find(piece, pos, end)
        if index < 0:
            return False
        pos = index + len(piece)
    return True

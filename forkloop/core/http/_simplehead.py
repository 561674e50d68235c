"""Recognizing a simple request head: ``scan(data, start, ...)``, the simple-head branch's half.

Owns which request heads the parser may take without llhttp (``RequestParser._simple_heads``)
and how they split into method, target and fields. A head is *simple* when it is whole in
``data`` from ``start`` and is, byte for byte:

- a request line ``METHOD SP target SP HTTP/1.1 CRLF``: METHOD one of :data:`SIMPLE_METHODS`,
  the target origin-form (``/`` first) of RFC 3986 pchar, ``/`` and ``?`` only, at most
  ``max_line`` bytes;
- field lines ``name ":" value CRLF``: a non-empty token name, a value of visible ASCII, space
  and tab (no obs-text, no obs-fold), each line at most ``max_field`` bytes counted as
  ``len(name) + len(value with its spaces) + 2``, together at most ``max_header_bytes``, at
  most ``max_fields`` of them;
- exactly one ``Host``; ``Connection`` only as ``keep-alive`` or ``close`` (and at most one);
  no ``Content-Length``, ``Transfer-Encoding``, ``Expect``, ``Upgrade`` or
  ``Proxy-Connection`` (so no body, RFC 9112 §6.3, and no upgrade);
- then the empty line CRLF, within ``max_head`` bytes of ``start``.

``limits`` are ``(max_head, max_line, max_field, max_header_bytes, max_fields)``, from the
parser's ``Limits``. For such a head ``scan`` returns
``(end, method, target, fields, host, keep_alive)``: the offset after the empty line, the
method and target as str, the ``(name, value)`` list with values stripped of leading and
trailing space and tab (as the llhttp path leaves them), the Host value, and False for
``Connection: close``. For anything else it returns None and the parser hands the bytes to
llhttp, which parses or refuses them. Every byte is looked at a bounded number of times.

This module is the fallback, and the definition. setup.py builds ``_simplehead.c``, its C twin
with the same names; ``FORKLOOP_NO_EXTENSIONS=1`` runs this file, and there the parser leaves
the branch off (``CHEAPER``). tests/http compares the two, and the parser with the branch (with
either) against the parser without it.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CHEAPER", "SIMPLE_METHODS", "scan"]

# Whether scan() costs less than llhttp's path: the parser takes the branch only then. Here, in
# Python, a loop over every byte costs more than llhttp and its callbacks (GET /: 112k
# instructions against 89k, pure build); the C twin says True (30k against 32k, compiled).
CHEAPER = False

SIMPLE_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
_ALNUM: Final = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# RFC 3986 pchar (unreserved, sub-delims, ":", "@", pct-encoded's "%"), "/" and "?".
_TARGET: Final = frozenset(_ALNUM + b"-._~!$&'()*+,;=:@/?%")
_TOKEN: Final = frozenset(_ALNUM + b"!#$%&'*+-.^_`|~")  # RFC 9110 §5.6.2 tchar
_VALUE: Final = frozenset(range(0x20, 0x7F)) | {0x09}  # VCHAR, SP, HTAB
_LINE_END: Final = b"HTTP/1.1\r\n"
# Fields the simple branch leaves to llhttp: they frame a body or ask for an upgrade.
_REFUSED: Final = frozenset(
    (b"content-length", b"transfer-encoding", b"expect", b"upgrade", b"proxy-connection")
)
_METHODS: Final = {m.encode(): m for m in SIMPLE_METHODS}
# The lengths of host, connection and the _REFUSED names: only those are lower-cased.
_SPECIAL_LENGTHS: Final = frozenset(len(n) for n in (b"host", b"connection", *_REFUSED))

Found = tuple[int, str, str, list[tuple[bytes, bytes]], bytes, bool]


def scan(  # noqa: C901 - one pass over the head, as the C twin makes it
    data: bytes, start: int, limits: tuple[int, int, int, int, int]
) -> Found | None:
    """The simple head at ``data[start:]``, split; None if there is none (see the module).

    ``limits``: ``(max_head, max_line, max_field, max_header_bytes, max_fields)``.
    """
    max_head, max_line, max_field, max_header_bytes, max_fields = limits
    if start < 0 or max_head < 0:
        return None
    size = min(len(data), start + max_head)
    at = data.find(b" ", start, min(size, start + 8))
    if at < 0:
        return None
    method = _METHODS.get(data[start:at])
    if method is None:
        return None
    at += 1
    target_start = at
    while at < size and data[at] in _TARGET:
        at += 1
    target_length = at - target_start
    if (
        target_length == 0
        or target_length > max_line
        or data[target_start] != 0x2F  # "/"
        or at + 11 > size
        or data[at] != 0x20
        or data[at + 1 : at + 11] != _LINE_END
    ):
        return None
    target = data[target_start:at].decode("ascii")
    at += 11
    fields: list[tuple[bytes, bytes]] = []
    header_bytes = 0
    host: bytes | None = None
    connection = False
    keep_alive = True
    while True:
        if at + 2 > size:
            return None
        if data[at] == 0x0D and data[at + 1] == 0x0A:  # the empty line
            break
        name_start = at
        while at < size and data[at] in _TOKEN:
            at += 1
        if at == name_start or at >= size or data[at] != 0x3A:  # ":"
            return None
        name = data[name_start:at]
        at += 1
        value_start = at
        while at < size and data[at] in _VALUE:
            at += 1
        if at + 2 > size or data[at] != 0x0D or data[at + 1] != 0x0A:
            return None
        field = len(name) + at - value_start + 2
        header_bytes += field
        if field > max_field or header_bytes > max_header_bytes or len(fields) >= max_fields:
            return None
        value = data[value_start:at].strip(b" \t")
        at += 2
        if len(name) in _SPECIAL_LENGTHS:
            lname = name.lower()
            if lname == b"host":
                if host is not None:
                    return None
                host = value
            elif lname == b"connection":
                token = value.lower()
                if connection or (token != b"keep-alive" and token != b"close"):
                    return None
                connection = True
                keep_alive = token == b"keep-alive"
            elif lname in _REFUSED:
                return None
        fields.append((name, value))
    if host is None:
        return None
    return at + 2, method, target, fields, host, keep_alive

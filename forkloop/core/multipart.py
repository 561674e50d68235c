"""Sans-I/O streaming parser for ``multipart/*`` bodies (RFC 2046 section 5.1, RFC 7578).

Owns: splitting a multipart body into parts, part-header parsing with limits, and the pure
helpers that read ``Content-Type`` / ``Content-Disposition`` parameters (RFC 2231 / RFC 5987
``name*=`` values included). No asyncio, no I/O; imports nothing of forkloop's.

Theory of operation
-------------------
``MultipartParser(boundary).feed(data)`` returns a list of events, in order:
``PartHeaders`` (one per part), ``PartData`` (zero or more per part), ``PartEnd`` and, after
the close delimiter, a single ``End``. ``feed_eof()`` raises if the close delimiter never came.

The delimiter of RFC 2046 is ``CRLF "--" boundary``; the first one may start the body, so the
parser behaves as if the body began with a CRLF. States::

    PREAMBLE --delimiter--> AFTER_DELIM --CRLF--> HEADERS --CRLF CRLF--> BODY --delimiter--+
                               |   ^                                                         |
                               |   +---------------------------------------------------------+
                               +--"--"--> DONE (epilogue discarded)

In PREAMBLE and BODY the parser searches only the new bytes plus at most ``len(delimiter) - 1``
bytes kept from the previous feed (kept only when they could start a delimiter), so the cost is
linear in the input whatever the split; part data is handed out as soon as it cannot be the
start of a delimiter. Header blocks are accumulated (bounded by ``max_part_header_bytes``) and
searched from where the previous search stopped.

Errors raise ``MultipartError`` (``status`` 400), never hang: a body that ends early is reported
by ``feed_eof()``.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

__all__ = [
    "End",
    "Event",
    "MultipartError",
    "MultipartLimits",
    "MultipartParser",
    "PartData",
    "PartEnd",
    "PartHeaders",
    "parse_content_disposition",
    "parse_header_params",
    "scan_header_params",
    "validate_boundary",
]


class MultipartError(ValueError):
    """A malformed or over-limit multipart body. ``status`` is the HTTP status to answer."""

    status: int = 400

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class MultipartLimits:
    """Limits of one multipart body; units in the names."""

    max_boundary_bytes: int = 70  # RFC 2046: 1..70 characters
    max_part_header_bytes: int = 16384  # one part's header block, without the blank line
    max_part_header_count: int = 32
    max_preamble_bytes: int = 65536
    max_padding_bytes: int = 256  # transport padding (LWSP) after a boundary
    max_header_params: int = 64  # parameters in one Content-Type / Content-Disposition value
    max_param_continuations: int = 64  # RFC 2231 ``name*N``: N must be below this


@dataclass(frozen=True, slots=True)
class PartHeaders:
    """The header block of a new part: ``(name, value)`` pairs in order, names as sent."""

    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class PartData:
    """A piece of the current part's body."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnd:
    """The current part ended (a delimiter followed it)."""


@dataclass(frozen=True, slots=True)
class End:
    """The close delimiter was seen; anything after it (the epilogue) is discarded."""


Event = PartHeaders | PartData | PartEnd | End

_PREAMBLE, _AFTER_DELIM, _HEADERS, _BODY, _DONE = range(5)
_PART_END = PartEnd()
_END = End()
# RFC 2046 bchars, plus the space that may not end a boundary.
_BOUNDARY_RE = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_TOKEN_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def validate_boundary(boundary: str | bytes, limits: MultipartLimits | None = None) -> bytes:
    """Return the boundary as bytes, or raise ``MultipartError`` (400) if it is unusable."""
    limits = limits or MultipartLimits()
    raw = boundary.encode("latin-1", "replace") if isinstance(boundary, str) else boundary
    if not raw:
        raise MultipartError("multipart boundary is missing")
    if len(raw) > limits.max_boundary_bytes:
        raise MultipartError(
            f"multipart boundary is {len(raw)} bytes long (limit {limits.max_boundary_bytes})"
        )
    if _BOUNDARY_RE.fullmatch(raw) is None:
        raise MultipartError(f"invalid multipart boundary {raw!r}")
    return raw


class MultipartParser:
    """Feed bytes of one multipart body; get ``PartHeaders``/``PartData``/``PartEnd``/``End``."""

    __slots__ = (
        "_buf",
        "_delim",
        "_hdr",
        "_hdr_scan",
        "_limits",
        "_preamble_seen",
        "_state",
    )

    def __init__(self, boundary: str | bytes, limits: MultipartLimits | None = None) -> None:
        self._limits = limits or MultipartLimits()
        self._delim = b"\r\n--" + validate_boundary(boundary, self._limits)
        self._state = _PREAMBLE
        # As if the body began with CRLF: the first delimiter may open the body.
        self._buf = b"\r\n"
        self._hdr = bytearray()
        self._hdr_scan = 0
        self._preamble_seen = 0

    @property
    def done(self) -> bool:
        """True once the close delimiter has been parsed."""
        return self._state == _DONE

    def feed(self, data: bytes) -> list[Event]:
        """Parse the next bytes of the body; return the events they complete."""
        events: list[Event] = []
        if self._state == _DONE:
            return events
        buf = self._buf + data if self._buf else bytes(data)
        self._buf = b""
        pos = 0
        n = len(buf)
        while pos < n:
            state = self._state
            if state == _BODY:
                pos = self._body(buf, pos, events)
            elif state == _HEADERS:
                pos = self._headers(buf, pos, events)
            elif state == _AFTER_DELIM:
                pos = self._after_delim(buf, pos, events)
            elif state == _PREAMBLE:
                pos = self._preamble(buf, pos)
            else:  # _DONE: the epilogue is ignored
                return events
            if pos < 0:  # need more input; the unparsed rest was kept
                break
        return events

    def feed_eof(self) -> list[Event]:
        """The body ended. Raise ``MultipartError`` unless the close delimiter was seen."""
        if self._state != _DONE:
            where = {
                _PREAMBLE: "before the first boundary",
                _AFTER_DELIM: "inside a boundary line",
                _HEADERS: "inside part headers",
                _BODY: "inside a part",
            }[self._state]
            raise MultipartError(f"multipart body truncated {where} (no closing boundary)")
        return []

    # -- states ---------------------------------------------------------------------------

    def _safe_end(self, buf: bytes, pos: int) -> int:
        """Index up to which ``buf`` cannot hold the start of a delimiter."""
        n = len(buf)
        delim = self._delim
        k = buf.find(b"\r", max(pos, n - len(delim) + 1))
        while k != -1:
            if delim.startswith(buf[k:]):
                return k
            k = buf.find(b"\r", k + 1)
        return n

    def _preamble(self, buf: bytes, pos: int) -> int:
        i = buf.find(self._delim, pos)
        if i == -1:
            end = self._safe_end(buf, pos)
            self._preamble_seen += end - pos
            self._check_preamble()
            self._buf = buf[end:]
            return -1
        self._preamble_seen += i - pos
        self._check_preamble()
        self._state = _AFTER_DELIM
        return i + len(self._delim)

    def _check_preamble(self) -> None:
        # The virtual leading CRLF counts as two preamble bytes; harmless.
        if self._preamble_seen > self._limits.max_preamble_bytes + 2:
            raise MultipartError("no multipart boundary found in the body's first bytes")

    def _after_delim(self, buf: bytes, pos: int, events: list[Event]) -> int:
        n = len(buf)
        if n - pos < 2:
            self._buf = buf[pos:]
            return -1
        if buf[pos] == 0x2D and buf[pos + 1] == 0x2D:  # "--": close delimiter
            self._state = _DONE
            events.append(_END)
            return n
        # Transport padding (LWSP) then CRLF ends the boundary line.
        i = pos
        limit = pos + self._limits.max_padding_bytes
        while i < n and buf[i] in b" \t":
            i += 1
        if i > limit:
            raise MultipartError("too much padding after a multipart boundary")
        if n - i < 2:
            self._buf = buf[pos:]
            return -1
        if buf[i] != 0x0D or buf[i + 1] != 0x0A:
            raise MultipartError("malformed multipart boundary line (expected CRLF)")
        self._state = _HEADERS
        # Keep the CRLF: the header block then always ends with CRLF CRLF, even when empty.
        self._hdr = bytearray(b"\r\n")
        self._hdr_scan = 0
        return i + 2

    def _headers(self, buf: bytes, pos: int, events: list[Event]) -> int:
        hdr = self._hdr
        before = len(hdr)
        cap = self._limits.max_part_header_bytes + 6  # leading CRLF + block + CRLF CRLF
        room = cap - before
        hdr += buf[pos : pos + room]
        i = hdr.find(b"\r\n\r\n", self._hdr_scan)
        if i == -1:
            if len(hdr) >= cap:
                raise MultipartError(
                    f"multipart part headers exceed {self._limits.max_part_header_bytes} bytes"
                )
            self._hdr_scan = max(0, len(hdr) - 3)
            return -1
        block = bytes(hdr[2:i])
        if len(block) > self._limits.max_part_header_bytes:
            raise MultipartError(
                f"multipart part headers exceed {self._limits.max_part_header_bytes} bytes"
            )
        events.append(PartHeaders(self._parse_headers(block)))
        self._hdr = bytearray()
        self._state = _BODY
        return pos + (i + 4 - before)

    def _parse_headers(self, block: bytes) -> tuple[tuple[str, str], ...]:
        if not block:
            return ()
        lines = block.split(b"\r\n")
        if len(lines) > self._limits.max_part_header_count:
            raise MultipartError(
                f"too many multipart part headers ({len(lines)}, "
                f"limit {self._limits.max_part_header_count})"
            )
        out: list[tuple[str, str]] = []
        for line in lines:
            name, sep, value = line.partition(b":")
            if not sep or _TOKEN_RE.fullmatch(name) is None:
                # Also refuses obs-fold (a line starting with SP/HT), deprecated by RFC 7230.
                raise MultipartError(f"malformed multipart part header line {line[:64]!r}")
            value = value.strip(b" \t")
            if b"\r" in value or b"\n" in value or b"\x00" in value:
                raise MultipartError("invalid character in a multipart part header value")
            out.append((name.decode("ascii"), _decode_header_value(value)))
        return tuple(out)

    def _body(self, buf: bytes, pos: int, events: list[Event]) -> int:
        i = buf.find(self._delim, pos)
        if i == -1:
            end = self._safe_end(buf, pos)
            if end > pos:
                events.append(PartData(buf if pos == 0 and end == len(buf) else buf[pos:end]))
            self._buf = buf[end:]
            return -1
        if i > pos:
            events.append(PartData(buf[pos:i]))
        events.append(_PART_END)
        self._state = _AFTER_DELIM
        return i + len(self._delim)


def _decode_header_value(value: bytes) -> str:
    # RFC 7578 section 4.2 lets browsers send UTF-8 in filename; fall back to latin-1 (which
    # keeps every byte) for anything else.
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


# -- header parameters (RFC 2045 / RFC 2231 / RFC 5987 / RFC 6266 / RFC 7578) -------------------
#
# A linear scanner, not a regex over the whole value: a pattern such as ``\s*;\s*name\s*=...``
# applied with finditer backtracks over runs of whitespace (time grows with the square of the
# value's length). Here every step moves the position forward: the only patterns used are one
# character class repeated, matched at an offset (a single loop in the regex engine, which has
# nothing to backtrack into), plus ``str.find``. Grammar, leniently (RFC 9110 section 5.6.6):
#
#     value  = main *( OWS ";" OWS [ param ] )
#     param  = name OWS [ "=" OWS ( quoted-string / token-ish up to the next ";" ) ]
#
# RFC 2231 names: ``name*`` (charset'language'pct-encoded), ``name*N`` / ``name*N*``
# (continuations). A continuation index must be below ``max_param_continuations`` and the
# indices of one name must run 0, 1, 2... without gaps or repeats; else MultipartError (400).

_OWS_RUN = re.compile(r"[ \t\r\n\f\v]*")
_NAME_RUN = re.compile(r'[^ \t\r\n\f\v=;"]*')
_QTEXT_RUN = re.compile(r'[^"\\]*')


def _skip_ows(value: str, pos: int) -> int:
    m = _OWS_RUN.match(value, pos)
    return m.end() if m is not None else pos


def _quoted_string(value: str, pos: int) -> tuple[str, int]:
    """Unquote the quoted-string whose opening quote is at ``pos - 1``; return it and the
    position after its closing quote. Quoted-pairs (``\\x``) lose their backslash."""
    n = len(value)
    out: list[str] = []
    while True:
        m = _QTEXT_RUN.match(value, pos)
        end = m.end() if m is not None else pos
        if end > pos:
            out.append(value[pos:end])
        if end >= n:
            raise MultipartError("unterminated quoted string in a header parameter")
        if value[end] == '"':
            return "".join(out), end + 1
        # A backslash: the next character is taken literally.
        if end + 1 >= n:
            raise MultipartError("unterminated quoted string in a header parameter")
        out.append(value[end + 1])
        pos = end + 2


def _next_semicolon(value: str, pos: int) -> int:
    i = value.find(";", pos)
    return len(value) if i < 0 else i


def scan_header_params(value: str, pos: int = 0, max_params: int = 64) -> list[tuple[str, str]]:
    """The ``(name lowercased, value unquoted)`` pairs of ``value[pos:]``, in order.

    ``value[pos]`` is the ``;`` before the first parameter (or ``pos == len(value)``). Runs in
    time linear in the length of ``value``. Empty parameters (``;;``) and fragments that are no
    parameter (``; junk junk``) are skipped; an unterminated quoted string or more than
    ``max_params`` parameters (empty ones included) raise ``MultipartError``.
    """
    n = len(value)
    out: list[tuple[str, str]] = []
    count = 0
    while pos < n:
        # value[pos] is ";" here. Empty parameters count too: ";;;..." is bounded like the rest.
        count += 1
        if count > max_params:
            raise MultipartError(f"more than {max_params} parameters in a header value")
        pos = _skip_ows(value, pos + 1)
        m = _NAME_RUN.match(value, pos)
        name_end = m.end() if m is not None else pos
        name = value[pos:name_end]
        pos = _skip_ows(value, name_end)
        if not name:
            pos = _next_semicolon(value, pos)
            continue
        if pos < n and value[pos] == "=":
            pos = _skip_ows(value, pos + 1)
            if pos < n and value[pos] == '"':
                raw, pos = _quoted_string(value, pos + 1)
                pos = _next_semicolon(value, pos)  # anything after the closing quote is ignored
            else:
                end = _next_semicolon(value, pos)
                raw = value[pos:end].strip()
                pos = end
        elif pos >= n or value[pos] == ";":
            raw = ""  # a bare flag (``; flag``)
        else:
            pos = _next_semicolon(value, pos)  # ``name junk``: not a parameter
            continue
        out.append((name.lower(), raw))
    return out


def _decode_ext_value(value: str) -> str:
    """Decode an RFC 2231 / 5987 ``charset'language'percent-encoded`` value."""
    charset, sep1, rest = value.partition("'")
    _lang, sep2, encoded = rest.partition("'")
    if not (sep1 and sep2):
        return urllib.parse.unquote(value, "utf-8", "replace")
    charset = charset.strip().lower() or "utf-8"
    try:
        return urllib.parse.unquote(encoded, charset, "strict")
    except (LookupError, UnicodeDecodeError):
        return urllib.parse.unquote(encoded, "latin-1", "replace")


def _continuation(name: str, max_index: int) -> tuple[str, int] | None:
    """``("base", N)`` for an RFC 2231 continuation name ``base*N`` (the trailing ``*`` of an
    encoded piece already removed), else None. Raise if N is not below ``max_index``."""
    star = name.rfind("*")
    if star <= 0:
        return None
    digits = name[star + 1 :]
    if not digits or not (digits.isascii() and digits.isdigit()):
        return None
    # Bound the digits before int(): a 5,000-digit index must be a 400, not a ValueError.
    if len(digits) > len(str(max_index)) or int(digits) >= max_index:
        raise MultipartError(
            f"RFC 2231 continuation index of {name[:64]!r} is not below {max_index}"
        )
    if len(digits) > 1 and digits[0] == "0":
        raise MultipartError(f"RFC 2231 continuation index with a leading zero in {name[:64]!r}")
    return name[:star], int(digits)


def _join_continuations(base: str, pieces: dict[int, tuple[str, bool]]) -> tuple[str, bool]:
    """Join ``base*0``, ``base*1``... into one value; True if it was RFC 2231-encoded."""
    if len(pieces) != max(pieces) + 1:
        raise MultipartError(f"RFC 2231 continuations of {base[:64]!r} are not numbered 0, 1, 2...")
    first, first_ext = pieces[0]
    if not first_ext:
        return "".join(pieces[i][0] for i in range(len(pieces))), False
    # The first extended piece carries charset'language'; later ones are only %-encoded
    # (a plain piece is literal text, so it is quoted to be decoded alike).
    charset, _, rest0 = first.partition("'")
    _, _, enc0 = rest0.partition("'")
    rest = (
        raw if ext else urllib.parse.quote(raw)
        for raw, ext in (pieces[i] for i in range(1, len(pieces)))
    )
    return _decode_ext_value(f"{charset}''{enc0}{''.join(rest)}"), True


def parse_header_params(
    value: str, limits: MultipartLimits | None = None
) -> tuple[str, dict[str, str]]:
    """Split ``main; k=v; k2="v 2"`` into ``(main lowercased, {k: v})``, in linear time.

    Parameter names are lowercased. Quoted strings lose their quotes and quoted-pair escapes.
    RFC 2231 forms are decoded: ``k*=utf-8''%E2%82%AC`` and continuations ``k*0=`` / ``k*1*=``;
    the decoded value replaces a plain ``k`` (RFC 6266 section 4.3: ``filename*`` wins).
    A malformed value (unterminated quotes, bad or too many continuations, too many
    parameters) raises ``MultipartError`` (400).
    """
    limits = limits or _DEFAULT_LIMITS
    semi = value.find(";")
    main = value if semi < 0 else value[:semi]
    params: dict[str, str] = {}
    extended: dict[str, str] = {}
    pieces: dict[str, dict[int, tuple[str, bool]]] = {}
    if semi >= 0:
        max_index = limits.max_param_continuations
        for name, raw in scan_header_params(value, semi, limits.max_header_params):
            ext = name.endswith("*")
            bare = name[:-1] if ext else name
            if not bare:
                continue  # a lone "*" names nothing
            cont = _continuation(bare, max_index)
            if cont is not None:
                base, index = cont
                slots = pieces.setdefault(base, {})
                if index in slots:
                    raise MultipartError(f"RFC 2231 continuation {name[:64]!r} repeated")
                slots[index] = (raw, ext)
            elif ext:
                extended[bare] = _decode_ext_value(raw)
            else:
                params.setdefault(name, raw)
    for base, slots in pieces.items():
        joined, encoded = _join_continuations(base, slots)
        if encoded:
            extended[base] = joined
        else:
            params[base] = joined
    params.update(extended)
    return main.strip().lower(), params


_DEFAULT_LIMITS = MultipartLimits()


def parse_content_disposition(
    value: str | None, limits: MultipartLimits | None = None
) -> tuple[str | None, dict[str, str]]:
    """Return ``(disposition type, params)`` of a ``Content-Disposition`` value (RFC 6266).

    Raises ``MultipartError`` (400) when the parameters are malformed."""
    if not value:
        return None, {}
    disptype, params = parse_header_params(value, limits)
    if not disptype or _TOKEN_RE.fullmatch(disptype.encode("latin-1", "replace")) is None:
        return None, {}
    return disptype, params

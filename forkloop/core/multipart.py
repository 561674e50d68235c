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


# -- header parameters (RFC 2045 / RFC 2231 / RFC 5987) ----------------------------------------

_PARAM_RE = re.compile(
    r"""
    \s*;\s*
    (?P<name>[^\s=;"]+)
    \s*(?:=\s*
        (?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<token>[^;]*?))
    )?\s*(?=;|$)
    """,
    re.VERBOSE | re.DOTALL,
)
_QUOTED_PAIR_RE = re.compile(r"\\(.)", re.DOTALL)
_CONTINUATION_RE = re.compile(r"^(?P<base>.+?)\*(?P<idx>\d+)(?P<ext>\*?)$")


def _unquote(value: str) -> str:
    return _QUOTED_PAIR_RE.sub(r"\1", value)


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


def parse_header_params(value: str) -> tuple[str, dict[str, str]]:
    """Split ``main; k=v; k2="v 2"`` into ``(main lowercased, {k: v})``.

    Parameter names are lowercased. Quoted strings lose their quotes and quoted-pair escapes.
    RFC 2231 forms are decoded: ``k*=utf-8''%E2%82%AC`` and continuations ``k*0=`` / ``k*1*=``;
    the decoded value replaces a plain ``k`` (RFC 6266 section 4.3: ``filename*`` wins).
    """
    main, _, rest = value.partition(";")
    params: dict[str, str] = {}
    extended: dict[str, str] = {}
    pieces: dict[str, list[tuple[int, str, bool]]] = {}
    for m in _PARAM_RE.finditer(";" + rest):
        name = m.group("name").lower()
        quoted = m.group("quoted")
        raw = _unquote(quoted) if quoted is not None else (m.group("token") or "").strip()
        cont = _CONTINUATION_RE.match(name)
        if cont is not None:
            pieces.setdefault(cont.group("base"), []).append(
                (int(cont.group("idx")), raw, bool(cont.group("ext")))
            )
        elif name.endswith("*"):
            extended[name[:-1]] = _decode_ext_value(raw)
        else:
            params.setdefault(name, raw)
    for base, parts in pieces.items():
        parts.sort(key=lambda p: p[0])
        if parts[0][2]:
            # The first extended piece carries charset'language'; later ones are only %-encoded.
            charset, _, rest0 = parts[0][1].partition("'")
            _, _, enc0 = rest0.partition("'")
            encoded = enc0 + "".join(p[1] if p[2] else urllib.parse.quote(p[1]) for p in parts[1:])
            extended[base] = _decode_ext_value(f"{charset}''{encoded}")
        else:
            params[base] = "".join(p[1] for p in parts)
    params.update(extended)
    return main.strip().lower(), params


def parse_content_disposition(value: str | None) -> tuple[str | None, dict[str, str]]:
    """Return ``(disposition type, params)`` of a ``Content-Disposition`` value (RFC 6266)."""
    if not value:
        return None, {}
    disptype, params = parse_header_params(value)
    if not disptype or _TOKEN_RE.fullmatch(disptype.encode("latin-1", "replace")) is None:
        return None, {}
    return disptype, params

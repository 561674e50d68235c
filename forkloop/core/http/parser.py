"""Sans-I/O HTTP/1.1 request parser: bytes in, events out, on top of httptools (llhttp).

Owns request framing and the checks llhttp leaves to its user: size limits (request line, header
field, header section, header count), Transfer-Encoding rules, versions we serve, and upgrades.
Imports only ``errors``, ``limits`` and ``_simplehead`` of ours.

Theory of operation: ``feed(data)`` runs llhttp over ``data`` and returns what it completed, in
order: a :class:`RequestHead` per request, ``bytes`` chunks of its body, then :data:`END`. An
upgrade request (``Connection: upgrade`` + ``Upgrade``, or CONNECT) ends HTTP parsing: its head,
its ``Content-Length`` body if any (as aiohttp, RFC 9110 §7.8: the switch happens after the
whole request) and :data:`END` are followed by :class:`Upgrade` carrying every byte after the
request; later feeds are refused. If the server declines the upgrade (answers anything but
101), the connection goes on as HTTP: a fresh parser is fed the bytes held since.
A request whose head is whole in the bytes fed and simple (``_simplehead``: GET-like, HTTP/1.1,
plain fields, one Host, no body or upgrade, within the limits) is taken by the simple-head branch
(``_simple_heads``) without llhttp: the same events, for a third of the cost (compiled builds
only: ``_simplehead.CHEAPER``); anything else is llhttp's, which also refuses what is malformed.
Any violation raises an :class:`~.errors.HttpError` whose ``status`` is the answer;
the parser is then unusable, and the connection must close (RFC 9112 §11.2: after a framing
error the next request's start is unknowable).
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from ._simplehead import CHEAPER as _SIMPLE_BRANCH
from ._simplehead import scan as _scan_simple
from .errors import (
    BadRequest,
    HeadersTooLarge,
    HttpError,
    MethodNotImplemented,
    RequestLineTooLong,
    VersionNotSupported,
)
from .limits import Limits

__all__ = [
    "END",
    "HTTP10",
    "HTTP11",
    "EndOfMessage",
    "Event",
    "HttpVersion",
    "MethodNotImplemented",
    "RequestHead",
    "RequestParser",
    "Upgrade",
]


class HttpVersion(NamedTuple):
    major: int
    minor: int


HTTP10: Final = HttpVersion(1, 0)
HTTP11: Final = HttpVersion(1, 1)
_VERSIONS: Final = {"1.1": HTTP11, "1.0": HTTP10}
_LINE_END_11: Final = b"HTTP/1.1\r\n"
_LINE_END_10: Final = b"HTTP/1.0\r\n"


class RequestHead:
    """A parsed request line and header section.

    ``headers`` (a case-insensitive multidict of decoded values) is built on first access from
    ``raw_headers``: a handler that never looks at a header never pays for the dictionary.
    """

    __slots__ = (
        "_headers",
        "_raw",
        "chunked",
        "content_length",
        "expect",
        "keep_alive",
        "method",
        "target",
        "upgrade",
        "version",
    )

    def __init__(
        self,
        method: str,
        target: str,
        version: HttpVersion,
        headers: CIMultiDictProxy[str] | None,
        raw_headers: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...],
        keep_alive: bool,
        upgrade: bool,
        chunked: bool,
        content_length: int | None,
        expect: str | None,
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self._headers = headers
        self._raw = raw_headers
        self.keep_alive = keep_alive
        self.upgrade = upgrade
        self.chunked = chunked
        self.content_length = content_length
        self.expect = expect

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        headers = self._headers
        if headers is None:
            headers = self._headers = CIMultiDictProxy(
                CIMultiDict(
                    [
                        (name.decode("latin-1"), value.decode("utf-8", "surrogateescape"))
                        for name, value in self._raw
                    ]
                )
            )
        return headers

    @property
    def raw_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        return tuple(self._raw)

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    def __repr__(self) -> str:
        return f"<RequestHead {self.method} {self.target} HTTP/{self.version[0]}.{self.version[1]}>"


class EndOfMessage:
    """The end of one request's body."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


END: Final = EndOfMessage()


class Upgrade:
    """HTTP parsing stopped after an upgrade request; ``data`` is what followed its head."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Upgrade({self.data!r})"


Event = RequestHead | bytes | EndOfMessage | Upgrade

_METHODS: Final[dict[bytes, str]] = {}
# Header names whose values steer framing (host, expect, content-length, transfer-encoding)
# are compared lower-cased, only at their lengths: 4, 6, 14 and 17 (on_header).
# RFC 9110 §7.2 / RFC 3986 §3.2.2: IP-literal or reg-name (incl. IPv4), optional port.
_HOST: Final = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?")


class RequestParser:
    """Parses the requests of one connection. Not reusable after an error or an upgrade."""

    __slots__ = (
        "_began_in_feed",
        "_between",
        "_closed",
        "_connection_named",
        "_content_length",
        "_error",
        "_events",
        "_expect",
        "_fields",
        "_head_fed",
        "_header_bytes",
        "_hosts",
        "_in_head",
        "_in_trailers",
        "_keep_alive",
        "_last_host",
        "_limits",
        "_line",
        "_max_field",
        "_max_fields",
        "_max_header_bytes",
        "_max_line",
        "_parser",
        "_raw",
        "_simple_limits",
        "_slice",
        "_te",
        "_upgrade_body_left",
        "_upgrade_named",
        "_upgraded",
        "_url",
        "heads_begun",
    )

    def __init__(self, limits: Limits | None = None) -> None:
        self._limits = limits = limits if limits is not None else Limits()
        # The per-header limits as plain attributes: read twice per header line.
        self._max_field = limits.max_header_field_bytes
        self._max_header_bytes = limits.max_header_bytes
        self._max_fields = limits.max_header_count
        self._max_line = limits.max_request_line_bytes
        self._parser = httptools.HttpRequestParser(self)
        self._events: list[Event] = []
        self._error: HttpError | None = None
        self._upgraded = False
        self._upgrade_body_left = 0  # body bytes of an upgrade request still to come
        self._closed = False
        self._keep_alive = True
        self._fields = 0
        self._slice = self._limits.max_request_line_bytes + self._limits.max_header_bytes
        self._simple_limits = (
            self._slice,
            self._max_line,
            self._max_field,
            self._max_header_bytes,
            self._max_fields,
        )
        self.heads_begun = 0
        self._in_head = False
        self._began_in_feed = False
        self._head_fed = 0
        self._in_trailers = False
        self._url = b""
        self._raw: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0
        self._content_length: int | None = None
        self._te: str | None = None
        self._expect: str | None = None
        self._upgrade_named = False  # an Upgrade header came: llhttp may see an upgrade
        self._connection_named = False  # a (Proxy-)Connection header came: ask llhttp
        self._hosts = 0
        self._between = True  # no request in progress: the next byte fed begins one
        self._line: bytes | None = None  # the bytes the current request began at the start of
        self._last_host = b""  # the latest Host value that passed the syntax check

    @property
    def in_request(self) -> bool:
        """True between a request's first byte and its complete head (for the header timer)."""
        return self._in_head

    @property
    def error(self) -> HttpError | None:
        """The error that stopped parsing, once one has."""
        return self._error

    def feed(self, data: bytes) -> list[Event]:
        """Parse ``data``; return the events it completed.

        Bad input raises an HttpError, but not at the expense of what came before it: when
        requests completed earlier in the same ``data``, their events are returned (the broken
        request's partial events are dropped) and the error is raised by the next call; it is
        visible at once as :attr:`error`, so a server answers those requests first, in order.
        After a request that ends the connection (``Connection: close``, HTTP/1.0 without
        keep-alive) later bytes are ignored.
        """
        if self._upgraded:
            if self._upgrade_body_left:
                self._events = []
                return self._upgrade_body(data)
            raise RuntimeError("the connection was upgraded; HTTP parsing has ended")
        if self._error is not None:
            raise self._error
        events: list[Event] = []
        self._events = events
        if self._closed:
            return events
        if self._between and _SIMPLE_BRANCH:
            # Whole simple heads at the start of the bytes take the simple-head branch; what
            # follows the last of them (anything it does not take) goes to llhttp. Where the
            # scan's C twin is not built, the branch is off (it would cost more than llhttp).
            data = self._simple_heads(data)
            if not data or self._closed:
                return events
        self._feed_llhttp(data)
        error = self.error
        if error is not None:
            # Keep what complete requests came before the error; the broken request's own
            # partial events go. With none complete, the error is raised now.
            last_end = -1
            for index, event in enumerate(events):
                if event is END:
                    last_end = index
            if last_end < 0:
                raise error
            del events[last_end + 1 :]
        return events

    def _feed_llhttp(self, data: bytes) -> None:
        # Large reads go in slices, so the partial-head bound is exact to a slice.
        step = self._slice
        if len(data) <= step:
            self._feed_slice(data, 0)
        else:
            view = memoryview(data)
            for offset in range(0, len(data), step):
                self._feed_slice(view[offset : offset + step], offset, data)
                if self._stopped():
                    break

    def _simple_heads(self, data: bytes) -> bytes:
        """The simple-head branch: take the simple heads at the start of ``data`` without
        llhttp; return the bytes after them (``data`` itself when it took none).

        A simple head (``_simplehead.scan``: GET-like, HTTP/1.1, plain fields, one Host, no
        body or upgrade, every limit kept) gives the events llhttp's callbacks would: its
        ``RequestHead`` and ``END``. Only at a request's start (``_between``), so llhttp is
        between messages too; anything the scan does not take, or a Host this parser would
        refuse, stops the branch there and llhttp parses the rest as before.
        """
        taken = 0
        size = len(data)
        events = self._events
        while taken < size:
            found = _scan_simple(data, taken, self._simple_limits)
            if found is None:
                break
            end, method, target, fields, host, keep_alive = found
            if not self._host_ok(host):
                break  # llhttp's path refuses it, with its message
            self.heads_begun += 1
            self._keep_alive = keep_alive
            events.append(
                RequestHead(
                    method, target, HTTP11, None, fields, keep_alive, False, False, None, None
                )
            )
            events.append(END)
            taken = end
            if not keep_alive:
                self._closed = True  # the connection ends with this request
                break
        return data[taken:] if taken else data

    def _upgrade_body(self, data: bytes) -> list[Event]:
        """Count off the body of an upgrade request: httptools hands over at the end of its
        head (its ``on_headers_complete`` asks llhttp to skip the body), so the
        ``Content-Length`` bytes are taken here; the bytes after them are the upgraded
        protocol's (:class:`Upgrade`)."""
        left = self._upgrade_body_left
        events = self._events
        body, rest = data[:left], data[left:]
        if body:
            events.append(body)
        self._upgrade_body_left = left = left - len(body)
        if left == 0:
            events.append(END)
            events.append(Upgrade(rest))
        return events

    def _stopped(self) -> bool:
        return self._upgraded or self._closed or self._error is not None

    def _feed_slice(self, piece: bytes | memoryview, base: int, whole: bytes | None = None) -> None:
        self._began_in_feed = False
        # A request beginning at the start of these bytes has its request line there:
        # on_headers_complete reads the version from it (see _line_version).
        self._line = piece if self._between and type(piece) is bytes else None
        try:
            self._parser.feed_data(piece)
        except httptools.HttpParserUpgrade as exc:
            self._upgraded = True
            rest = bytes((whole if whole is not None else piece)[base + exc.args[0] :])
            if self._upgrade_body_left:
                self._upgrade_body(rest)
            else:
                self._events.append(Upgrade(rest))
            return
        except httptools.HttpParserCallbackError:
            if self._error is None:
                self._error = BadRequest("invalid request")
            return
        except httptools.HttpParserInvalidMethodError:
            # 400 as aiohttp answers (its llhttp parser knows the same methods), not 501: a
            # method llhttp does not know is as often a malformed request line (GET1, a TLS
            # ClientHello) as a method unknown to the server.
            self._error = BadRequest("invalid request method")
            return
        except httptools.HttpParserError as exc:
            if self._closed:
                return  # bytes after a closing request: ignored, not an error
            self._error = BadRequest(str(exc) or "malformed request")
            return
        if self._in_head:
            self._check_partial_head(len(piece))

    def _check_partial_head(self, fed: int) -> None:
        # llhttp buffers a header line until it is complete, so limits checked per line cannot
        # see one that never ends. Count the bytes fed since the head began; the slice in which
        # it began is left out (its share is unknown), which bounds memory by one slice.
        if self._began_in_feed:
            return
        self._head_fed += fed
        if self._head_fed > self._slice:
            self._error = HeadersTooLarge("request header section too large")

    def _fail(self, error: HttpError) -> None:
        self._error = error
        raise error

    # -- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        if not self._between:
            self._line = None  # a request begun further into the fed bytes
        self._between = False
        self.heads_begun += 1
        self._in_head = True
        self._began_in_feed = True
        self._head_fed = 0
        self._in_trailers = False
        self._url = b""
        self._raw = []
        self._hosts = 0
        self._fields = 0
        self._header_bytes = 0
        self._content_length = None
        self._te = None
        self._expect = None
        self._upgrade_named = False
        self._connection_named = False

    def _line_version(self, method_length: int) -> HttpVersion | None:
        """The version from the request line, when the request began at the start of the bytes
        fed (``_line``) and its line is there whole; else None (ask llhttp, whose
        ``get_http_version`` formats a string per call). llhttp has validated the line,
        ``method SP target SP HTTP/x.y CRLF``, so the ten bytes after the target's space end
        with CRLF only where that space really is (a request line holds no CR or LF)."""
        line = self._line
        if line is None:
            return None
        at = method_length + len(self._url) + 2
        # Compared, not looked up in a dict: hashing a fresh slice costs more than two compares.
        ending = line[at : at + 10]
        if ending == _LINE_END_11:
            return HTTP11
        return HTTP10 if ending == _LINE_END_10 else None

    def _line_is_get(self) -> bool:
        """Whether the request line in ``_line`` (whole there, see ``_line_version``, and
        validated by llhttp) is a GET: read from the bytes rather than asked of llhttp, whose
        ``get_method`` is a method call that makes fresh bytes. False when unknown."""
        line = self._line
        return (
            line is not None
            and len(line) > 4
            and line[0] == 71  # G
            and line[1] == 69  # E
            and line[2] == 84  # T
            and line[3] == 32  # SP
        )

    def on_url(self, url: bytes) -> None:
        self._url = self._url + url if self._url else url
        if len(self._url) > self._max_line:
            self._fail(RequestLineTooLong("request line too long"))

    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value) + 2
        if size > self._max_field:
            self._fail(HeadersTooLarge("request header field too large"))
        self._header_bytes += size
        if self._header_bytes > self._max_header_bytes:
            self._fail(HeadersTooLarge("request header section too large"))
        self._fields += 1
        if self._fields > self._max_fields:
            self._fail(HeadersTooLarge("too many request header fields"))
        # Bytes compared as ints, lengths as ints: `in` on a bytes or a set boxes the int first.
        if value and (value[-1] == 32 or value[-1] == 9):  # SP, HTAB
            value = value.rstrip(b" \t")  # llhttp keeps trailing OWS (RFC 9110 §5.5 drops it)
        if self._in_trailers:
            return  # trailer fields are counted against the limits, then dropped
        self._raw.append((name, value))
        # The special names, told apart by length and first letter (as ints: cheap) before
        # lower() (a method call making fresh bytes), which most other names never reach.
        length = len(name)
        initial = name[0] | 0x20 if length else 0  # ASCII lower case
        if (
            (length == 4 and initial == 0x68)  # host
            or (length == 6 and initial == 0x65)  # expect
            or (length == 7 and initial == 0x75)  # upgrade
            or (length == 10 and initial == 0x63)  # connection
            or (length == 14 and initial == 0x63)  # content-length
            or (length == 16 and initial == 0x70)  # proxy-connection
            or (length == 17 and initial == 0x74)  # transfer-encoding
        ):
            # Host as clients spell it by a compare.
            self._special_header(b"host" if name == b"Host" else name.lower(), value)

    def _special_header(self, lname: bytes, value: bytes) -> None:
        """Note a header whose value steers framing or checks (``lname`` lower-cased)."""
        if lname == b"content-length":
            self._content_length = int(value)  # llhttp accepted only digits, only once
        elif lname == b"transfer-encoding":
            text = value.decode("latin-1")
            self._te = text if self._te is None else f"{self._te}, {text}"
        elif lname == b"expect":
            self._expect = value.decode("latin-1")
        elif lname == b"upgrade":
            self._upgrade_named = True
        elif lname == b"connection" or lname == b"proxy-connection":
            self._connection_named = True
        elif lname == b"host":
            self._hosts += 1
            if not self._host_ok(value):
                self._fail(BadRequest(f"invalid Host header: {value!r}"))

    def _host_ok(self, value: bytes) -> bool:
        """Whether a Host value is valid syntax (RFC 9110 §7.2); the one check of both paths.
        A keep-alive client sends the same value again: the latest valid one is remembered."""
        if value == self._last_host:
            return True
        if _HOST.fullmatch(value) is None:
            return False
        self._last_host = value
        return True

    def on_headers_complete(self) -> None:
        parser = self._parser
        raw_method = b"GET" if self._line_is_get() else parser.get_method()
        version = self._line_version(len(raw_method))
        if version is None:
            version = _VERSIONS.get(parser.get_http_version())
        if version is None:
            self._fail(VersionNotSupported("only HTTP/1.0 and HTTP/1.1 are served"))
        # RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one in 1.0.
        if self._hosts > 1:
            self._fail(BadRequest("more than one Host header"))
        if self._hosts == 0 and version is HTTP11:
            self._fail(BadRequest("an HTTP/1.1 request must have a Host header"))
        chunked = False
        if self._te is not None:
            # llhttp refuses Content-Length with Transfer-Encoding and a coding after chunked; we
            # also refuse any coding besides a lone chunked (we decode no other) and TE on 1.0,
            # whose framing RFC 9112 §6.1 calls faulty.
            if version is HTTP10:
                self._fail(BadRequest("Transfer-Encoding is not allowed in HTTP/1.0"))
            if self._te.strip().lower() != "chunked":
                self._fail(BadRequest(f"unsupported Transfer-Encoding: {self._te!r}"))
            chunked = True
        # llhttp's upgrade flag (read from the parser, a method call) needs an Upgrade header
        # (with Connection: upgrade) or CONNECT (llhttp's http.c, before on_headers_complete).
        upgrade = (
            parser.should_upgrade() if self._upgrade_named or raw_method == b"CONNECT" else False
        )
        if upgrade and chunked:
            # httptools stops at the head of an upgrade request, so a chunked body would have
            # to be decoded here; no client sends one: refused, as framing is then unsure.
            self._fail(BadRequest("an upgrade request must not carry a chunked body"))
        if upgrade and self._content_length:
            self._upgrade_body_left = self._content_length
        # GET by a compare; other methods from a dict (hashing the fresh bytes costs more).
        method = "GET" if raw_method == b"GET" else _METHODS.get(raw_method)
        if method is None:
            method = raw_method.decode("ascii")
            if len(_METHODS) < 64:
                _METHODS[raw_method] = method
        # llhttp keeps an HTTP/1.1 request's connection open unless a Connection (or
        # Proxy-Connection) header says close (llhttp_should_keep_alive; a request never
        # needs the connection's end to delimit it): without such a header, no need to ask.
        self._keep_alive = keep_alive = (
            True if version is HTTP11 and not self._connection_named else parser.should_keep_alive()
        )
        head = RequestHead(
            method,
            self._url.decode("utf-8", "surrogateescape"),
            version,  # type: ignore[arg-type]  # None was refused above
            None,
            self._raw,
            keep_alive,
            upgrade,
            chunked,
            self._content_length,
            self._expect,
        )
        self._in_head = False
        self._in_trailers = True
        self._events.append(head)

    def on_body(self, body: bytes) -> None:
        self._events.append(body)

    def on_message_complete(self) -> None:
        self._between = True
        self._line = None
        self._in_trailers = False
        if not self._upgrade_body_left:
            self._events.append(END)  # else after the body (see _upgrade_body)
        if not self._keep_alive:
            self._closed = True  # the connection ends with this request

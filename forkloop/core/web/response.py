"""Responses with aiohttp.web's API: ``StreamResponse``, ``Response``, ``json_response``.

Owns a response's status, headers, cookies and body, and the rules that turn them into a head:
framing (Content-Length, chunked, or close-delimited for HTTP/1.0), no body for HEAD, 1xx, 204
and 304 (RFC 9110 §6.4.1), keep-alive, compression by ``Accept-Encoding``. Writing the bytes
belongs to ``writer.PayloadWriter``; the JSON text of ``json_response`` to ``jsontext``. Imports
``core.http``, ``core.web.helpers``, ``core.web.jsontext`` and ``core.web.writer``.

Headers are built lazily: a plain ``Response(text=...)`` never creates a header dictionary
unless its ``headers`` are asked for; the content type lives in two attributes until then.
"""

from __future__ import annotations

import calendar
import datetime
import enum
import inspect
import json
import math
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from email.utils import formatdate
from http.cookies import Morsel, SimpleCookie
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from multidict import CIMultiDict, istr

from ..http.serialize import plain_message, reason_phrase, response_head, status_line
from ._construct import install as _install_constructor
from .deprecations import warn_plain_response_key
from .helpers import ETag, is_etagc, parse_content_type, parse_http_date
from .jsontext import dumps as json_text
from .request import NOT_SENT, SENT_KEEP_ALIVE
from .writer import PayloadWriter

if TYPE_CHECKING:
    from .payload import Payload
    from .request import BaseRequest

    _MappingBase: TypeAlias = MutableMapping[str, Any]
else:
    # A response is a MutableMapping as in aiohttp, registered rather than inherited (its
    # mixin methods are copied in below): inheriting would make ABCMeta its metaclass, and
    # only a class whose metaclass is `type` can have the C constructor (_construct.c).
    _MappingBase = object

__all__ = [
    "ContentCoding",
    "Response",
    "StreamResponse",
    "json_bytes_response",
    "json_response",
]

CONTENT_TYPE: Final = istr("Content-Type")
CONTENT_LENGTH: Final = istr("Content-Length")
CONTENT_ENCODING: Final = istr("Content-Encoding")
TRANSFER_ENCODING: Final = istr("Transfer-Encoding")
DATE: Final = istr("Date")
SERVER: Final = istr("Server")
_OCTET: Final = "application/octet-stream"
_FRAMING: Final = frozenset(("content-length", "transfer-encoding"))
_SERVER: Final = "forkloop"

LooseHeaders = Mapping[str, str] | Mapping[istr, str] | CIMultiDict[str] | None


class ContentCoding(enum.Enum):
    """Codings ``enable_compression`` can apply, in order of preference."""

    deflate = "deflate"
    gzip = "gzip"
    identity = "identity"


_CTYPE_LINES: dict[tuple[str | None, str | None], bytes] = {}
_NO_POSITIONAL: Final[Any] = object()  # Response.__init__'s guard against positional arguments
_PLAIN_STATUSES: Final = {code: reason_phrase(code) for code in (200, 201, 202, 400, 403, 404, 500)}


def _ctype_line(ctype: str | None, charset: str | None) -> bytes:
    """``Content-Type: ...\r\n`` for a type and charset, cached (bounded)."""
    key = (ctype, charset)
    line = _CTYPE_LINES.get(key)
    if line is None:
        if ctype is None:
            value = _OCTET
        else:
            value = f"{ctype}; charset={charset}" if charset else ctype
            if "\r" in value or "\n" in value:
                raise ValueError(f"newline in a Content-Type: {value!r}")
        line = f"Content-Type: {value}\r\n".encode("latin-1")
        if len(_CTYPE_LINES) < 256:
            _CTYPE_LINES[key] = line
    return line


def _body_forbidden(method: str, status: int) -> bool:
    return method == "HEAD" or status < 200 or status in (204, 304)


class StreamResponse(_MappingBase):
    """A response whose body is written piece by piece after ``prepare()``."""

    _length_check = True

    # Every instance starts from these class-level values; an instance stores only what
    # differs, except Response(text=...)'s shortcut, which stores the few that
    # send_in_one_write() reads (an own attribute is read faster than a class default).
    _headers: CIMultiDict[str] | None = None
    _ctype: str | None = None
    _charset_value: str | None = None
    _cookies: SimpleCookie | None = None
    _keep_alive: bool | None = None
    _chunked = False
    _compression = False
    _compression_force: ContentCoding | None = None
    _compression_strategy: int | None = None
    _req: BaseRequest | None = None
    _payload_writer: PayloadWriter | None = None
    _eof_sent = False
    _must_be_empty_body = False
    _body_length = 0
    _state: dict[str, Any] | None = None
    _custom_reason: str | None = None

    def __init__(
        self,
        *,
        status: int = 200,
        reason: str | None = None,
        headers: LooseHeaders = None,
    ) -> None:
        if headers:
            self._headers = CIMultiDict(headers)
        self.set_status(status, reason)

    # -- status -------------------------------------------------------------------------

    @property
    def prepared(self) -> bool:
        return self._eof_sent or self._payload_writer is not None

    @property
    def task(self) -> Any:
        return self._req.task if self._req is not None else None

    @property
    def status(self) -> int:
        return self._status

    @property
    def reason(self) -> str:
        return self._reason

    def set_status(self, status: int, reason: str | None = None) -> None:
        if self.prepared:
            raise RuntimeError(
                "Cannot change the response status code after the headers have been sent"
            )
        status = int(status)
        if not 100 <= status <= 999:
            raise ValueError(f"invalid HTTP status code {status}")
        if reason is not None and ("\r" in reason or "\n" in reason):
            raise ValueError("reason cannot contain \\r or \\n")
        self._status = status
        self._custom_reason = reason
        self._reason = reason if reason is not None else reason_phrase(status)

    # -- connection and framing -----------------------------------------------------------

    @property
    def keep_alive(self) -> bool | None:
        return self._keep_alive

    def force_close(self) -> None:
        self._keep_alive = False

    @property
    def body_length(self) -> int:
        """The bytes written for this response once it is complete, head included, as
        aiohttp counts them (what the access log's ``%b`` shows); 0 before."""
        if not self._eof_sent:
            return 0
        writer = self._payload_writer
        if writer is not None:
            return writer.output_size
        return _one_write_size(self)

    @property
    def chunked(self) -> bool:
        return self._chunked

    @property
    def compression(self) -> bool:
        return self._compression

    def enable_chunked_encoding(self, chunk_size: int | None = None) -> None:
        self._chunked = True
        if self._headers is not None and CONTENT_LENGTH in self._headers:
            raise RuntimeError("You can't enable chunked encoding when a content length is set")

    def enable_compression(
        self, force: ContentCoding | bool | None = None, strategy: int | None = None
    ) -> None:
        if isinstance(force, bool):  # aiohttp 2.x spelling
            force = ContentCoding.deflate if force else ContentCoding.identity
        self._compression = True
        self._compression_force = force
        self._compression_strategy = strategy

    # -- headers ------------------------------------------------------------------------

    @property
    def headers(self) -> CIMultiDict[str]:
        headers = self._headers
        if headers is None:
            headers = self._headers = CIMultiDict()
        if self._ctype is not None:
            headers[CONTENT_TYPE] = self._render_ctype(self._ctype, self._charset_value)
            self._ctype = self._charset_value = None
        return headers

    @staticmethod
    def _render_ctype(ctype: str, charset: str | None) -> str:
        return f"{ctype}; charset={charset}" if charset else ctype

    def _ctype_parts(self) -> tuple[str | None, str | None]:
        """The media type and charset as set (unparsed), or ``(None, None)`` when none is."""
        if self._ctype is not None:
            return self._ctype, self._charset_value
        if self._headers is None:
            return None, None
        raw = self._headers.get(CONTENT_TYPE)
        if raw is None:
            return None, None
        ctype, params = parse_content_type(raw)
        return ctype, params.get("charset")

    def _parsed_ctype(self) -> tuple[str, dict[str, str]]:
        """The ``Content-Type`` that will be sent, read as aiohttp reads it: the media type
        without parameters, lower-cased, ``application/octet-stream`` when absent or not one
        ``type/subtype`` (as ``email``'s parser, which aiohttp uses, decides), and the
        parameters."""
        ctype = self._ctype
        if ctype is not None and ";" not in ctype:  # as set by Response(...): no parsing
            main = ctype.strip().lower()
            charset = self._charset_value
            return (main if main.count("/") == 1 else _OCTET), (
                {"charset": charset} if charset else {}
            )
        if ctype is not None:
            raw: str | None = self._render_ctype(ctype, self._charset_value)
        elif self._headers is not None:
            raw = self._headers.get(CONTENT_TYPE)
        else:
            raw = None
        if raw is None:
            return _OCTET, {}
        ctype, params = parse_content_type(raw)
        return (ctype if ctype.count("/") == 1 else _OCTET), params

    def _set_ctype_params(self, ctype: str, params: dict[str, str]) -> None:
        # The charset alone stays in its own attribute (the form the send path caches);
        # other parameters are kept, in order, as aiohttp keeps them.
        if params.keys() <= {"charset"}:
            self._set_ctype(ctype, params.get("charset"))
        else:
            self._set_ctype("; ".join([ctype, *(f"{k}={v}" for k, v in params.items())]), None)

    @property
    def content_type(self) -> str:
        return self._parsed_ctype()[0]

    @content_type.setter
    def content_type(self, value: str) -> None:
        # aiohttp: the new value as given, followed by the parameters already set.
        self._set_ctype_params(str(value), self._parsed_ctype()[1])

    @property
    def charset(self) -> str | None:
        return self._parsed_ctype()[1].get("charset")

    @charset.setter
    def charset(self, value: str | None) -> None:
        ctype, params = self._parsed_ctype()
        if ctype == _OCTET:
            raise RuntimeError(
                "Setting charset for application/octet-stream doesn't make sense, "
                "setup content_type first"
            )
        if value is None:
            params.pop("charset", None)
        else:
            params["charset"] = str(value).lower()
        self._set_ctype_params(ctype, params)

    def _set_ctype(self, ctype: str, charset: str | None) -> None:
        if self._headers is None:
            self._ctype, self._charset_value = ctype, charset
        else:
            self._ctype = self._charset_value = None
            self._headers[CONTENT_TYPE] = self._render_ctype(ctype, charset)

    @property
    def content_length(self) -> int | None:
        if self._headers is not None and CONTENT_LENGTH in self._headers:
            return int(self._headers[CONTENT_LENGTH])
        return None

    @content_length.setter
    def content_length(self, value: int | None) -> None:
        if value is not None:
            value = int(value)
            if self._chunked:
                raise RuntimeError("You can't set content length when chunked encoding is enable")
            self.headers[CONTENT_LENGTH] = str(value)
        elif self._headers is not None:
            self._headers.pop(CONTENT_LENGTH, None)

    @property
    def last_modified(self) -> datetime.datetime | None:
        if self._headers is None:
            return None
        return parse_http_date(self._headers.get("Last-Modified"))

    @last_modified.setter
    def last_modified(self, value: int | float | datetime.datetime | str | None) -> None:
        if value is None:
            if self._headers is not None:
                self._headers.pop("Last-Modified", None)
        elif isinstance(value, int | float):
            self.headers["Last-Modified"] = formatdate(math.ceil(value), usegmt=True)
        elif isinstance(value, datetime.datetime):
            # As aiohttp: a fraction of a second rounds up (the resource is not older than
            # the date sent), and a naive datetime is UTC.
            stamp = calendar.timegm(value.utctimetuple()) + (1 if value.microsecond else 0)
            self.headers["Last-Modified"] = formatdate(stamp, usegmt=True)
        elif isinstance(value, str):
            self.headers["Last-Modified"] = value
        else:
            raise TypeError(f"Unsupported type for last_modified: {type(value).__name__}")

    @property
    def etag(self) -> ETag | None:
        if self._headers is None:
            return None
        raw = self._headers.get("ETag")
        if not raw:
            return None
        if raw == "*":
            return ETag("*")
        weak = raw.startswith("W/")
        value = raw[2:] if weak else raw
        if len(value) >= 2 and value[0] == value[-1] == '"' and is_etagc(value[1:-1]):
            return ETag(value[1:-1], weak)
        return None  # not an entity-tag (RFC 9110 section 8.8.3), as aiohttp reads it

    @etag.setter
    def etag(self, value: ETag | str | None) -> None:
        if value is None:
            if self._headers is not None:
                self._headers.pop("ETag", None)
            return
        if isinstance(value, str):
            value = ETag(value)
        elif not isinstance(value, tuple) or not isinstance(getattr(value, "value", None), str):
            raise ValueError(
                f"Unsupported etag type: {type(value)}. etag must be str, ETag or None"
            )
        if value.value == "*":
            self.headers["ETag"] = "*"
            return
        if not is_etagc(value.value):
            raise ValueError(f"Value {value.value!r} is not a valid etag. Maybe it contains '\"'?")
        self.headers["ETag"] = ("W/" if value.is_weak else "") + f'"{value.value}"'

    # -- cookies ------------------------------------------------------------------------

    @property
    def cookies(self) -> SimpleCookie:
        if self._cookies is None:
            self._cookies = SimpleCookie()
        return self._cookies

    def set_cookie(
        self,
        name: str,
        value: str,
        *,
        expires: str | None = None,
        domain: str | None = None,
        max_age: int | str | None = None,
        path: str = "/",
        secure: bool | None = None,
        httponly: bool | None = None,
        version: str | None = None,
        samesite: str | None = None,
        partitioned: bool | None = None,
    ) -> None:
        cookies = self.cookies
        old = cookies.get(name)
        if old is not None and old.coded_value == "":
            cookies.pop(name, None)  # a deleted cookie set again
        cookies[name] = value
        morsel: Morsel[str] = cookies[name]
        if expires is not None:
            morsel["expires"] = expires
        elif morsel.get("expires") == "Thu, 01 Jan 1970 00:00:00 GMT":
            del morsel["expires"]
        if domain is not None:
            morsel["domain"] = domain
        if max_age is not None:
            morsel["max-age"] = str(max_age)
        elif "max-age" in morsel:
            del morsel["max-age"]
        morsel["path"] = path
        if secure is not None:
            morsel["secure"] = secure
        if httponly is not None:
            morsel["httponly"] = httponly
        if version is not None:
            morsel["version"] = version
        if samesite is not None:
            morsel["samesite"] = samesite
        if partitioned:
            morsel["partitioned"] = True

    def del_cookie(
        self,
        name: str,
        *,
        domain: str | None = None,
        path: str = "/",
        secure: bool | None = None,
        httponly: bool | None = None,
        samesite: str | None = None,
    ) -> None:
        self.cookies.pop(name, None)
        self.set_cookie(
            name,
            "",
            max_age=0,
            expires="Thu, 01 Jan 1970 00:00:00 GMT",
            domain=domain,
            path=path,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
        )

    # -- dict storage ---------------------------------------------------------------------

    def _storage(self) -> dict[str, Any]:
        if self._state is None:
            self._state = {}
        return self._state

    def __getitem__(self, key: str) -> Any:
        return self._storage()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        warn_plain_response_key(key)  # aiohttp's NotAppKeyWarning, once per plain key
        self._storage()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._storage()[key]

    def __len__(self) -> int:
        return len(self._state) if self._state else 0

    def __iter__(self) -> Iterator[str]:
        return iter(self._state or ())

    def __hash__(self) -> int:
        return hash(id(self))

    def __eq__(self, other: object) -> bool:
        return self is other

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        if self._eof_sent:
            info = "eof"
        elif self.prepared and self._req is not None:
            info = f"{self._req.method} {self._req.path} "
        else:
            info = "not prepared"
        return f"<{type(self).__name__} {self.reason} {info}>"

    # -- sending ------------------------------------------------------------------------

    async def prepare(self, request: BaseRequest) -> PayloadWriter | None:
        if self._eof_sent:
            return None
        if self._payload_writer is not None:
            return self._payload_writer
        self._must_be_empty_body = _body_forbidden(request.method, self._status)
        return await self._start(request)

    async def _start(self, request: BaseRequest) -> PayloadWriter:
        self._req = request
        await request._prepare_hook(self)
        writer = self._payload_writer = self._make_writer(request, None)
        return writer

    def _choose_coding(self, request: BaseRequest) -> ContentCoding | None:
        if self._compression_force is not None:
            return (
                None
                if self._compression_force is ContentCoding.identity
                else self._compression_force
            )
        accept = request.headers.get("Accept-Encoding", "").lower()
        for coding in (ContentCoding.deflate, ContentCoding.gzip):
            if coding.value in accept:
                return coding
        return None

    def _make_writer(  # noqa: C901 - one decision table for framing; split it and it hides
        self, request: BaseRequest, body_length: int | None
    ) -> PayloadWriter:
        """Fix framing and keep-alive, render the head, and create the body writer."""
        protocol = request.protocol
        version = request.version
        coding = self._choose_coding(request) if self._compression else None
        keep_alive = self._keep_alive
        if keep_alive is None:
            keep_alive = request.keep_alive
        elif keep_alive and not protocol.keep_alive:
            keep_alive = False
        lines: list[tuple[str, str]] = []
        body_length = self._content_lines(lines, body_length, coding)
        chunked = False
        if self._status < 200 or self._status in (204, 304):
            pass  # no body framing at all (RFC 9110 §8.6, RFC 9112 §6.3)
        elif self._chunked or (body_length is None and not self._must_be_empty_body):
            if version >= (1, 1):
                chunked = True
                lines.append(("Transfer-Encoding", "chunked"))
            elif self._chunked:
                raise RuntimeError(
                    f"Using chunked encoding is forbidden for HTTP/{version[0]}.{version[1]}"
                )
            else:
                keep_alive = False  # an HTTP/1.0 body is delimited by the close
        elif body_length is not None:
            lines.append(("Content-Length", str(body_length)))
        if self._cookies:
            lines.extend(("Set-Cookie", morsel.OutputString()) for morsel in self._cookies.values())
        # Ours are defaults: a Date or Server the application set (any case) wins.
        headers = self._headers
        if headers is None or DATE not in headers:
            lines.append(("Date", request._date_value()))
        if headers is None or SERVER not in headers:
            lines.append(("Server", _SERVER))
        if self._status == 101:
            pass  # switching protocols: the connection belongs to the new protocol now
        elif not keep_alive:
            lines.append(("Connection", "close"))
            protocol.force_close()
        elif version < (1, 1):
            lines.append(("Connection", "keep-alive"))
        self._keep_alive = keep_alive
        self._chunked = chunked
        head = response_head(status_line(version, self._status, self._custom_reason), lines)
        writer = PayloadWriter(
            protocol, head, chunked=chunked, no_body=self._must_be_empty_body, length=body_length
        )
        if coding is not None and not self._must_be_empty_body:
            writer.enable_compression(coding.value, self._compression_strategy)
        return writer

    def _content_lines(
        self, lines: list[tuple[str, str]], body_length: int | None, coding: ContentCoding | None
    ) -> int | None:
        """Add the user's headers and the content headers; return the body length if known."""
        status = self._status
        headers = self._headers
        has_content = status >= 200 and status not in (204, 304)
        if headers:
            lines.extend((k, v) for k, v in headers.items() if k.lower() not in _FRAMING)
            declared = headers.get(CONTENT_LENGTH)
            if declared is not None and body_length is None and not self._chunked:
                body_length = int(declared)
            if CONTENT_TYPE not in headers and has_content:
                lines.append(("Content-Type", _OCTET))
        elif has_content and not (self._ctype is None and self._bodyless()):
            ctype = self._ctype
            rendered = self._render_ctype(ctype, self._charset_value) if ctype else _OCTET
            lines.append(("Content-Type", rendered))
        if coding is not None:
            lines.append(("Content-Encoding", coding.value))
            lines.append(("Vary", "Accept-Encoding"))
            body_length = None  # a streamed, compressed body's length is not known up front
        return body_length

    def _bodyless(self) -> bool:
        """A response that has no body at all gets no default Content-Type (as aiohttp)."""
        return False

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data argument must be byte-ish ({type(data)!r})")
        if self._eof_sent:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._payload_writer is None:
            raise RuntimeError("Cannot call write() before prepare()")
        await self._payload_writer.write(data)

    async def drain(self) -> None:
        if self._eof_sent:
            raise RuntimeError("Cannot call drain() after write_eof()")
        if self._payload_writer is None:
            raise RuntimeError("Response has not been started")
        warnings.warn(
            "drain method is deprecated, use await resp.write()", DeprecationWarning, stacklevel=2
        )
        await self._payload_writer.drain()

    async def write_eof(self, data: bytes = b"") -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data argument must be byte-ish ({type(data)!r})")
        if self._eof_sent:
            return
        if self._payload_writer is None:
            raise RuntimeError("Response has not been started")
        await self._payload_writer.write_eof(bytes(data))
        self._eof_sent = True
        self._body_length = self._payload_writer.buffer_size


class Response(StreamResponse):
    """A response whose whole body is known before it is sent."""

    _body: bytes | None = None
    # A body that is not bytes (a file, an async iterable, ...: core/web/payload.py); then
    # _body is None. Setting one also creates the header dictionary, which alone keeps the
    # response off the one-write path (send_in_one_write).
    _payload: Payload | None = None
    _compressed_body: bytes | None = None

    def __init__(
        self,
        _no_positional: Any = _NO_POSITIONAL,
        /,
        body: Any = None,
        status: int = 200,
        reason: str | None = None,
        text: str | None = None,
        headers: LooseHeaders = None,
        content_type: str | None = None,
        charset: str | None = None,
        zlib_executor_size: int | None = None,
        zlib_executor: Any = None,
    ) -> None:
        # aiohttp's arguments are keyword-only; they are declared positional-or-keyword behind
        # a positional-only guard because CPython 3.11 fills each missing keyword-only argument
        # with a dict lookup (a tenth of Response(text=...)'s cost), a positional default from
        # a tuple. Any positional argument lands in the guard and is refused, as in aiohttp.
        if _no_positional is not _NO_POSITIONAL:
            raise TypeError("Response() takes keyword arguments only")
        if body is not None and text is not None:
            raise ValueError("body and text are not allowed together")
        if (
            headers is None
            and reason is None
            and charset is None
            and type(text) is str
            and status in _PLAIN_STATUSES
            and (content_type is None or ";" not in content_type)
        ):
            # Response(text=...) and json_response(): the common case, without the general
            # checks below (no headers to reconcile, no charset in the content type). It also
            # stores, as set, the defaults send_in_one_write() reads: CPython 3.11 reads an
            # instance's own attribute from its inline cache, a class-level default through
            # the generic lookup (about 200 instructions each).
            self._status = status
            self._reason = _PLAIN_STATUSES[status]
            self._body = text.encode()
            self._ctype = content_type or "text/plain"
            self._charset_value = "utf-8"
            self._payload_writer = None
            self._eof_sent = False
            self._headers = None
            self._cookies = None
            self._compression = False
            self._chunked = False
            self._custom_reason = None
            self._keep_alive = None
            return
        super().__init__(status=status, reason=reason, headers=headers)
        if content_type is not None and "charset" in content_type:
            raise ValueError("charset must not be in content_type argument")
        has_ctype_header = self._headers is not None and CONTENT_TYPE in self._headers
        if has_ctype_header and (content_type is not None or charset is not None):
            raise ValueError(
                "passing both Content-Type header and content_type or charset params is forbidden"
            )
        if text is not None:
            if not isinstance(text, str):
                raise TypeError(f"text argument must be str ({type(text)!r})")
            if not has_ctype_header:
                self._set_ctype(content_type or "text/plain", charset or "utf-8")
                self._body = text.encode(charset or "utf-8")
            else:
                self._body = text.encode(self.charset or "utf-8")
        else:
            if content_type is not None or charset is not None:
                self._set_ctype(content_type or _OCTET, charset)
            if body is not None:
                self.body = body

    def _bodyless(self) -> bool:
        return self._body is None and self._payload is None

    @property
    def body(self) -> bytes | Payload | None:
        """The body: bytes, or the ``Payload`` a body of another kind was wrapped in."""
        return self._payload if self._payload is not None else self._body

    @body.setter
    def body(self, body: Any) -> None:
        self._payload = None
        if body is None:
            self._body = None
        elif isinstance(body, bytes | bytearray):
            self._body = bytes(body)
        elif isinstance(body, str):
            if self._ctype_parts()[0] is None:
                self._set_ctype("text/plain", "utf-8")
            self._body = body.encode(self.charset or "utf-8")
        else:
            self._set_payload(body)
        self._compressed_body = None

    def _set_payload(self, body: Any) -> None:
        """A body of another kind, as aiohttp takes it: the payload registry wraps it; its
        Content-Type and other headers (Content-Disposition) fill those not already set."""
        from .payload import PAYLOAD_REGISTRY, LookupError

        try:
            payload = PAYLOAD_REGISTRY.get(body)
        except LookupError:
            raise ValueError(f"Unsupported body type {type(body)!r}") from None
        headers = self.headers
        if CONTENT_TYPE not in headers:
            headers[CONTENT_TYPE] = payload.content_type
        for key, value in payload.headers.items():
            if key not in headers:
                headers[key] = value
        self._body = None
        self._payload = payload

    @property
    def text(self) -> str | None:
        if self._payload is not None:
            # As aiohttp: a file payload is read here, blocking.
            return self._payload.decode(self.charset or "utf-8")
        if self._body is None:
            return None
        return self._body.decode(self.charset or "utf-8")

    @text.setter
    def text(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"text argument must be str ({type(text)!r})")
        # As aiohttp: a text body makes an octet-stream response text/plain, with a charset.
        ctype, params = self._parsed_ctype()
        charset = params.get("charset")
        if ctype == _OCTET or charset is None:
            if ctype == _OCTET:
                ctype = "text/plain"
            if charset is None:
                charset = params["charset"] = "utf-8"
            self._set_ctype_params(ctype, params)
        self._body = text.encode(charset)
        self._payload = None
        self._compressed_body = None

    @property
    def content_length(self) -> int | None:
        if self._chunked:
            return None
        if self._headers is not None and CONTENT_LENGTH in self._headers:
            return int(self._headers[CONTENT_LENGTH])
        if self._compressed_body is not None:
            return len(self._compressed_body)
        if self._payload is not None:
            return None  # known when sent (the payload's size), or chunked
        return len(self._body) if self._body is not None else 0

    @content_length.setter
    def content_length(self, value: int | None) -> None:
        raise RuntimeError("Content length is set automatically")

    async def _start(self, request: BaseRequest) -> PayloadWriter:
        self._req = request
        payload = self._payload
        if payload is not None:
            # Streamed: Content-Length is the payload's size when known (and no header set
            # it; as aiohttp, set before on_response_prepare sees the response), chunked
            # otherwise; compression, if enabled, is the writer's (streaming).
            headers = self.headers
            if self._compression and self._choose_coding(request) is not None:
                headers.popall(CONTENT_LENGTH, None)  # compressed: the length is not known
            elif not self._chunked and CONTENT_LENGTH not in headers:
                size = payload.size
                if size is not None:
                    headers[CONTENT_LENGTH] = str(size)
            await request._prepare_hook(self)
            self._payload_writer = self._make_writer(request, None)
            return self._payload_writer
        await request._prepare_hook(self)
        body = self._body if self._body is not None else b""
        if self._compression and not self._chunked:
            coding = self._choose_coding(request)
            if coding is not None:
                wbits = 16 + zlib.MAX_WBITS if coding is ContentCoding.gzip else zlib.MAX_WBITS
                compressor = zlib.compressobj(wbits=wbits)
                self._compressed_body = compressor.compress(body) + compressor.flush()
                self.headers[CONTENT_ENCODING] = coding.value
                self.headers["Vary"] = "Accept-Encoding"
                self._compression = False
                body = self._compressed_body
        length = None if self._chunked else len(body)
        writer = self._payload_writer = self._make_writer(request, length)
        return writer

    async def write_eof(self, data: bytes = b"") -> None:
        if self._eof_sent:
            return
        if self._payload_writer is None:
            raise RuntimeError("Response has not been started")
        payload = self._payload
        if payload is not None:
            if not self._must_be_empty_body:
                try:
                    await payload.write(self._payload_writer)
                finally:
                    await payload.close()  # as aiohttp: a file body is closed once sent
            await super().write_eof(b"")
            return
        body = self._compressed_body if self._compressed_body is not None else self._body
        await super().write_eof(body or b"")


def _keyword_only_signature(function: Any) -> inspect.Signature:
    """``function``'s signature as callers see it: its positional-only guard (the second
    parameter, after ``self`` or ``data``) left out, every later parameter keyword-only
    (aiohttp's signature, for ``inspect`` and the API reference)."""
    parameters = list(inspect.signature(function).parameters.values())
    shown = [parameters[0].replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    shown += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in parameters[2:]]
    return inspect.Signature(shown, return_annotation=inspect.signature(function).return_annotation)


Response.__init__.__signature__ = _keyword_only_signature(Response.__init__)  # type: ignore[attr-defined]


def _as_mutable_mapping(cls: type) -> None:
    """Make ``cls`` a ``MutableMapping`` without inheriting it: the ABC's mixin methods that
    ``cls`` does not define itself, and registration, so ``isinstance(response,
    MutableMapping)`` holds."""
    for name in _MAPPING_MIXINS:
        if name not in vars(cls):
            setattr(cls, name, getattr(MutableMapping, name))
    MutableMapping.register(cls)


# Mapping's and MutableMapping's mixin methods (and Mapping's __reversed__ = None, which keeps
# reversed() from trying the sequence protocol), as collections.abc documents them.
_MAPPING_MIXINS: Final = (
    "__contains__", "keys", "items", "values", "get", "__reversed__",
    "pop", "popitem", "clear", "update", "setdefault",
    "_MutableMapping__marker",  # pop()'s "no default" sentinel, read from the instance
)  # fmt: skip


_as_mutable_mapping(StreamResponse)
# Response(...) and StreamResponse(...) exactly (not subclasses) skip type.__call__'s argument
# packing where the C twin is built; a no-op otherwise.
_install_constructor(StreamResponse)
_install_constructor(Response)


def send_in_one_write(response: StreamResponse, request: BaseRequest) -> bool:
    """Send ``response`` whole in one write, when that is exactly what ``prepare()`` then
    ``write_eof()`` would send; False (nothing done) otherwise, and the server calls those.

    The only fast path of sending, chosen by one predicate. Here, the response's half: an
    exact ``Response`` (a subclass may override ``prepare``/``write_eof``: it takes the
    general path), not started, whose head is only status line, Content-Type, Content-Length,
    Date and Server (no headers, cookies, compression, chunking, custom reason or forced
    close; a status with a body). The request's half is ``BaseRequest._send_plain``: an
    HTTP/1.1 request, not HEAD, and no ``on_response_prepare`` signal to fire; it then writes
    the head (``plain_message``, with ``Connection: close`` when the connection ends with this
    response) and body.
    """
    if type(response) is not Response:
        return False
    status = response._status
    if (
        response._payload_writer is not None
        or response._eof_sent
        or response._headers is not None
        or response._cookies
        or response._compression
        or response._chunked
        or response._custom_reason is not None
        or response._keep_alive is False
        or status < 200
        or status == 204
        or status == 304
    ):
        return False
    body = response._body
    ctype = response._ctype
    if body is None:
        body = b""
        ctype_line = b"" if ctype is None else _ctype_line(ctype, response._charset_value)
    else:
        charset = response._charset_value
        ctype_line = _CTYPE_LINES.get((ctype, charset)) or _ctype_line(ctype, charset)
    sent = request._send_plain(status, ctype_line, body)
    if sent == NOT_SENT:
        return False
    response._req = request
    response._keep_alive = sent == SENT_KEEP_ALIVE
    response._eof_sent = True
    response._body_length = len(body)
    return True


def _one_write_size(response: StreamResponse) -> int:
    """The size of a response ``send_in_one_write`` sent (its head rendered again, with the
    same pieces, only when asked: nothing is counted per request)."""
    request = response._req
    if request is None:
        return response._body_length
    ctype = response._ctype
    if ctype is None and getattr(response, "_body", None) is None:
        ctype_line = b""  # no body, no type: no Content-Type line
    else:
        ctype_line = _ctype_line(ctype, response._charset_value)
    length = response._body_length
    tail = request._protocol.head_tail()  # Date and Server lines: a fixed size
    return len(plain_message(response._status, ctype_line, length, tail, b"")) + length


_SENTINEL: Final[Any] = object()
_JSON_DUMPS: Final = json.dumps


def json_response(
    data: Any = _SENTINEL,
    _no_positional: Any = _NO_POSITIONAL,
    /,
    text: str | None = None,
    body: bytes | None = None,
    status: int = 200,
    reason: str | None = None,
    headers: LooseHeaders = None,
    content_type: str = "application/json",
    dumps: Callable[[Any], str] = json.dumps,
) -> Response:
    # Keyword-only in aiohttp: declared behind a positional-only guard, as Response.__init__
    # (each keyword-only default would cost a dict lookup per call on CPython 3.11).
    if _no_positional is not _NO_POSITIONAL:
        raise TypeError("json_response() takes 1 positional argument (data)")
    if data is not _SENTINEL:
        if text or body:
            raise ValueError("only one of data, text, or body should be specified")
        # json.dumps itself, or the same text from jsontext (compiled, cheaper).
        text = dumps(data) if dumps is not _JSON_DUMPS else json_text(data)
    if body is None and reason is None and headers is None:
        # Positional, behind the guard's own marker (body, status, reason, text, headers,
        # content_type): keywords passed to a class cost a dict CPython builds and unpacks
        # again for __init__.
        return Response(_NO_POSITIONAL, None, status, None, text, None, content_type)
    return Response(
        text=text,
        body=body,
        status=status,
        reason=reason,
        headers=headers,
        content_type=content_type,
    )


json_response.__signature__ = _keyword_only_signature(json_response)  # type: ignore[attr-defined]


def json_bytes_response(
    data: Any = _SENTINEL,
    *,
    dumps: Callable[[Any], bytes],
    body: bytes | None = None,
    status: int = 200,
    reason: str | None = None,
    headers: LooseHeaders = None,
    content_type: str = "application/json",
) -> Response:
    """``json_response`` for serializers that return bytes (orjson's ``dumps``, say)."""
    if data is not _SENTINEL:
        if body:
            raise ValueError("only one of data or body should be specified")
        body = dumps(data)
    return Response(
        body=body, status=status, reason=reason, headers=headers, content_type=content_type
    )

"""aiohttp's streaming multipart reader API over the sans-I/O parser.

Owner: bodies-and-files (issue 5). Owns ``MultipartReader`` (``await request.multipart()``) and
``BodyPartReader``: the events of ``forkloop.core.multipart.MultipartParser`` fed from the
request's ``StreamReader`` (``readany()``), one part at a time, so memory stays bounded by the
stream's read buffer whatever the body size. Malformed bodies raise ``HTTPBadRequest`` (400).

Imports: ``forkloop.core.multipart`` and this package's exceptions (lazily: they raise).
"""

from __future__ import annotations

import base64
import binascii
import collections
import json
import sys
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol
from urllib.parse import parse_qsl

from multidict import CIMultiDict, CIMultiDictProxy

from ..multipart import (
    End,
    Event,
    MultipartError,
    MultipartLimits,
    MultipartParser,
    PartData,
    PartEnd,
    PartHeaders,
    parse_content_disposition,
    parse_header_params,
)

__all__ = ["BodyPartReader", "MultipartReader"]

_READ_ANY_CAP = 1 << 20


class Readable(Protocol):
    """What a reader needs from its byte source (``StreamReader`` or a parent part)."""

    async def readany(self) -> bytes: ...


def bad_request(reason: str) -> Exception:
    """The exception a malformed body raises: aiohttp's ``HTTPBadRequest`` with a reason."""
    from .exceptions import HTTPBadRequest

    return HTTPBadRequest(text=f"400: Bad Request ({reason})")


def too_large(max_size: int, actual: int) -> Exception:
    """413: ``HTTPRequestEntityTooLarge(max_size, actual_size)``."""
    from .exceptions import HTTPRequestEntityTooLarge

    return HTTPRequestEntityTooLarge(max_size, actual)


def part_too_large(max_size: int) -> Exception:
    """413 for a part's ``read()`` past the request's ``client_max_size`` (aiohttp raises
    ``HTTPRequestEntityTooLarge(client_max_size)`` there)."""
    return too_large(max_size, max_size + 1)


def _params(value: str, limits: MultipartLimits | None) -> tuple[str, dict[str, str]]:
    """``parse_header_params`` with a malformed value answered by 400."""
    try:
        return parse_header_params(value, limits)
    except MultipartError as exc:
        raise bad_request(exc.reason) from None


class MultipartReader:
    """Reads the parts of a ``multipart/*`` body: ``await reader.next()`` or ``async for``.

    As in aiohttp, subclasses may set ``part_reader_cls`` (the class of plain parts) and
    ``multipart_reader_cls`` (of nested multipart parts; None means the subclass itself).
    """

    part_reader_cls: type[BodyPartReader]
    multipart_reader_cls: type[MultipartReader] | None = None

    def __init__(
        self,
        headers: Mapping[str, str],
        content: Readable,
        *,
        limits: MultipartLimits | None = None,
        client_max_size: int = sys.maxsize,
        max_size_error_cls: Callable[[int], BaseException] = ValueError,
    ) -> None:
        self.headers = headers
        self._content = content
        # As aiohttp: a part's read() (and text/json/form) stops past this many bytes with
        # max_size_error_cls(client_max_size) -- 413 for a reader from request.multipart().
        self._client_max_size = client_max_size
        self._max_size_error_cls = max_size_error_cls
        ctype = headers.get("Content-Type", "")
        mimetype, params = _params(ctype, limits)
        if not mimetype.startswith("multipart/"):
            raise bad_request(f"expected a multipart/* Content-Type, got {ctype!r}")
        self._subtype = mimetype.partition("/")[2]
        try:
            self._parser = MultipartParser(params.get("boundary", ""), limits)
        except MultipartError as exc:
            raise bad_request(exc.reason) from None
        self._limits = limits
        self._events: collections.deque[Event] = collections.deque()
        self._last_part: BodyPartReader | MultipartReader | None = None
        self._at_eof = False
        self._source_eof = False
        self._outer_part: BodyPartReader | None = None

    def __repr__(self) -> str:
        return f"<MultipartReader {self._subtype} eof={self._at_eof}>"

    def __aiter__(self) -> AsyncIterator[BodyPartReader | MultipartReader]:
        return self

    async def __anext__(self) -> BodyPartReader | MultipartReader:
        part = await self.next()
        if part is None:
            raise StopAsyncIteration
        return part

    def at_eof(self) -> bool:
        """True once the closing boundary was read."""
        return self._at_eof

    async def next(self) -> BodyPartReader | MultipartReader | None:
        """The next part (a nested ``multipart/*`` part is a ``MultipartReader``), or None."""
        if self._at_eof:
            return None
        if self._last_part is not None:
            await self._last_part.release()
            self._last_part = None
        event = await self._next_event()
        if isinstance(event, End):
            self._at_eof = True
            return None
        if not isinstance(event, PartHeaders):  # the parser guarantees this order
            raise bad_request("multipart part without headers")
        headers = CIMultiDictProxy(CIMultiDict(event.headers))
        part = self.part_reader_cls(
            self._parser_boundary(),
            headers,
            self,
            subtype=self._subtype,
            client_max_size=self._client_max_size,
            max_size_error_cls=self._max_size_error_cls,
        )
        if headers.get("Content-Type", "").lower().startswith("multipart/"):
            nested_cls = self.multipart_reader_cls or type(self)
            nested = nested_cls(
                headers,
                _PartStream(part),
                limits=self._limits,
                client_max_size=self._client_max_size,
                max_size_error_cls=self._max_size_error_cls,
            )
            nested._outer_part = part
            self._last_part = nested
            return nested
        self._last_part = part
        return part

    async def fetch_next_part(self) -> BodyPartReader | MultipartReader | None:
        """aiohttp's alias of ``next()`` without releasing semantics; same here."""
        return await self.next()

    async def release(self) -> None:
        """Read and discard every remaining part (and the closing boundary)."""
        while not self._at_eof:
            part = await self.next()
            if part is None:
                break
            await part.release()
        if self._outer_part is not None:
            await self._outer_part.release()

    # -- used by BodyPartReader -----------------------------------------------------------

    def _parser_boundary(self) -> bytes:
        return self._parser._delim[4:]

    def _pop_queued_part_end(self) -> bool:
        """Consume a queued ``PartEnd`` if it is next, so ``at_eof()`` turns true early."""
        events = self._events
        if events and type(events[0]) is PartEnd:
            events.popleft()
            return True
        return False

    async def _next_event(self) -> Event:
        events = self._events
        while not events:
            if self._source_eof:
                raise bad_request("multipart body ended early")
            data = await self._content.readany()
            try:
                if data:
                    events.extend(self._parser.feed(data))
                else:
                    self._source_eof = True
                    events.extend(self._parser.feed_eof())
            except MultipartError as exc:
                raise bad_request(exc.reason) from None
        return events.popleft()


class BodyPartReader:
    """One part of a multipart body: headers, ``name``/``filename``, and its data as a stream."""

    chunk_size = 8192

    def __init__(
        self,
        boundary: bytes,
        headers: CIMultiDictProxy[str],
        content: MultipartReader,
        *,
        subtype: str = "mixed",
        default_charset: str | None = None,
        client_max_size: int = sys.maxsize,
        max_size_error_cls: Callable[[int], BaseException] = ValueError,
    ) -> None:
        self.headers = headers
        self._boundary = boundary
        self._client_max_size = client_max_size
        self._max_size_error_cls = max_size_error_cls
        self._reader = content
        self._subtype = subtype
        self._default_charset = default_charset
        self._pending = b""
        self._pos = 0
        self._end_seen = False
        try:
            disptype, self._disp_params = parse_content_disposition(
                headers.get("Content-Disposition")
            )
        except MultipartError as exc:
            raise bad_request(exc.reason) from None
        self._disptype = disptype

    def __repr__(self) -> str:
        return f"<BodyPartReader name={self.name!r} filename={self.filename!r}>"

    @property
    def name(self) -> str | None:
        """The ``name`` parameter of ``Content-Disposition``."""
        return self._disp_params.get("name")

    @property
    def filename(self) -> str | None:
        """The ``filename`` (RFC 2231/5987 ``filename*`` decoded and preferred)."""
        return self._disp_params.get("filename")

    def at_eof(self) -> bool:
        """True once all of this part's data was read."""
        return self._end_seen and self._pos >= len(self._pending)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iter_chunks()

    async def _iter_chunks(self) -> AsyncIterator[bytes]:
        while chunk := await self.read_chunk():
            yield chunk

    async def next(self) -> bytes | None:
        """aiohttp compatibility: the whole (raw) body, or None once read."""
        if self.at_eof():
            return None
        return bytes(await self.read())

    async def read_chunk(self, size: int = chunk_size) -> bytes:
        """Up to ``size`` raw bytes of the part; ``b""`` at its end."""
        pending = self._pending
        pos = self._pos
        if pos >= len(pending):
            if self._end_seen:
                return b""
            event = await self._reader._next_event()
            if type(event) is PartEnd:
                self._end_seen = True
                return b""
            if type(event) is not PartData:  # the parser guarantees this order
                raise bad_request("unexpected multipart event inside a part")
            pending = self._pending = event.data
            pos = 0
        end = pos + size
        if end < len(pending):
            # Hand out a slice and keep an offset: re-slicing the rest would copy it each time.
            self._pos = end
            return pending[pos:end]
        self._pending = b""
        self._pos = 0
        if not self._end_seen and self._reader._pop_queued_part_end():
            self._end_seen = True
        return pending[pos:] if pos else pending

    async def readline(self) -> bytes:
        """The next line of the part, up to and including ``\\n`` (or the part's end)."""
        out = bytearray()
        while chunk := await self.read_chunk(1 << 16):
            i = chunk.find(b"\n")
            if i != -1:
                out += chunk[: i + 1]
                self._pending = chunk[i + 1 :] + self._pending[self._pos :]
                self._pos = 0
                break
            out += chunk
        return bytes(out)

    async def read(self, *, decode: bool = False) -> bytearray:
        """The whole part; with ``decode=True`` transfer- and content-encodings are undone.
        At most ``client_max_size`` bytes, raw and decoded (else ``max_size_error_cls``)."""
        limit = self._client_max_size
        data = bytearray()
        while chunk := await self.read_chunk(1 << 16):
            data += chunk
            if len(data) > limit:
                raise self._max_size_error_cls(limit)
        if decode:
            try:
                decoded = self.decode(data, max_size=limit if limit < sys.maxsize else 0)
            except Exception as exc:
                if getattr(exc, "status", None) == 413:
                    raise self._max_size_error_cls(limit) from None
                raise
            return bytearray(decoded)
        return data

    async def release(self) -> None:
        """Read and discard the rest of the part."""
        while await self.read_chunk(1 << 20):
            pass

    async def text(self, *, encoding: str | None = None) -> str:
        data = await self.read(decode=True)
        return data.decode(encoding or self.get_charset(default="utf-8"))

    async def json(self, *, encoding: str | None = None) -> Any:
        data = await self.read(decode=True)
        if not data:
            return None
        return json.loads(data.decode(encoding or self.get_charset(default="utf-8")))

    async def form(self, *, encoding: str | None = None) -> list[tuple[str, str]]:
        """Parse an ``application/x-www-form-urlencoded`` part."""
        data = await self.read(decode=True)
        if not data:
            return []
        charset = encoding or self.get_charset(default="utf-8")
        return parse_qsl(data.rstrip().decode(charset), keep_blank_values=True, encoding=charset)

    def get_charset(self, default: str) -> str:
        _, params = _params(self.headers.get("Content-Type", ""), None)
        return params.get("charset") or self._default_charset or default

    def decode(self, data: bytes | bytearray, *, max_size: int = 0) -> bytes:
        """Undo ``Content-Transfer-Encoding`` then ``Content-Encoding`` (400 when malformed).

        ``max_size`` > 0 bounds the decompressed size (413 past it): a few kilobytes of gzip
        can expand to gigabytes.
        """
        cte = self.headers.get("Content-Transfer-Encoding", "").strip().lower()
        raw = bytes(data)
        if cte == "base64":
            try:
                raw = base64.b64decode(b"".join(raw.split()), validate=True)
            except binascii.Error:
                raise bad_request("invalid base64 in a multipart part") from None
        elif cte == "quoted-printable":
            raw = binascii.a2b_qp(raw)
        elif cte not in ("", "binary", "8bit", "7bit"):
            raise bad_request(f"unknown Content-Transfer-Encoding {cte!r}")
        ce = self.headers.get("Content-Encoding", "").strip().lower()
        if ce in ("", "identity"):
            return raw
        if ce not in ("gzip", "x-gzip", "deflate"):
            raise bad_request(f"unknown Content-Encoding {ce!r}")
        try:
            if ce == "deflate":
                # RFC 9110 "deflate" is the zlib format; many senders use raw deflate.
                wbits = zlib.MAX_WBITS if raw[:1] == b"\x78" else -zlib.MAX_WBITS
            else:
                wbits = 16 + zlib.MAX_WBITS
            d = zlib.decompressobj(wbits)
            out = d.decompress(raw, max_size + 1) if max_size > 0 else d.decompress(raw)
            if max_size > 0 and len(out) > max_size:
                raise too_large(max_size, len(out))
            out += d.flush()
        except zlib.error:
            raise bad_request(f"invalid {ce} data in a multipart part") from None
        return out


MultipartReader.part_reader_cls = BodyPartReader


class _PartStream:
    """A part's body as a byte source, for a nested multipart reader."""

    def __init__(self, part: BodyPartReader) -> None:
        self._part = part

    async def readany(self) -> bytes:
        return await self._part.read_chunk(_READ_ANY_CAP)

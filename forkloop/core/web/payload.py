"""Response bodies other than bytes: aiohttp's ``aiohttp.payload`` API in forkloop form.

Owns ``Payload`` and its kinds (bytes, str, file objects binary and text, ``io.BytesIO`` and
``io.StringIO``, async iterables, a request's ``StreamReader``, a multipart ``BodyPartReader``
being forwarded), the registry that picks one for a value (``PAYLOAD_REGISTRY.get(value)``,
``payload_type``, ``register_payload``, ``get_payload``) and ``Order``. ``Response(body=...)``
and the ``body`` setter use the registry for anything that is not bytes or str
(``core.web.response``); a payload then writes itself to the response's ``PayloadWriter``
(``await payload.write(writer)``) and is closed after.

As aiohttp: a payload has a ``size`` when it is known up front (bytes, a regular file from
its current position, a ``BytesIO``), which becomes the response's ``Content-Length``;
without one the response is chunked. A file object with a ``name`` gets
``Content-Disposition: attachment; filename="..."`` and a ``Content-Type`` guessed from that
name. Files are read in chunks of ``DEFAULT_CHUNK_SIZE`` bytes, each read run in the loop's
default executor (a blocking read never stalls the event loop), and closed once sent.

Imports ``core.web.multipart`` and ``core.server.streams`` only.
"""

from __future__ import annotations

import asyncio
import enum
import io
import json
import mimetypes
import os
import re
import string
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import IO, Any, Final, Protocol
from urllib.parse import quote

from multidict import CIMultiDict

from ..server.streams import StreamReader
from .multipart import BodyPartReader

__all__ = [
    "PAYLOAD_REGISTRY",
    "AsyncIterablePayload",
    "BodyPartReaderPayload",
    "BufferedReaderPayload",
    "BytesIOPayload",
    "BytesPayload",
    "IOBasePayload",
    "JsonPayload",
    "LookupError",
    "Order",
    "Payload",
    "PayloadRegistry",
    "StreamReaderPayload",
    "StringIOPayload",
    "StringPayload",
    "TextIOPayload",
    "get_payload",
    "payload_type",
    "register_payload",
]

# How much of a file one executor job reads (aiohttp's chunk size): the memory one step costs.
DEFAULT_CHUNK_SIZE: Final = 2**18
_OCTET: Final = "application/octet-stream"
_TOKEN: Final = frozenset("!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits)
_QTEXT_SPECIAL: Final = re.compile(r'[\\"]')
# Close jobs of file payloads in flight (a strong reference until each finishes).
_CLOSING: set[asyncio.Future[None]] = set()


class LookupError(Exception):  # aiohttp's name; it shadows the builtin in here only
    """No payload kind takes this value."""


class Order(enum.StrEnum):
    normal = "normal"
    try_first = "try_first"
    try_last = "try_last"


class BodyWriter(Protocol):
    """What a payload writes to (``core.web.writer.PayloadWriter``)."""

    async def write(self, data: bytes | bytearray | memoryview) -> None: ...


def _escape(match: re.Match[str]) -> str:
    return "\\" + match.group(0)


def _disposition(disptype: str, params: dict[str, str]) -> str:
    """A ``Content-Disposition`` value as aiohttp renders a payload's (RFC 2183, RFC 7578):
    ``filename`` percent-encoded inside quotes, other values as quoted strings (RFC 2231
    ``key*=utf-8''...`` when not 7-bit)."""
    if not disptype or not set(disptype) <= _TOKEN:
        raise ValueError(f"bad content disposition type {disptype!r}")
    parts = [disptype]
    for key, value in params.items():
        if not key or not set(key) <= _TOKEN:
            raise ValueError(f"bad content disposition parameter {key!r}={value!r}")
        if key.lower() == "filename":
            parts.append(f'{key}="{quote(value, "")}"')
        elif all(" " <= c <= "~" or c == "\t" for c in value):
            escaped = _QTEXT_SPECIAL.sub(_escape, value)
            parts.append(f'{key}="{escaped}"')
        else:
            parts.append(f"{key}*=utf-8''{quote(value, '')}")
    return "; ".join(parts)


def _guess_filename(obj: object) -> str | None:
    name = getattr(obj, "name", None)
    if isinstance(name, str) and name and not (name[0] == "<" and name[-1] == ">"):
        return os.path.basename(name)
    return None


class Payload(ABC):
    """A response body that writes itself: ``size``, ``content_type``, ``headers``,
    ``await write(writer)``, ``await close()``."""

    _default_content_type: str = _OCTET
    _size: int | None = None

    def __init__(
        self,
        value: Any,
        headers: CIMultiDict[str] | dict[str, str] | Iterable[tuple[str, str]] | None = None,
        content_type: str | None = None,
        filename: str | None = None,
        encoding: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._value = value
        self._encoding = encoding
        self._filename = filename
        self._headers: CIMultiDict[str] = CIMultiDict()
        if content_type is not None:
            self._headers["Content-Type"] = content_type
        elif filename is not None:
            guessed = mimetypes.guess_type(filename)[0]
            self._headers["Content-Type"] = guessed or self._default_content_type
        else:
            self._headers["Content-Type"] = self._default_content_type
        if headers:
            self._headers.update(headers)

    @property
    def size(self) -> int | None:
        """Bytes that ``write`` sends, or None when not known before sending."""
        return self._size

    @property
    def filename(self) -> str | None:
        return self._filename

    @property
    def headers(self) -> CIMultiDict[str]:
        return self._headers

    @property
    def encoding(self) -> str | None:
        return self._encoding

    @property
    def content_type(self) -> str:
        return self._headers["Content-Type"]

    def set_content_disposition(
        self, disptype: str, quote_fields: bool = True, _charset: str = "utf-8", **params: str
    ) -> None:
        self._headers["Content-Disposition"] = _disposition(disptype, params)

    @abstractmethod
    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """The body as text (``Response.text``); may block for file payloads."""

    @abstractmethod
    async def write(self, writer: BodyWriter) -> None:
        """Write the whole body to ``writer``."""

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.decode(self._encoding or encoding, errors).encode(self._encoding or encoding)

    async def close(self) -> None:  # noqa: B027 - most payloads hold nothing to release
        """Release what the payload holds (a file); called once the body is sent."""


class BytesPayload(Payload):
    _value: bytes | bytearray | memoryview

    def __init__(self, value: bytes | bytearray | memoryview, *args: Any, **kwargs: Any) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"value argument must be byte-ish, not {type(value)!r}")
        kwargs.setdefault("content_type", _OCTET)
        super().__init__(value, *args, **kwargs)
        self._size = value.nbytes if isinstance(value, memoryview) else len(value)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes(self._value).decode(encoding, errors)

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return bytes(self._value)

    async def write(self, writer: BodyWriter) -> None:
        await writer.write(self._value)


def _text_type(content_type: str | None, encoding: str | None) -> tuple[str, str]:
    """``(content type, encoding)`` of a text payload, as aiohttp settles them."""
    if encoding is not None:
        return content_type or f"text/plain; charset={encoding}", encoding
    if content_type is None:
        return "text/plain; charset=utf-8", "utf-8"
    charset = "utf-8"
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    return content_type, charset


class StringPayload(BytesPayload):
    def __init__(
        self,
        value: str,
        *args: Any,
        encoding: str | None = None,
        content_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        content_type, encoding = _text_type(content_type, encoding)
        super().__init__(
            value.encode(encoding), *args, encoding=encoding, content_type=content_type, **kwargs
        )


class StringIOPayload(StringPayload):
    def __init__(self, value: IO[str], *args: Any, **kwargs: Any) -> None:
        super().__init__(value.read(), *args, **kwargs)


class JsonPayload(BytesPayload):
    def __init__(
        self,
        value: Any,
        encoding: str = "utf-8",
        content_type: str = "application/json",
        dumps: Callable[[Any], str] = json.dumps,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            dumps(value).encode(encoding),
            *args,
            content_type=content_type,
            encoding=encoding,
            **kwargs,
        )


class IOBasePayload(Payload):
    """A file object: read from its current position in chunks, off the event loop."""

    _value: IO[Any]
    _start: int | None = None

    def __init__(
        self, value: IO[Any], disposition: str = "attachment", *args: Any, **kwargs: Any
    ) -> None:
        if "filename" not in kwargs:
            kwargs["filename"] = _guess_filename(value)
        super().__init__(value, *args, **kwargs)
        if (
            self._filename is not None
            and disposition is not None
            and "Content-Disposition" not in self._headers
        ):
            self.set_content_disposition(disposition, filename=self._filename)

    def _rewind(self) -> None:
        """Go back to where the body starts (a payload written twice sends it twice)."""
        try:
            if self._start is None:
                self._start = self._value.tell()
            else:
                self._value.seek(self._start)
        except (OSError, AttributeError, ValueError):
            pass

    @property
    def size(self) -> int | None:
        try:
            if self._start is None:
                self._start = self._value.tell()
            return os.fstat(self._value.fileno()).st_size - self._start
        except (OSError, AttributeError, ValueError):
            return None  # not a regular file (a pipe, a socket): sent chunked

    def _read(self, n: int) -> bytes:
        data = self._value.read(n)
        return data.encode(self._encoding or "utf-8") if isinstance(data, str) else bytes(data)

    async def write(self, writer: BodyWriter) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._rewind)
        left = self.size  # a regular file: stop at the size announced in Content-Length
        while left is None or left > 0:
            want = DEFAULT_CHUNK_SIZE if left is None else min(DEFAULT_CHUNK_SIZE, left)
            chunk = await loop.run_in_executor(None, self._read, want)
            if not chunk:
                return
            await writer.write(chunk)
            if left is not None:
                left -= len(chunk)

    async def close(self) -> None:
        # Closing a file may block (a network file system): done in the executor, not awaited
        # (close() may run while the task is being cancelled).
        future = asyncio.get_running_loop().run_in_executor(None, self._value.close)
        _CLOSING.add(future)
        future.add_done_callback(_CLOSING.discard)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        self._rewind()
        data = self._value.read()
        return data if isinstance(data, str) else bytes(data).decode(encoding, errors)

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        def read_all() -> bytes:
            self._rewind()
            data = self._value.read()
            return data.encode(self._encoding or encoding) if isinstance(data, str) else data

        return await asyncio.get_running_loop().run_in_executor(None, read_all)


class TextIOPayload(IOBasePayload):
    """A text file: its characters encoded with ``encoding`` (from the content type's
    charset, else UTF-8) as they are sent."""

    def __init__(
        self,
        value: IO[str],
        *args: Any,
        encoding: str | None = None,
        content_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        content_type, encoding = _text_type(content_type, encoding)
        super().__init__(value, *args, content_type=content_type, encoding=encoding, **kwargs)


class BytesIOPayload(IOBasePayload):
    """An ``io.BytesIO``: in memory, sent in chunks, never closed (the caller may reuse it)."""

    _value: io.BytesIO

    def __init__(self, value: io.BytesIO, *args: Any, **kwargs: Any) -> None:
        super().__init__(value, *args, **kwargs)
        self._size_known = len(value.getbuffer()) - value.tell()

    @property
    def size(self) -> int:
        return self._size_known

    async def write(self, writer: BodyWriter) -> None:
        self._rewind()
        left = self._size_known
        first = True
        while left > 0 and (chunk := self._value.read(min(DEFAULT_CHUNK_SIZE, left))):
            if not first:
                await asyncio.sleep(0)  # a large buffer: let other connections run
            first = False
            await writer.write(chunk)
            left -= len(chunk)

    async def close(self) -> None:
        pass


class BufferedReaderPayload(IOBasePayload):
    """A binary file opened with ``open(path, "rb")``."""


class AsyncIterablePayload(Payload):
    """An async iterable of bytes (an async generator, say): streamed, chunked."""

    _iter: AsyncIterator[bytes] | None

    def __init__(self, value: AsyncIterable[bytes], *args: Any, **kwargs: Any) -> None:
        if not isinstance(value, AsyncIterable):
            raise TypeError(
                "value argument must support collections.abc.AsyncIterable interface, "
                f"got {type(value)!r}"
            )
        kwargs.setdefault("content_type", _OCTET)
        super().__init__(value, *args, **kwargs)
        self._iter = value.__aiter__()

    async def write(self, writer: BodyWriter) -> None:
        iterator, self._iter = self._iter, None
        if iterator is None:
            return
        async for chunk in iterator:
            await writer.write(chunk)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("Unable to decode - content not cached. Call as_bytes() first.")

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        iterator, self._iter = self._iter, None
        if iterator is None:
            return b""
        return b"".join([chunk async for chunk in iterator])


class StreamReaderPayload(AsyncIterablePayload):
    """A request's body stream, forwarded as it arrives."""

    def __init__(self, value: StreamReader, *args: Any, **kwargs: Any) -> None:
        super().__init__(value.iter_any(), *args, **kwargs)


class BodyPartReaderPayload(Payload):
    """One part of a multipart request, forwarded (transfer/content encodings undone)."""

    _value: BodyPartReader

    def __init__(self, value: BodyPartReader, *args: Any, **kwargs: Any) -> None:
        super().__init__(value, *args, **kwargs)
        params = {}
        if value.name is not None:
            params["name"] = value.name
        if value.filename is not None:
            params["filename"] = value.filename
        if params:
            self.set_content_disposition("attachment", True, **params)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("Unable to decode.")

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        raise TypeError("Unable to read body part as bytes. Use write() to consume.")

    async def write(self, writer: BodyWriter) -> None:
        part = self._value
        headers = part.headers
        if headers.get("Content-Transfer-Encoding") or headers.get("Content-Encoding"):
            await writer.write(await part.read(decode=True))  # bounded by client_max_size
            return
        while chunk := await part.read_chunk(DEFAULT_CHUNK_SIZE):
            await writer.write(chunk)


_Factory = Callable[..., Payload]


class PayloadRegistry:
    """Which payload kind takes a value: ``try_first`` kinds, then the value's exact type,
    then ``normal`` and ``try_last`` kinds by ``isinstance``."""

    __slots__ = ("_first", "_last", "_normal", "_normal_lookup")

    def __init__(self) -> None:
        self._first: list[tuple[_Factory, Any]] = []
        self._normal: list[tuple[_Factory, Any]] = []
        self._last: list[tuple[_Factory, Any]] = []
        self._normal_lookup: dict[Any, _Factory] = {}

    def get(self, data: Any, *args: Any, **kwargs: Any) -> Payload:
        for factory, kind in self._first:
            if isinstance(data, kind):
                return factory(data, *args, **kwargs)
        exact = self._normal_lookup.get(type(data))
        if exact is not None:
            return exact(data, *args, **kwargs)
        if isinstance(data, Payload):
            return data
        for factory, kind in (*self._normal, *self._last):
            if isinstance(data, kind):
                return factory(data, *args, **kwargs)
        raise LookupError()

    def register(self, factory: _Factory, type: Any, *, order: Order = Order.normal) -> None:
        if order is Order.try_first:
            self._first.append((factory, type))
        elif order is Order.normal:
            self._normal.append((factory, type))
            for kind in type if isinstance(type, tuple) else (type,):
                self._normal_lookup[kind] = factory
        elif order is Order.try_last:
            self._last.append((factory, type))
        else:
            raise ValueError(f"Unsupported order {order!r}")


PAYLOAD_REGISTRY: Final = PayloadRegistry()


def get_payload(data: Any, *args: Any, **kwargs: Any) -> Payload:
    return PAYLOAD_REGISTRY.get(data, *args, **kwargs)


def register_payload(factory: _Factory, type: Any, *, order: Order = Order.normal) -> None:
    PAYLOAD_REGISTRY.register(factory, type, order=order)


class payload_type:  # noqa: N801 - aiohttp's name: a class decorator
    """``@payload_type(SomeType)`` registers the decorated payload class for ``SomeType``."""

    def __init__(self, type: Any, *, order: Order = Order.normal) -> None:
        self.type = type
        self.order = order

    def __call__(self, factory: type[Payload]) -> type[Payload]:
        register_payload(factory, self.type, order=self.order)
        return factory


PAYLOAD_REGISTRY.register(BodyPartReaderPayload, BodyPartReader, order=Order.try_first)
PAYLOAD_REGISTRY.register(BytesPayload, (bytes, bytearray, memoryview))
PAYLOAD_REGISTRY.register(StringPayload, str)
PAYLOAD_REGISTRY.register(StringIOPayload, io.StringIO)
PAYLOAD_REGISTRY.register(TextIOPayload, io.TextIOBase)
PAYLOAD_REGISTRY.register(BytesIOPayload, io.BytesIO)
PAYLOAD_REGISTRY.register(BufferedReaderPayload, (io.BufferedReader, io.BufferedRandom))
PAYLOAD_REGISTRY.register(IOBasePayload, io.IOBase)
PAYLOAD_REGISTRY.register(StreamReaderPayload, StreamReader)
PAYLOAD_REGISTRY.register(AsyncIterablePayload, AsyncIterable, order=Order.try_last)

"""HTML form bodies: ``await request.post()``.

Owner: bodies-and-files (issue 5). Owns ``FileField`` and ``read_post(request)``, which the
request's ``post()`` delegates to: ``application/x-www-form-urlencoded`` and
``multipart/form-data`` (RFC 7578) bodies of POST/PUT/PATCH/DELETE requests become a
``MultiDictProxy``. Text fields are ``str`` (``bytearray`` for non-text parts, as in aiohttp);
file fields are ``FileField``s whose ``file`` is kept in memory up to ``spool_max_bytes`` and
then spilled to an anonymous temporary file (unlinked at creation on POSIX, so nothing stays
on disk even if the process dies), closed when the request ends or as soon as parsing fails.

Limits: the request's ``client_max_size`` for the whole body (decoded bytes when it has a
Content-Encoding; 0 or None: none) and its ``client_max_fields`` (aiohttp's default 1000; 0:
none), both 413 as in aiohttp.
Imports: ``.multipart`` and ``.exceptions`` (the request module calls in, never the reverse).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Protocol, TypeAlias
from urllib.parse import parse_qsl

from multidict import CIMultiDictProxy, MultiDict, MultiDictProxy

from .multipart import BodyPartReader, MultipartReader, bad_request, too_large

__all__ = ["FileField"]

POST_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TYPES = frozenset({"", "application/x-www-form-urlencoded", "multipart/form-data"})
DEFAULT_MAX_FIELDS = 1000
DEFAULT_SPOOL_MAX_BYTES = 1 << 20
_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class FileField:
    """An uploaded file of a ``multipart/form-data`` body (aiohttp's ``web.FileField``)."""

    name: str
    filename: str
    file: IO[bytes]
    content_type: str
    headers: CIMultiDictProxy[str]


PostValue: TypeAlias = str | bytes | bytearray | FileField


class FormRequest(Protocol):
    """What ``read_post`` needs of a request (``forkloop.core.web.request.BaseRequest``)."""

    @property
    def method(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def charset(self) -> str | None: ...
    @property
    def content(self) -> Any: ...

    @property
    def client_max_size(self) -> int | None: ...
    @property
    def client_max_fields(self) -> int: ...
    @property
    def content_length(self) -> int | None: ...

    async def read(self) -> bytes: ...
    async def multipart(self) -> Any: ...
    def add_cleanup(self, callback: Callable[[], None]) -> None: ...


def _too_many_fields(max_fields: int) -> Exception:
    from .exceptions import HTTPRequestEntityTooLarge

    return HTTPRequestEntityTooLarge(
        max_fields, max_fields + 1, text=f"Maximum number of form fields {max_fields} exceeded."
    )


async def read_post(
    request: FormRequest,
    *,
    max_fields: int | None = None,
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
) -> MultiDictProxy[PostValue]:
    """Parse a form body; see the module docstring. Empty for other methods/content types.
    ``max_fields`` overrides the request's ``client_max_fields``."""
    if max_fields is None:
        max_fields = request.client_max_fields
    if request.method not in POST_METHODS or request.content_type not in FORM_TYPES:
        return MultiDictProxy(MultiDict())
    if request.content_type == "multipart/form-data":
        return MultiDictProxy(await _read_multipart(request, max_fields, spool_max_bytes))
    data = await request.read()  # the request enforces client_max_size (413)
    if not data:
        return MultiDictProxy(MultiDict())
    charset = request.charset or "utf-8"
    try:
        text = data.rstrip().decode(charset)
    except (LookupError, UnicodeDecodeError):
        raise bad_request(f"form body is not valid {charset}") from None
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            encoding=charset,
            max_num_fields=max_fields if max_fields > 0 else None,
        )
    except ValueError:
        raise _too_many_fields(max_fields) from None
    return MultiDictProxy(MultiDict[PostValue](pairs))


async def _read_multipart(
    request: FormRequest, max_fields: int, spool_max_bytes: int
) -> MultiDict[PostValue]:
    max_size = request.client_max_size or 0
    declared = request.content_length
    if max_size > 0 and declared is not None and declared > max_size:
        # Refuse before reading: with "Expect: 100-continue" the body is never sent.
        raise too_large(max_size, declared)
    reader = await request.multipart()
    form = _MultipartForm(request.content, max_size, max_fields, spool_max_bytes)
    try:
        while (field := await reader.next()) is not None:
            form.check_size()
            if isinstance(field, MultipartReader):
                await form.add_nested(field)
            else:
                await form.add(field)
        form.check_size()
    except BaseException:
        form.close()
        raise
    if form.files:
        request.add_cleanup(form.close)
    return form.out


class _MultipartForm:
    """The fields read so far, the temporary files behind them, and the limits."""

    def __init__(self, content: Any, max_size: int, max_fields: int, spool_max: int) -> None:
        self.content = content
        self.max_size = max_size
        self.max_fields = max_fields
        self.spool_max = spool_max
        self.out: MultiDict[PostValue] = MultiDict()
        self.files: list[IO[bytes]] = []
        self.loop = asyncio.get_running_loop()

    def close(self) -> None:
        for f in self.files:
            f.close()

    def check_size(self) -> None:
        total: int = getattr(self.content, "total_bytes", 0)
        if 0 < self.max_size < total:
            raise too_large(self.max_size, total)

    def check_count(self) -> None:
        if 0 < self.max_fields <= len(self.out):
            raise _too_many_fields(self.max_fields)

    async def add_nested(self, nested: MultipartReader) -> None:
        """RFC 2388's ``multipart/mixed`` part: several files under one field name."""
        outer = nested._outer_part
        name = outer.name if outer is not None else None
        if not name:
            raise bad_request("multipart field missing name")
        while (sub := await nested.next()) is not None:
            self.check_count()
            if not isinstance(sub, BodyPartReader):
                raise bad_request("multipart form nested too deeply")
            self.out.add(name, await self.spool(sub, name))

    async def add(self, field: BodyPartReader) -> None:
        self.check_count()
        name = field.name
        if name is None:
            raise bad_request("multipart field missing name")
        if field.filename:  # aiohttp: an empty filename (no file chosen) is a plain field
            self.out.add(name, await self.spool(field, name))
            return
        value = field.decode(await self.read_raw(field), max_size=self.max_size)
        ctype = field.headers.get("Content-Type")
        if ctype is not None and not ctype.lower().startswith("text/"):
            self.out.add(name, bytearray(value))
            return
        charset = field.get_charset(default="utf-8")
        try:
            self.out.add(name, value.decode(charset))
        except (LookupError, UnicodeDecodeError):
            raise bad_request(f"form field {name!r} is not valid {charset}") from None

    async def read_raw(self, part: BodyPartReader) -> bytearray:
        raw = bytearray()
        while chunk := await part.read_chunk(_CHUNK):
            self.check_size()
            raw += chunk
        return raw

    async def spool(self, part: BodyPartReader, name: str) -> FileField:
        tmp: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=self.spool_max, mode="w+b")  # noqa: SIM115
        self.files.append(tmp)
        written = 0

        async def write(data: bytes) -> None:
            nonlocal written
            written += len(data)
            if written > self.spool_max:  # on disk: keep blocking writes off the event loop
                await self.loop.run_in_executor(None, tmp.write, data)
            else:
                tmp.write(data)

        if part.headers.get("Content-Transfer-Encoding") or part.headers.get("Content-Encoding"):
            # Encoded file parts are rare (RFC 7578 section 4.7 deprecates them): decode whole.
            await write(part.decode(await self.read_raw(part), max_size=self.max_size))
        else:
            while chunk := await part.read_chunk(_CHUNK):
                self.check_size()
                await write(chunk)
        tmp.seek(0)
        ctype = part.headers.get("Content-Type") or "application/octet-stream"
        return FileField(name, part.filename or "", tmp, ctype, part.headers)

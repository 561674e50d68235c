"""``FileResponse``: a file from disk, with validators, conditional requests and ranges.

Owner: bodies-and-files (issue 5). Owns choosing the representation (a precompressed ``.br`` /
``.gz`` sibling when ``Accept-Encoding`` allows it, RFC 9110 section 12.5.3), the validators
(strong ``ETag`` from mtime and size, ``Last-Modified``), the precondition order of RFC 9110
section 13.2.2 (``If-Match`` -> ``If-Unmodified-Since`` -> ``If-None-Match`` ->
``If-Modified-Since`` -> ``If-Range``), byte ranges (RFC 9110 section 14: one range -> 206 with
``Content-Range``, several -> ``multipart/byteranges``, none satisfiable -> 416 with
``Content-Range: bytes */N``) and sending the bytes.

Sending: the file is opened once (in an executor) and that descriptor is what gets sent, so a
file replaced meanwhile cannot mix representations. With a plain socket transport the body goes
by ``sendfile(2)``: ``loop.sendfile`` where the loop implements it (asyncio's selector loop), and
otherwise (uvloop, whose ``loop.sendfile`` raises ``NotImplementedError``) ``os.sendfile`` on a
duplicate of the socket's descriptor, waiting for writability on that duplicate (the transport
owns the original). TLS, response compression, ``FORKLOOP_NOSENDFILE=1`` or a multi-range body
fall back to reading ``chunk_size`` blocks in an executor and writing them through the writer.

Imports: ``.response`` (StreamResponse), ``.helpers`` (ETag/date parsing), ``.exceptions``
(status codes only).
"""

from __future__ import annotations

import asyncio
import datetime
import errno
import mimetypes
import os
import pathlib
import secrets
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import format_datetime
from typing import IO, TYPE_CHECKING, Any, Final

from multidict import CIMultiDict

from .helpers import ETag, parse_etags, parse_http_date
from .response import StreamResponse

if TYPE_CHECKING:
    from .request import BaseRequest
    from .writer import PayloadWriter

__all__ = ["FileResponse"]

DEFAULT_CHUNK_SIZE: Final = 256 * 1024
MAX_RANGES: Final = 100
# Preferred order when the client accepts several (RFC 9110 lets the server choose on ties).
ENCODING_EXTENSIONS: Final = (("br", ".br"), ("gzip", ".gz"))
# A file requested by its compressed name is served as that type, never with Content-Encoding
# (the client asked for the archive, not for transparent decompression).
_ENCODED_TYPES: Final = {
    "gzip": "application/gzip",
    "br": "application/x-brotli",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
}


def _env_nosendfile() -> bool:
    return os.environ.get("FORKLOOP_NOSENDFILE", "") not in ("", "0")


# -- pure decisions ----------------------------------------------------------------------------


def accepted_encodings(accept_encoding: str) -> set[str]:
    """Content-codings with a non-zero quality in ``Accept-Encoding`` (RFC 9110 section 12.5.3)."""
    out: set[str] = set()
    star = False
    refused: set[str] = set()
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        if coding == "*":
            star = q > 0
        elif q > 0:
            out.add(coding)
        else:
            refused.add(coding)
    if star:
        out |= {enc for enc, _ in ENCODING_EXTENSIONS} - refused
    return out


def parse_ranges(value: str, size: int) -> list[tuple[int, int]]:
    """Satisfiable ranges of a ``Range: bytes=...`` value as ``(start, end_exclusive)`` pairs.

    Returns ``[]`` when no range is satisfiable, and raises ``ValueError`` when the value is
    malformed, asks for too many ranges or names a unit other than ``bytes`` (any case), which
    aiohttp answers with 416 as well. Overlapping and adjacent ranges are merged, in ascending
    order (RFC 9110 section 14.2 allows coalescing).
    """
    unit, sep, spec = value.partition("=")
    if not sep:
        raise ValueError("malformed Range header")
    if unit.strip().lower() != "bytes":
        raise ValueError("unknown range unit")
    items = [item.strip() for item in spec.split(",")]
    if len(items) > MAX_RANGES:
        raise ValueError("too many ranges")
    if not any(items):
        raise ValueError("empty Range header")
    ranges = [r for item in items if item and (r := _parse_range(item, size)) is not None]
    ranges.sort()
    merged: list[tuple[int, int]] = []
    for start, end in ranges:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _parse_range(item: str, size: int) -> tuple[int, int] | None:
    """One ``first-last`` / ``first-`` / ``-suffix`` spec; None when unsatisfiable."""
    first, dash, last = item.partition("-")
    first, last = first.strip(), last.strip()
    if not dash or not _digits_or_empty(first) or not _digits_or_empty(last):
        raise ValueError(f"malformed byte range {item!r}")
    if first == "":
        if last == "":
            raise ValueError(f"malformed byte range {item!r}")
        suffix = int(last)
        return (max(0, size - suffix), size) if suffix > 0 and size > 0 else None
    start = int(first)
    end = size if last == "" else int(last) + 1
    if last != "" and end <= start:
        raise ValueError(f"malformed byte range {item!r}")
    return (start, min(end, size)) if start < size else None


def _digits_or_empty(text: str) -> bool:
    # ASCII only: str.isdigit() also takes other scripts' digits, which int() would then read.
    return text == "" or (text.isascii() and text.isdigit())


def _etag_matches(tags: Sequence[ETag], etag: str, *, weak: bool) -> bool:
    for tag in tags:
        if tag.value == "*":
            return True
        if tag.value == etag and (weak or not tag.is_weak):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Plan:
    """What to answer for one file: a status and, for 206, the byte ranges."""

    status: int
    ranges: tuple[tuple[int, int], ...] = ()


def plan(method: str, headers: Mapping[str, str], etag: str, mtime_s: int, size: int) -> Plan:
    """Evaluate preconditions and ``Range`` for a file (RFC 9110 sections 13.2.2 and 14).

    ``etag`` is the opaque tag without quotes; ``mtime_s`` whole seconds since the epoch.
    Statuses: 200, 206 (``ranges``), 304, 412, 416.
    """
    status = _preconditions(method, headers, etag, mtime_s)
    if status:
        return Plan(status)
    range_value = headers.get("Range")
    if method != "GET" or range_value is None:
        return Plan(200)
    if_range = headers.get("If-Range")
    if if_range is not None and not _if_range_matches(if_range.strip(), etag, mtime_s):
        return Plan(200)
    try:
        ranges = parse_ranges(range_value, size)
    except ValueError:
        return Plan(416)
    if not ranges:
        return Plan(416)
    return Plan(206, tuple(ranges))


def _preconditions(method: str, headers: Mapping[str, str], etag: str, mtime_s: int) -> int:
    """304 or 412 when a precondition decides the answer, else 0 (RFC 9110 section 13.2.2)."""
    if_match = parse_etags(headers.get("If-Match"))
    if if_match is not None:
        if not _etag_matches(if_match, etag, weak=False):
            return 412
    else:
        ius = parse_http_date(headers.get("If-Unmodified-Since"))
        if ius is not None and mtime_s > ius.timestamp():
            return 412
    safe = method in ("GET", "HEAD")
    if_none_match = parse_etags(headers.get("If-None-Match"))
    if if_none_match is not None:
        if _etag_matches(if_none_match, etag, weak=True):
            return 304 if safe else 412
    elif safe:
        ims = parse_http_date(headers.get("If-Modified-Since"))
        if ims is not None and mtime_s <= ims.timestamp():
            return 304
    return 0


def _if_range_matches(value: str, etag: str, mtime_s: int) -> bool:
    if value.startswith(('"', "W/")):
        tags = parse_etags(value) or ()
        # If-Range needs a strong comparison (RFC 9110 section 13.1.5).
        return any(not t.is_weak and t.value == etag for t in tags)
    # aiohttp honours the range when the file is not newer than the date (a date in the future
    # included), where RFC 9110 asks for an exact match; a migrating client sees the same answer.
    date = parse_http_date(value)
    return date is not None and mtime_s <= date.timestamp()


def content_type_for(path: pathlib.Path) -> str:
    ctype, encoding = mimetypes.guess_type(path.name)
    if encoding is not None:
        return _ENCODED_TYPES.get(encoding, "application/octet-stream")
    return ctype or "application/octet-stream"


# -- opening (runs in an executor) --------------------------------------------------------


@dataclass(slots=True)
class _Opened:
    file: IO[bytes]
    st: os.stat_result
    encoding: str | None
    has_variants: bool


def _open_representation(path: pathlib.Path, accept_encoding: str) -> _Opened:
    """Open the best representation; raise OSError (404/403) or IsADirectoryError."""
    accepted = accepted_encodings(accept_encoding) if accept_encoding else set()
    has_variants = False
    for encoding, ext in ENCODING_EXTENSIONS:
        sibling = path.with_name(path.name + ext)
        try:
            # Siblings are never followed through symlinks and must be regular files.
            sst = sibling.lstat()
        except OSError:
            continue
        if not stat.S_ISREG(sst.st_mode):
            continue
        has_variants = True
        if encoding in accepted:
            try:
                f = _open_regular(sibling)
            except OSError:
                continue
            return _Opened(f, os.fstat(f.fileno()), encoding, True)
    f = _open_regular(path)
    return _Opened(f, os.fstat(f.fileno()), None, has_variants)


def _open_regular(path: pathlib.Path) -> IO[bytes]:
    # O_NONBLOCK: opening a FIFO must not block the executor thread.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        # A socket cannot be opened at all (ENXIO): refuse it like any special file, 403.
        if exc.errno == errno.ENXIO:
            raise PermissionError(f"{path} is not a regular file") from exc
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(f"{path} is a directory")
            raise PermissionError(f"{path} is not a regular file")
        return open(fd, "rb", buffering=0, closefd=True)
    except BaseException:
        os.close(fd)
        raise


# -- sending -----------------------------------------------------------------------------------


class _SendfileUnavailableError(Exception):
    """This transport/loop cannot do sendfile; use the chunked path."""


async def _wait_buffer_empty(transport: Any) -> None:
    # Bytes still queued in the transport would be overtaken by sendfile; they are the response
    # head at most, so this rarely loops.
    while transport.get_write_buffer_size():
        if transport.is_closing():
            raise ConnectionResetError("connection closed")
        await asyncio.sleep(0.001)


def _wake(waiter: asyncio.Future[None]) -> None:
    # add_writer is level-triggered: it may fire again before the waiter's coroutine runs.
    if not waiter.done():
        waiter.set_result(None)


async def _sendfile_fd(transport: Any, fileno: int, offset: int, count: int) -> int:
    """``os.sendfile`` to a duplicate of the transport's socket (uvloop path)."""
    sock = transport.get_extra_info("socket")
    if sock is None or not hasattr(os, "sendfile"):
        raise _SendfileUnavailableError
    loop = asyncio.get_running_loop()
    await _wait_buffer_empty(transport)
    fd = os.dup(sock.fileno())
    sent = 0
    try:
        while sent < count:
            if transport.is_closing():
                raise ConnectionResetError("connection closed during sendfile")
            try:
                n = os.sendfile(fd, fileno, offset + sent, count - sent)
            except BlockingIOError:
                ready = loop.create_future()
                loop.add_writer(fd, _wake, ready)
                # Wake at least every second to notice a transport closed under us.
                timer = loop.call_later(1.0, _wake, ready)
                try:
                    await ready
                finally:
                    timer.cancel()
                    loop.remove_writer(fd)
                continue
            except (BrokenPipeError, ConnectionError) as exc:
                raise ConnectionResetError(str(exc)) from exc
            if n == 0:  # the file shrank under us
                break
            sent += n
    finally:
        os.close(fd)
    return sent


_LOOP_SENDFILE: dict[type, bool] = {}


async def _sendfile(transport: Any, f: IO[bytes], offset: int, count: int) -> int:
    loop = asyncio.get_running_loop()
    loop_type = type(loop)
    if _LOOP_SENDFILE.get(loop_type, True):
        try:
            return await loop.sendfile(transport, f, offset, count, fallback=False)
        except NotImplementedError:
            _LOOP_SENDFILE[loop_type] = False
        except RuntimeError as exc:  # asyncio: transport not sendfile-compatible
            raise _SendfileUnavailableError from exc
    return await _sendfile_fd(transport, f.fileno(), offset, count)


class FileResponse(StreamResponse):
    """A file from disk (aiohttp's ``web.FileResponse``)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        status: int = 200,
        reason: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status=status, reason=reason, headers=headers)
        self._path = pathlib.Path(path)
        self._chunk_size = chunk_size
        self._sendfile_ok = not _env_nosendfile()
        self.sendfile_used = False  # for tests and benchmarks

    async def prepare(self, request: BaseRequest) -> PayloadWriter | None:
        if self.prepared:
            return await super().prepare(request)
        loop = asyncio.get_running_loop()
        accept = request.headers.get("Accept-Encoding", "")
        try:
            opened = await loop.run_in_executor(None, _open_representation, self._path, accept)
        except (FileNotFoundError, NotADirectoryError):
            return await self._error(request, 404)
        except (PermissionError, IsADirectoryError):
            return await self._error(request, 403)
        except OSError:  # ELOOP and friends: nothing servable there
            return await self._error(request, 404)
        try:
            return await self._prepare_file(request, opened)
        finally:
            # Closing a read-only regular file does not block; doing it inline also holds
            # when this task is being cancelled.
            opened.file.close()

    async def _error(self, request: BaseRequest, status: int) -> PayloadWriter | None:
        # aiohttp answers a file it cannot serve with the bare status: no body.
        self.set_status(status)
        self.content_length = 0
        writer = await super().prepare(request)
        await self.write_eof()
        return writer

    async def _prepare_file(self, request: BaseRequest, opened: _Opened) -> PayloadWriter | None:
        st = opened.st
        size = st.st_size
        etag = f"{st.st_mtime_ns:x}-{size:x}"
        if opened.encoding:
            etag += "-" + opened.encoding
        mtime_s = int(st.st_mtime)
        decision = plan(request.method, request.headers, etag, mtime_s, size)
        headers = self.headers
        headers["ETag"] = f'"{etag}"'
        headers["Last-Modified"] = format_datetime(
            datetime.datetime.fromtimestamp(mtime_s, datetime.UTC), usegmt=True
        )
        if opened.has_variants:
            _add_vary(headers, "Accept-Encoding")
        if decision.status == 304:
            self.set_status(304)
            return await self._finish_empty(request)
        if decision.status == 412:
            self.set_status(412)
            return await self._finish_empty(request)
        headers["Accept-Ranges"] = "bytes"
        ctype = headers.get("Content-Type") or content_type_for(self._path)
        if opened.encoding:
            headers["Content-Encoding"] = opened.encoding
            self._compression = False  # already compressed: never twice
        if decision.status == 416:
            self.set_status(416)
            headers["Content-Range"] = f"bytes */{size}"
            return await self._finish_empty(request)
        if decision.status == 206:
            self._compression = False  # byte ranges are of the file as stored
        if decision.status == 206 and len(decision.ranges) > 1:
            return await self._send_multirange(request, opened, ctype, decision.ranges)
        headers["Content-Type"] = ctype
        offset, count = 0, size
        if decision.status == 206:
            start, end = decision.ranges[0]
            offset, count = start, end - start
            self.set_status(206)
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        self.content_length = count
        writer = await super().prepare(request)
        if writer is None:
            return None
        if request.method != "HEAD" and count:
            await self._send_range(request, writer, opened.file, offset, count)
        await self.write_eof()
        return writer

    async def _finish_empty(self, request: BaseRequest) -> PayloadWriter | None:
        self.headers.pop("Content-Type", None)
        self.content_length = 0
        writer = await super().prepare(request)
        await self.write_eof()
        return writer

    async def _send_multirange(
        self,
        request: BaseRequest,
        opened: _Opened,
        ctype: str,
        ranges: Sequence[tuple[int, int]],
    ) -> PayloadWriter | None:
        boundary = secrets.token_hex(16)
        size = opened.st.st_size
        heads = [
            (
                ("\r\n" if i else "")
                + f"--{boundary}\r\nContent-Type: {ctype}\r\n"
                + f"Content-Range: bytes {start}-{end - 1}/{size}\r\n\r\n"
            ).encode("latin-1")
            for i, (start, end) in enumerate(ranges)
        ]
        tail = f"\r\n--{boundary}--\r\n".encode("latin-1")
        self.set_status(206)
        self.headers["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
        self.content_length = sum(map(len, heads)) + sum(e - s for s, e in ranges) + len(tail)
        writer = await super().prepare(request)
        if writer is None:
            return None
        if request.method != "HEAD":
            for head, (start, end) in zip(heads, ranges, strict=True):
                await writer.write(head)
                await self._send_chunks(writer, opened.file, start, end - start)
            await writer.write(tail)
        await self.write_eof()
        return writer

    def _can_sendfile(self, request: BaseRequest) -> bool:
        if not self._sendfile_ok or getattr(self, "_compression", False):
            return False
        transport = request.transport
        return transport is not None and transport.get_extra_info("sslcontext") is None

    async def _send_range(
        self, request: BaseRequest, writer: PayloadWriter, f: IO[bytes], offset: int, count: int
    ) -> None:
        if self._can_sendfile(request):
            await writer.drain()  # flushes the head
            transport = request.transport
            try:
                sent = await _sendfile(transport, f, offset, count)
            except _SendfileUnavailableError:
                pass
            else:
                self.sendfile_used = True
                writer.note_sendfile(sent)
                if sent < count:  # truncated file: the framing promised more; close
                    raise ConnectionResetError("file shrank while it was being sent")
                return
        await self._send_chunks(writer, f, offset, count)

    async def _send_chunks(
        self, writer: PayloadWriter, f: IO[bytes], offset: int, count: int
    ) -> None:
        loop = asyncio.get_running_loop()
        fd = f.fileno()
        chunk_size = self._chunk_size
        while count > 0:
            data = await loop.run_in_executor(None, os.pread, fd, min(chunk_size, count), offset)
            if not data:
                raise ConnectionResetError("file shrank while it was being sent")
            await writer.write(data)
            offset += len(data)
            count -= len(data)


def _add_vary(headers: CIMultiDict[str], value: str) -> None:
    current = headers.get("Vary")
    if current is None:
        headers["Vary"] = value
    elif value.lower() not in {v.strip().lower() for v in current.split(",")}:
        headers["Vary"] = f"{current}, {value}"

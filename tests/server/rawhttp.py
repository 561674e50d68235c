"""Test helpers: a raw HTTP/1.1 client over asyncio streams, a strict response parser, and a
runner of a low-level ``Server`` on 127.0.0.1 port 0.

Shared by tests/server and tests/core_web (their conftest puts this folder on ``sys.path``).
Everything here is bounded in time: every read has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from multidict import CIMultiDict

from forkloop.core.web.lowlevel import Server
from forkloop.core.web.runner import ServerRunner, TCPSite

READ_TIMEOUT_S = 10.0


class Incomplete(Exception):
    """The bytes end before a complete response."""


@dataclasses.dataclass
class RawResponse:
    status_line: bytes
    version: str
    status: int
    reason: str
    headers: CIMultiDict[str]
    raw_headers: list[tuple[str, str]]
    body: bytes
    framing: str  # "length", "chunked", "close" or "none"

    @property
    def closes(self) -> bool:
        return "close" in self.headers.get("Connection", "").lower()

    def text(self) -> str:
        return self.body.decode("utf-8")


def _body_forbidden(method: str, status: int) -> bool:
    return method == "HEAD" or status < 200 or status in (204, 304)


def parse_response(
    data: bytes, method: str = "GET", *, eof: bool = False
) -> tuple[RawResponse, bytes]:
    """Parse one response off the front of ``data``; return it and the bytes after it.

    Raises Incomplete when more bytes are needed (``eof`` says none will come), and
    AssertionError on a malformed response: a test should fail on those.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise Incomplete(data)
    head, rest = data[:end], data[end + 4 :]
    lines = head.split(b"\r\n")
    status_line = lines[0]
    parts = status_line.decode("latin-1").split(" ", 2)
    assert len(parts) >= 2, status_line
    assert parts[0] in ("HTTP/1.1", "HTTP/1.0"), status_line
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers: CIMultiDict[str] = CIMultiDict()
    raw: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.decode("utf-8", "surrogateescape").partition(":")
        assert colon, f"malformed header line {line!r}"
        assert name, f"malformed header name {line!r}"
        assert name == name.strip(), f"malformed header name {line!r}"
        headers.add(name, value.strip())
        raw.append((name, value.strip()))
    te = headers.getall("Transfer-Encoding", [])
    lengths = headers.getall("Content-Length", [])
    assert not (te and lengths), "a response must not carry both Content-Length and TE"
    assert len(lengths) <= 1, "duplicate Content-Length in a response"
    if _body_forbidden(method, status):
        body, framing = b"", "none"
    elif te:
        assert [t.lower() for t in te] == ["chunked"], te
        body, rest = _dechunk(rest)
        framing = "chunked"
    elif lengths:
        size = int(lengths[0])
        if len(rest) < size:
            raise Incomplete(data)
        body, rest = rest[:size], rest[size:]
        framing = "length"
    else:
        if not eof:
            raise Incomplete(data)
        body, rest = rest, b""
        framing = "close"
    response = RawResponse(status_line, parts[0], status, reason, headers, raw, body, framing)
    return response, rest


def _dechunk(data: bytes) -> tuple[bytes, bytes]:
    body = bytearray()
    pos = 0
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            raise Incomplete(data)
        size = int(data[pos:line_end].split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = data.find(b"\r\n", pos)
            if trailer_end < 0:
                raise Incomplete(data)
            assert trailer_end == pos, "unexpected trailers in a response"
            return bytes(body), data[pos + 2 :]
        if len(data) < pos + size + 2:
            raise Incomplete(data)
        body += data[pos : pos + size]
        assert data[pos + size : pos + size + 2] == b"\r\n", "bad chunk terminator"
        pos += size + 2


def parse_all(data: bytes, methods: list[str] | None = None) -> list[RawResponse]:
    """Every complete response in ``data`` (read until the server closed)."""
    responses = []
    index = 0
    while data:
        method = methods[index] if methods and index < len(methods) else "GET"
        response, data = parse_response(data, method, eof=True)
        responses.append(response)
        index += 1
    return responses


class RawClient:
    """One TCP connection speaking bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer = b""

    @classmethod
    async def connect(cls, host: str, port: int, **kwargs: Any) -> RawClient:
        reader, writer = await asyncio.open_connection(host, port, **kwargs)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def _read_more(self, wait_s: float) -> bool:
        """Read some bytes into the buffer; False at EOF (or reset)."""
        try:
            chunk = await asyncio.wait_for(self.reader.read(65536), wait_s)
        except (ConnectionResetError, BrokenPipeError):
            return False
        if not chunk:
            return False
        self.buffer += chunk
        return True

    async def response(self, method: str = "GET", timeout_s: float = READ_TIMEOUT_S) -> RawResponse:
        """The next complete response."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        eof = False
        while True:
            try:
                response, self.buffer = parse_response(self.buffer, method, eof=eof)
            except Incomplete:
                if eof:
                    raise
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError(f"no complete response; got {self.buffer[:300]!r}") from None
                eof = not await self._read_more(remaining)
            else:
                return response

    async def read_exactly_buffered(self, size: int, timeout_s: float = READ_TIMEOUT_S) -> bytes:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(self.buffer) < size:
            remaining = deadline - loop.time()
            if remaining <= 0 or not await self._read_more(remaining):
                break
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    async def read_until_closed(self, timeout_s: float = READ_TIMEOUT_S) -> bytes:
        """Everything until the server closes; TimeoutError if it does not close in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"the server did not close; got {self.buffer[:300]!r}")
            if not await self._read_more(remaining):
                data, self.buffer = self.buffer, b""
                return data

    async def is_closed(self, wait: float = 0.3) -> bool:
        """True when the server has closed (EOF within ``wait``); False while it stays open."""
        try:
            more = await self._read_more(wait)
        except TimeoutError:
            return False
        if more:
            raise AssertionError(f"unexpected bytes from the server: {self.buffer[:300]!r}")
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


Handler = Callable[[Any], Awaitable[Any]]


@dataclasses.dataclass
class Served:
    host: str
    port: int
    server: Server
    runner: ServerRunner
    clients: list[RawClient] = dataclasses.field(default_factory=list)

    async def client(self) -> RawClient:
        """A new connection; closed when the server is torn down."""
        client = await RawClient.connect(self.host, self.port)
        self.clients.append(client)
        return client

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextlib.asynccontextmanager
async def serving(
    handler: Handler, *, shutdown_timeout: float = 2.0, **server_kwargs: Any
) -> AsyncIterator[Served]:
    """A ``Server(handler)`` behind ``ServerRunner`` + ``TCPSite`` on 127.0.0.1, port 0."""
    server = Server(handler, **server_kwargs)
    runner = ServerRunner(server, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    served = Served(host, port, server, runner)
    try:
        yield served
    finally:
        for client in served.clients:
            await client.close()
        if runner.server is not None:
            await runner.cleanup()


def request_bytes(
    path: str = "/",
    method: str = "GET",
    *,
    version: str = "1.1",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: test"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None and not any(k.lower() == "transfer-encoding" for k in headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")

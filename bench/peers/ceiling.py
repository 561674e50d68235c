"""The "ceiling": uvloop + httptools and a canned response, no framework at all.

No Python HTTP server on this stack can be faster than this, so it bounds what forkloop may
hope for. It parses each request with httptools (so pipelined and split requests work), answers
``/json`` and ``/`` from prebuilt bytes (the Date header is rebuilt once a second, so the
response has the same size as a real server's), honours keep-alive, and nothing else.

    python bench/peers/ceiling.py --port 8083
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from email.utils import formatdate
from typing import cast

import httptools
import uvloop

PLAIN = b"Hello, World!"
JSON = b'{"message": "Hello, World!"}'


def canned(status: bytes, content_type: bytes, body: bytes, date: bytes) -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Type: "
        + content_type
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nDate: "
        + date
        + b"\r\n\r\n"
        + body
    )


class Responses:
    """The canned responses, with a Date header refreshed once a second."""

    def __init__(self) -> None:
        self.by_path: dict[bytes, bytes] = {}
        self.not_found = b""
        self.refresh()

    def refresh(self) -> None:
        date = formatdate(usegmt=True).encode()
        self.by_path = {
            b"/": canned(b"200 OK", b"text/plain; charset=utf-8", PLAIN, date),
            b"/json": canned(b"200 OK", b"application/json; charset=utf-8", JSON, date),
        }
        self.not_found = canned(b"404 Not Found", b"text/plain", b"Not Found", date)


RESPONSES = Responses()
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class CeilingProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(BAD_REQUEST)
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        if self.transport is None:
            return
        path = self.url.split(b"?", 1)[0]
        self.transport.write(RESPONSES.by_path.get(path, RESPONSES.not_found))
        if not self.parser.should_keep_alive():
            self.transport.close()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()

    def on_signal() -> None:
        if not stop.done():
            stop.set_result(None)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)

    def tick() -> None:
        RESPONSES.refresh()
        timer[0] = loop.call_later(1.0, tick)

    timer = [loop.call_later(1.0, tick)]
    server = await loop.create_server(CeilingProtocol, host, port, backlog=1024)
    try:
        await stop
    finally:
        timer[0].cancel()
        server.close()
        await server.wait_closed()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()

"""Helpers for static-file tests: a file tree with secrets outside it, servers, a raw client."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from forkloop import web

Serve = Callable[[web.Application], Awaitable[str]]
SECRET = b"TOP-SECRET-do-not-serve"


def make_tree(base: Path) -> Path:
    """``base/root`` to serve, with secrets in ``base/outside`` and ``base/root_evil``."""
    root = base / "root"
    outside = base / "outside"
    evil = base / "root_evil"  # shares the root's name as a prefix: commonpath, not startswith
    for d in (root / "sub" / "deep", outside, evil):
        d.mkdir(parents=True)
    (outside / "secret.txt").write_bytes(SECRET)
    (evil / "secret.txt").write_bytes(SECRET)
    (root / "a.txt").write_text("hello static\n")
    (root / "index.html").write_text("<h1>hi</h1>")
    (root / "sp ace é.txt").write_text("spaced\n")
    (root / "<b onload=x>&'q'.txt").write_text("xss\n")
    (root / "sub" / "b.js").write_text("var b = 1;\n")
    (root / "sub" / "deep" / "c.css").write_text("body{}\n")
    (root / "link_in").symlink_to(root / "a.txt")
    (root / "link_out").symlink_to(outside / "secret.txt")
    (root / "dirlink_out").symlink_to(outside, target_is_directory=True)
    (root / "loop1").symlink_to(root / "loop2")
    (root / "loop2").symlink_to(root / "loop1")
    return root


async def raw_get(
    base_url: str, target: str | bytes, method: str = "GET", extra: str = ""
) -> bytes:
    """One raw request (the target sent verbatim, no client normalisation); read to EOF."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    raw_target = target if isinstance(target, bytes) else target.encode("latin-1")
    try:
        writer.write(
            method.encode()
            + b" "
            + raw_target
            + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
            + extra.encode()
            + b"\r\n"
        )
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def split_response(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split(" ")[1]), headers, body


@contextlib.contextmanager
def serve_in_thread(make_app: Callable[[], web.Application], *, use_uvloop: bool) -> Iterator[str]:
    """Run an app in its own thread and event loop (uvloop or asyncio); yield its base URL."""
    ready = threading.Event()
    box: dict[str, object] = {}

    async def main() -> None:
        runner = web.AppRunner(make_app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        stop = asyncio.Event()
        box["loop"] = asyncio.get_running_loop()
        box["stop"] = stop
        box["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
        ready.set()
        await stop.wait()
        await runner.cleanup()

    def run() -> None:
        if use_uvloop:
            import uvloop

            uvloop.run(main())
        else:
            asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("server thread did not start")
    try:
        yield str(box["url"])
    finally:
        loop = box["loop"]
        assert isinstance(loop, asyncio.AbstractEventLoop)
        stop = box["stop"]
        assert isinstance(stop, asyncio.Event)
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


def no_secret(response: bytes) -> bool:
    return SECRET not in response and b"root:x:0:0" not in response

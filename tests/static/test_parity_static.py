"""Differential tests of static files and ``FileResponse``: the same app built from
``aiohttp.web`` and ``forkloop.web``, served on real sockets, asked the same raw requests; the
answers must match (issue 16, group 5)."""

from __future__ import annotations

import contextlib
import email.utils
import os
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiohttp import web as aio_web
from static_helpers import make_tree, raw_get, split_response
from test_static_traversal import CORPUS

from forkloop import web as fl_web

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@contextlib.asynccontextmanager
async def served(web: ModuleType, app: Any) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def answers(
    web: ModuleType, make_app: Any, requests: list[tuple[str | bytes, str]]
) -> list[tuple[Any, ...]]:
    """``(target, extra, status, compared headers, body)`` for each raw ``(target, extra)``."""
    out = []
    async with served(web, make_app(web)) as base:
        for target, extra in requests:
            status, headers, body = split_response(await raw_get(base, target, extra=extra))
            kept = {k: headers.get(k) for k in ("content-range", "content-type")}
            if status >= 400:  # error pages: the status is compared, not the page (see doc)
                kept, body = {"content-range": kept["content-range"]}, b""
            out.append((target, extra, status, kept, body))
    return out


def assert_same(expected: list[tuple[Any, ...]], got: list[tuple[Any, ...]]) -> None:
    mismatches = [(e, g) for e, g in zip(expected, got, strict=True) if e != g]
    assert not mismatches, "\n".join(f"aiohttp : {e}\nforkloop: {g}" for e, g in mismatches)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = make_tree(tmp_path)
    (root / '"quoted".txt').write_text("q\n")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock"))  # a socket file: neither servable nor a directory
    yield root
    sock.close()


# aiohttp's parser refuses a raw NUL in the target before routing (400), forkloop's with 400 too;
# both are outside the static resource.
HOSTILE = [t for t in CORPUS if not isinstance(t, bytes)]


@pytest.mark.parametrize("follow_symlinks", [False, True])
async def test_hostile_paths_and_indexes_answer_like_aiohttp(
    tree: Path, follow_symlinks: bool
) -> None:
    def make_app(web: ModuleType) -> Any:
        app = web.Application()
        app.router.add_static("/static", tree, show_index=True, follow_symlinks=follow_symlinks)
        return app

    targets = [
        *HOSTILE,
        "/static",
        "/static/",
        "/static/sub",
        "/static/sub/",
        "/static/sub/..",
        "/static/sub/./deep/",
        "/static/sub/deep//c.css",
        "/static/a.txt",
        "/static/sock",
    ]
    if follow_symlinks:  # following links out of the root is the option's purpose
        targets = [t for t in targets if "link_out" not in t]
    requests: list[tuple[str | bytes, str]] = [(t, "") for t in targets]
    expected = await answers(aio_web, make_app, requests)
    got = await answers(fl_web, make_app, requests)
    assert {e[2] for e in expected} == {200, 403, 404}
    assert_same(expected, got)


async def test_ranges_and_if_range_answer_like_aiohttp(tree: Path) -> None:
    data = tree / "data.bin"
    data.write_bytes(bytes(range(100)))
    mtime = float(int(time.time()) - 3600)  # whole seconds: see the If-Range note in the doc
    os.utime(data, (mtime, mtime))

    def http_date(ts: float) -> str:
        return email.utils.formatdate(ts, usegmt=True)

    def make_app(web: ModuleType) -> Any:
        async def handler(request: Any) -> Any:
            return web.FileResponse(data)

        app = web.Application()
        app.router.add_get("/f", handler)
        return app

    extras = [
        "Range: bytes=10-19\r\n",
        "Range: Bytes=10-19\r\n",
        "Range: items=0-1\r\n",  # an unknown unit
        "Range: bytes=500-\r\n",
        "Range: bytes=-5\r\n",
        "Range: bytes=abc\r\n",
        f"Range: bytes=10-19\r\nIf-Range: {http_date(mtime + 86400 * 365)}\r\n",  # future
        f"Range: bytes=10-19\r\nIf-Range: {http_date(mtime)}\r\n",
        f"Range: bytes=10-19\r\nIf-Range: {http_date(mtime - 86400)}\r\n",  # older: whole file
    ]
    requests: list[tuple[str | bytes, str]] = [("/f", extra) for extra in extras]
    expected = await answers(aio_web, make_app, requests)
    got = await answers(fl_web, make_app, requests)
    assert [e[2] for e in expected] == [206, 206, 416, 416, 206, 416, 206, 206, 200]
    assert_same(expected, got)

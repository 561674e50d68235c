"""The seed's streaming upload example (aiohttp docs, ``store_mp3_handler``) with 200 MB."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from mp_helpers import Serve

from forkloop import web

SIZE = 200 * 1024 * 1024
CHUNK = 1024 * 1024


def make_handler(spool: Path):  # type: ignore[no-untyped-def]
    # The documented example, unchanged but for the spool directory.
    async def store_mp3_handler(request: web.Request) -> web.Response:
        reader = await request.multipart()

        # /!\ Don't forget to validate your inputs /!\

        # reader.next() will `yield` the fields of your form

        field = await reader.next()
        assert field.name == "name"
        name = await field.read(decode=True)

        field = await reader.next()
        assert field.name == "mp3"
        filename = field.filename
        # You cannot rely on Content-Length if transfer is chunked.
        size = 0
        with open(os.path.join(spool, filename), "wb") as f:  # noqa: ASYNC230 - as documented
            while True:
                chunk = await field.read_chunk()  # 8192 bytes by default.
                if not chunk:
                    break
                size += len(chunk)
                f.write(chunk)

        return web.Response(
            text=f"{filename} sized of {size} successfully stored ({name.decode()})"
        )

    return store_mp3_handler


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_store_mp3_handler_200mb(serve: Serve, tmp_path: Path) -> None:
    app = web.Application()
    app.router.add_post("/upload", make_handler(tmp_path))
    base = await serve(app)
    digest = hashlib.sha256()
    block = os.urandom(CHUNK)

    async def generate() -> AsyncIterator[bytes]:
        # Data generated on the fly: every chunk differs (a counter prefix), nothing on disk.
        for i in range(SIZE // CHUNK):
            chunk = i.to_bytes(8, "big") + block[8:]
            digest.update(chunk)
            yield chunk

    with aiohttp.MultipartWriter("form-data") as mpwriter:
        part = mpwriter.append("Tommy")
        part.set_content_disposition("form-data", name="name")
        part = mpwriter.append(generate(), {"Content-Type": "audio/mpeg"})
        part.set_content_disposition("form-data", name="mp3", filename="song.mp3")
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(base + "/upload", data=mpwriter) as resp,
        ):
            assert resp.status == 200
            assert await resp.text() == (f"song.mp3 sized of {SIZE} successfully stored (Tommy)")
        stored = tmp_path / "song.mp3"
        assert stored.stat().st_size == SIZE
        on_disk = hashlib.sha256()
        with stored.open("rb") as f:
            while block_read := f.read(1 << 20):
                on_disk.update(block_read)
        assert on_disk.hexdigest() == digest.hexdigest()
    finally:
        (tmp_path / "song.mp3").unlink(missing_ok=True)

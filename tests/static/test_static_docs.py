"""The programs in docs/static.md and docs/forms.md run and do what the pages say."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
from static_helpers import Serve

from forkloop import web

DOCS = Path(__file__).resolve().parents[2] / "docs"


def programs(page: str) -> dict[str, str]:
    """The fenced python blocks of a page, by the file name in their first comment line."""
    text = (DOCS / page).read_text()
    out = {}
    for block in re.findall(r"```python\n(.*?)```", text, re.DOTALL):
        name = re.match(r"# (\S+\.py)", block)
        if name:
            out[name.group(1)] = block
    return out


def load(code: str, path: Path) -> dict[str, Any]:
    path.write_text(code)
    namespace: dict[str, Any] = {"__name__": "doc_program", "__file__": str(path)}
    exec(compile(code, str(path), "exec"), namespace)
    return namespace


async def test_static_site(serve: Serve, tmp_path: Path) -> None:
    ns = load(programs("static.md")["static_site.py"], tmp_path / "static_site.py")
    base = await serve(ns["app"])
    async with aiohttp.ClientSession() as session:
        async with session.get(base + "/") as r:
            page = await r.text()
        href = re.search(r'href="([^"]+)"', page)
        assert href is not None
        assert "?v=" in href.group(1)
        async with session.get(base + href.group(1)) as r:
            assert r.status == 200
            assert "add_static" in await r.text()
        async with session.get(base + "/static/") as r:
            assert "static_site.py" in await r.text()


async def test_download(serve: Serve, tmp_path: Path) -> None:
    ns = load(programs("static.md")["download.py"], tmp_path / "download.py")
    base = await serve(ns["app"])
    async with aiohttp.ClientSession() as session, session.get(base + "/download") as r:
        assert r.headers["Content-Disposition"] == "attachment"
        assert "FileResponse" in await r.text()


async def test_upload_form(serve: Serve, tmp_path: Path) -> None:
    ns = load(programs("forms.md")["upload_form.py"], tmp_path / "upload_form.py")
    base = await serve(ns["app"])
    form = aiohttp.FormData()
    form.add_field("title", "hello")
    form.add_field("photo", b"\x89PNG", filename="p.png", content_type="image/png")
    async with aiohttp.ClientSession() as session:
        async with session.get(base + "/") as r:
            assert 'enctype="multipart/form-data"' in await r.text()
        async with session.post(base + "/", data=form) as r:
            assert await r.text() == "'hello': p.png (image/png, 4 bytes)"


async def test_streaming_upload(serve: Serve, tmp_path: Path) -> None:
    ns = load(programs("forms.md")["streaming_upload.py"], tmp_path / "streaming_upload.py")
    ns["SPOOL"] = str(tmp_path)
    base = await serve(ns["app"])
    form = aiohttp.FormData()
    form.add_field("name", "song")
    form.add_field("mp3", b"ID3" * 1000, filename="song.mp3", content_type="audio/mpeg")
    async with aiohttp.ClientSession() as session, session.post(base + "/upload", data=form) as r:
        assert await r.text() == "song.mp3 sized of 3000 successfully stored (song)"
    assert (tmp_path / "song.mp3").read_bytes() == b"ID3" * 1000


def test_pages_have_the_programs() -> None:
    assert set(programs("static.md")) == {"static_site.py", "download.py"}
    assert set(programs("forms.md")) == {"upload_form.py", "streaming_upload.py"}
    assert isinstance(web.FileField, type)

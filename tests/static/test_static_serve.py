"""``add_static`` / ``web.static``: files, HEAD, directories, indexes, symlinks, versions."""

from __future__ import annotations

import base64
import hashlib
import html
from pathlib import Path

import aiohttp
import pytest
from static_helpers import Serve, raw_get, split_response

from forkloop import web
from forkloop.core.web.static import StaticResource


async def test_get_and_head(serve: Serve, root: Path) -> None:
    app = web.Application()
    app.router.add_static("/static", root)
    base = await serve(app)
    async with aiohttp.ClientSession() as session:
        async with session.get(base + "/static/a.txt") as r:
            assert r.status == 200
            assert await r.text() == "hello static\n"
            assert r.headers["Content-Type"].startswith("text/plain")
            assert r.headers["Accept-Ranges"] == "bytes"
            assert r.headers["ETag"].startswith('"')
            assert "Last-Modified" in r.headers
        async with session.get(base + "/static/sub/deep/c.css") as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "text/css"
        async with session.get(base + "/static/sp%20ace%20%C3%A9.txt") as r:
            assert r.status == 200
            assert await r.text() == "spaced\n"
        async with session.get(base + "/static/link_in") as r:  # symlink inside the root
            assert await r.text() == "hello static\n"
        async with session.get(base + "/static/missing.txt") as r:
            assert r.status == 404
        async with session.post(base + "/static/a.txt") as r:
            assert r.status == 405
            assert set(r.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}
    status, headers, body = split_response(await raw_get(base, "/static/a.txt", "HEAD"))
    assert status == 200
    assert headers["content-length"] == "13"
    assert body == b""


async def test_directories_forbidden_without_index(serve: Serve, root: Path) -> None:
    app = web.Application()
    app.router.add_static("/static", root)
    base = await serve(app)
    for target in ("/static", "/static/", "/static/sub", "/static/sub/"):
        status, _, _ = split_response(await raw_get(base, target))
        assert status == 403, target


async def test_show_index_lists_escaped_names(serve: Serve, root: Path) -> None:
    app = web.Application()
    app.router.add_static("/static", root, show_index=True)
    base = await serve(app)
    async with aiohttp.ClientSession() as session:
        async with session.get(base + "/static/") as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/html")
            page = await r.text()
        async with session.get(base + "/static/sub") as r:
            sub_page = await r.text()
    assert "<title>Index of /.</title>" in page  # aiohttp's title: the directory under the root
    assert "<title>Index of /sub</title>" in sub_page
    assert '<a href="/static/a.txt">a.txt</a>' in page
    assert '<a href="/static/sub">sub/</a>' in page
    assert "<b onload" not in page  # a hostile file name is escaped, never markup
    assert html.escape("<b onload=x>&'q'.txt") in page
    assert "href=\"/static/%3Cb%20onload=x%3E&'q'.txt\"" in page  # '"<>' are %-encoded
    assert 'href="/static/sp%20ace%20%C3%A9.txt"' in page
    assert '<a href="/static/sub/b.js">b.js</a>' in sub_page
    assert '<a href="/static/sub/deep">deep/</a>' in sub_page


async def test_symlinks_out_need_follow_symlinks(serve: Serve, root: Path) -> None:
    strict = web.Application()
    strict.router.add_static("/static", root)
    loose = web.Application()
    loose.router.add_static("/static", root, follow_symlinks=True)
    base_strict, base_loose = await serve(strict), await serve(loose)
    async with aiohttp.ClientSession() as session:
        async with session.get(base_strict + "/static/dirlink_out/secret.txt") as r:
            assert r.status == 404
        async with session.get(base_loose + "/static/dirlink_out/secret.txt") as r:
            assert r.status == 200


async def test_url_for_append_version(serve: Serve, root: Path) -> None:
    app = web.Application()
    resource = app.router.add_static("/static", root, name="static", append_version=False)
    assert isinstance(resource, StaticResource)
    digest = base64.urlsafe_b64encode(hashlib.sha256(b"hello static\n").digest()).decode()
    assert str(resource.url_for(filename="a.txt")) == "/static/a.txt"
    url = app.router["static"].url_for(filename="a.txt", append_version=True)
    assert url.path == "/static/a.txt"
    assert url.query["v"] == digest
    assert str(resource.url_for(filename="sp ace é.txt")) == "/static/sp%20ace%20%C3%A9.txt"
    # Missing files and escapes get no version (and reveal nothing).
    assert str(resource.url_for(filename="missing.txt", append_version=True)) == (
        "/static/missing.txt"
    )
    assert "v=" not in str(resource.url_for(filename="link_out", append_version=True))
    versioned = app.router.add_static("/v", root, append_version=True)
    assert versioned.url_for(filename="/a.txt").query["v"] == digest
    assert str(versioned.url_for(filename="a.txt", append_version=False)) == "/v/a.txt"
    # The version follows the content.
    (root / "a.txt").write_text("changed\n")
    assert digest not in str(versioned.url_for(filename="a.txt"))
    base = await serve(app)
    async with (
        aiohttp.ClientSession() as session,
        session.get(base + str(versioned.url_for(filename="a.txt"))) as r,
    ):
        assert await r.text() == "changed\n"


async def test_web_static_route_def_and_options(serve: Serve, root: Path) -> None:
    app = web.Application()
    app.add_routes([web.static("/assets", root, chunk_size=1024, name="assets")])
    resource = app.router["assets"]
    assert isinstance(resource, StaticResource)
    assert resource.get_info()["directory"] == root.resolve()  # noqa: ASYNC240
    assert resource.get_info()["prefix"] == "/assets"

    async def options(request: web.Request) -> web.Response:
        return web.Response(text="opts")

    resource.set_options_route(options)
    with pytest.raises(RuntimeError):
        resource.set_options_route(options)
    big = root / "big.bin"
    big.write_bytes(bytes(range(256)) * 4096)
    base = await serve(app)
    async with aiohttp.ClientSession() as session:
        async with session.get(base + "/assets/big.bin") as r:
            assert await r.read() == big.read_bytes()
        async with session.options(base + "/assets/a.txt") as r:
            assert await r.text() == "opts"


def test_constructor_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        StaticResource("/s", tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="is not a directory"):
        StaticResource("/s", tmp_path / "f")
    r = StaticResource("/s", tmp_path, name="n")
    assert "StaticResource" in repr(r)
    assert len(r) == 2
    assert {route.method for route in r} == {"GET", "HEAD"}


async def test_static_in_a_sub_application(serve: Serve, root: Path) -> None:
    sub = web.Application()
    resource = sub.router.add_static("/static", root, name="files")
    app = web.Application()
    app.add_subapp("/sub", sub)
    assert str(resource.url_for(filename="a.txt")) == "/sub/static/a.txt"
    base = await serve(app)
    async with aiohttp.ClientSession() as session:
        async with session.get(base + "/sub/static/a.txt") as r:
            assert await r.text() == "hello static\n"
        async with session.get(base + "/static/a.txt") as r:
            assert r.status == 404


async def test_static_at_the_root_prefix_leaves_other_routes_alone(
    serve: Serve, root: Path
) -> None:
    async def about(request: web.Request) -> web.Response:
        return web.Response(text="about page")

    app = web.Application()
    app.router.add_get("/about", about)
    resource = app.router.add_static("/", root)
    assert str(resource.url_for(filename="sub/b.js")) == "/sub/b.js"
    base = await serve(app)
    async with aiohttp.ClientSession() as session:
        async with session.get(base + "/a.txt") as r:
            assert await r.text() == "hello static\n"
        async with session.get(base + "/sub/b.js") as r:
            assert await r.text() == "var b = 1;\n"
        async with session.get(base + "/about") as r:
            assert await r.text() == "about page"
    status, _, _ = split_response(await raw_get(base, "/../outside/secret.txt"))
    assert status == 404

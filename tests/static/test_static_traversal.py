"""A corpus of hostile paths: none may ever read a file outside the static root."""

from __future__ import annotations

from pathlib import Path

import pytest
from static_helpers import SECRET, Serve, no_secret, raw_get, status_of

from forkloop import web
from forkloop.core.web.static import UnsafePathError, resolve_static_path, split_static_tail

SECRET_FILE = "outside/secret.txt"
CORPUS: list[str | bytes] = [
    "/static/../outside/secret.txt",
    "/static/../../etc/passwd",
    "/static/%2e%2e/outside/secret.txt",
    "/static/%2E%2E/outside/secret.txt",
    "/static/.%2e/outside/secret.txt",
    "/static/%2e./outside/secret.txt",
    "/static/..%2foutside%2fsecret.txt",
    "/static/..%2Foutside%2Fsecret.txt",
    "/static/%2e%2e%2foutside%2fsecret.txt",
    "/static/..%5coutside%5csecret.txt",
    "/static/..\\outside\\secret.txt",
    "/static/%5c..%5coutside%5csecret.txt",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/static/%2Fetc/passwd",
    "/static/C:%5cWindows%5cwin.ini",
    "/static/C:/Windows/win.ini",
    "/static/c:\\windows\\win.ini",
    "/static/a.txt%00.png",
    "/static/%00",
    "/static/../outside/secret.txt%00",
    "/static/%252e%252e/outside/secret.txt",
    "/static/%c0%ae%c0%ae/outside/secret.txt",
    "/static/%c0%afetc%c0%afpasswd",
    "/static/..%c0%afoutside/secret.txt",
    "/static/%u002e%u002e/outside/secret.txt",
    "/static/sub/../../outside/secret.txt",
    "/static/sub/%2e%2e/%2e%2e/outside/secret.txt",
    "/static/./../outside/secret.txt",
    "/static/sub/./../../outside/secret.txt",
    "/static/..;/outside/secret.txt",
    "/static/....//....//outside/secret.txt",
    "/static/link_out",
    "/static/dirlink_out/secret.txt",
    "/static/../root_evil/secret.txt",
    "/static/%2e%2e%5c%2e%2e%5coutside%5csecret.txt",
    "/static/.../outside/secret.txt",
    "/static/%2e%2e%00/outside/secret.txt",
    "/static/sub%2f..%2f..%2foutside%2fsecret.txt",
    "http://t/static/../outside/secret.txt",
    "/static/%E2%80%A5/outside/secret.txt",
    "/static/%EF%BC%8E%EF%BC%8E/outside/secret.txt",
    "/static/..%255c..%255coutside%255csecret.txt",
    "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    b"/static/\x00/../outside/secret.txt",
    "/static/a.txt/../../outside/secret.txt",
    "/static/sub/deep/../../../outside/secret.txt",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/loop1",
    "/static/%2e%2e",
    "/static/..",
    "/static/sub/..",
    "/static/~/../outside/secret.txt",
    "/static/%7e/../../outside/secret.txt",
    "/static/..%09/outside/secret.txt",
    "/static/%0d%0a../outside/secret.txt",
]
SYMLINKS = {"/static/link_out", "/static/dirlink_out/secret.txt"}


def test_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 40
    assert len(set(CORPUS)) == len(CORPUS)


@pytest.mark.parametrize("follow_symlinks", [False, True])
@pytest.mark.parametrize("show_index", [False, True])
async def test_hostile_paths_never_leave_the_root(
    serve: Serve, root: Path, follow_symlinks: bool, show_index: bool
) -> None:
    app = web.Application()
    app.router.add_static("/static", root, follow_symlinks=follow_symlinks, show_index=show_index)
    base = await serve(app)
    statuses = {}
    for target in CORPUS:
        if follow_symlinks and target in SYMLINKS:
            continue  # following symlinks out of the root is what the option is for
        resp = await raw_get(base, target)
        assert no_secret(resp), target
        statuses[target] = status_of(resp)
        # "sub/.." is the root itself (its index with show_index, 403 without), as in aiohttp.
        allowed = (200, 403) if target == "/static/sub/.." else (400, 403, 404)
        assert statuses[target] in allowed, (target, resp[:200])
    # The obvious shapes get aiohttp's answer, not just "some error".
    assert statuses["/static/../outside/secret.txt"] == 404
    assert statuses["/static/%2e%2e/outside/secret.txt"] == 404
    assert statuses["/static/..%5coutside%5csecret.txt"] == 404
    if not follow_symlinks:
        assert statuses["/static/link_out"] == 404
    # And the root still serves its own files.
    assert status_of(await raw_get(base, "/static/a.txt")) == 200


async def test_follow_symlinks_serves_links_out(serve: Serve, root: Path) -> None:
    app = web.Application()
    app.router.add_static("/static", root, follow_symlinks=True)
    base = await serve(app)
    resp = await raw_get(base, "/static/link_out")
    assert status_of(resp) == 200
    assert SECRET in resp


@pytest.mark.parametrize(
    "tail",
    [
        "..",
        "../x",
        "a/../../x",
        "./..",
        "a/./../..",
        "/etc/passwd",
        "//etc/passwd",
        "a\\b",
        "..\\x",
        "C:",
        "c:/windows",
        "a\x00b",
        "a\nb",
        "a\x7fb",
    ],
)
def test_split_static_tail_refuses(tail: str) -> None:
    with pytest.raises(UnsafePathError):
        split_static_tail(tail)


def test_split_static_tail_accepts() -> None:
    assert split_static_tail("") == []
    assert split_static_tail("a/b.txt") == ["a", "b.txt"]
    assert split_static_tail("sub/") == ["sub"]
    assert split_static_tail("...") == ["..."]
    assert split_static_tail("%2e%2e") == ["%2e%2e"]  # a literal name: decoded once already
    # Dot segments and empty segments go as a URL path normalises them (RFC 3986 5.2.4).
    assert split_static_tail(".") == []
    assert split_static_tail("./a") == ["a"]
    assert split_static_tail("a//b") == ["a", "b"]
    assert split_static_tail("a/..") == []
    assert split_static_tail("a/b/../c/./d/") == ["a", "c", "d"]


def test_resolve_static_path_root_prefix_sibling(root: Path) -> None:
    real_root = root.resolve()
    assert resolve_static_path(real_root, "a.txt", follow_symlinks=False) == real_root / "a.txt"
    assert resolve_static_path(real_root, "link_in", follow_symlinks=False) == real_root / "a.txt"
    with pytest.raises(FileNotFoundError):
        resolve_static_path(real_root, "link_out", follow_symlinks=False)
    with pytest.raises(FileNotFoundError):
        resolve_static_path(real_root, "loop1", follow_symlinks=True)
    (root / "evil_link").symlink_to(root.parent / "root_evil" / "secret.txt")
    with pytest.raises(FileNotFoundError):
        resolve_static_path(real_root, "evil_link", follow_symlinks=False)

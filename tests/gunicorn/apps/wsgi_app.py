"""A WSGI app answering like fl_app, served by gunicorn's sync worker for log comparisons."""

from __future__ import annotations

from collections.abc import Callable, Iterator

TEXT = "text/plain; charset=utf-8"


def _stream() -> Iterator[bytes]:
    yield from (b"hel", b"lo ", b"world")


def app(environ: dict[str, object], start_response: Callable[..., object]) -> object:
    path = environ["PATH_INFO"]
    # PATH_INFO is the decoded path's bytes read as latin-1: "/café" arrives as "/cafÃ©".
    if path in ("/", "/hello", "/caf\u00c3\u00a9"):
        start_response("200 OK", [("Content-Type", TEXT), ("Content-Length", "5")])
        return [b"hello"]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _stream()
    if path == "/teapot":
        start_response("418 I'm a teapot", [("Content-Type", TEXT), ("Content-Length", "15")])
        return [b"short and stout"]
    start_response("404 Not Found", [("Content-Type", TEXT), ("Content-Length", "9")])
    return [b"not found"]

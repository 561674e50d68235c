"""Middleware helpers: the ``@middleware`` marker and ``normalize_path_middleware``.

A middleware is ``async def mw(request, handler) -> response`` marked by ``@middleware``; the
application composes the chain once, at freeze (see ``app``). Imports: ``exceptions``,
``urldispatcher``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .exceptions import HTTPMove, HTTPPermanentRedirect
from .urldispatcher import Handler, _path_safe

if TYPE_CHECKING:
    from .request import Request
    from .response import StreamResponse

__all__ = ["middleware", "normalize_path_middleware"]

_F = TypeVar("_F", bound=Callable[..., Any])
_MULTI_SLASH_RE = re.compile(r"//+")
_LEADING_SLASHES_RE = re.compile(r"^//+")

Middleware = Callable[["Request", Handler], Awaitable["StreamResponse"]]


def middleware(f: _F) -> _F:
    """Mark ``async def f(request, handler)`` as a (new-style) middleware.

    As in aiohttp, a middleware without this marker is an old-style factory
    ``async def factory(app, handler) -> handler``, accepted with a ``DeprecationWarning``.
    """
    f.__middleware_version__ = 1  # type: ignore[attr-defined]
    return f


def _candidates(
    path: str, *, append_slash: bool, remove_slash: bool, merge_slashes: bool
) -> list[str]:
    """Paths to try, in aiohttp's order, for a request path that matched nothing."""
    out: list[str] = []
    if merge_slashes:
        out.append(_MULTI_SLASH_RE.sub("/", path))
    if append_slash and not path.endswith("/"):
        out.append(path + "/")
    if remove_slash and path.endswith("/") and path != "/":
        out.append(path[:-1])
    if merge_slashes and append_slash:
        out.append(_MULTI_SLASH_RE.sub("/", path + "/"))
    if merge_slashes and remove_slash:
        merged = _MULTI_SLASH_RE.sub("/", path)
        if merged.endswith("/") and merged != "/":
            out.append(merged[:-1])
    # Never redirect to "//host": a leading "//" would make the Location protocol-relative.
    return [_LEADING_SLASHES_RE.sub("/", p) for p in out]


async def _resolves(request: Request, raw_path: str) -> bool:
    router = request.match_info.apps[0].router
    match_info = router._resolve_sync(request, request.method, _path_safe(raw_path))
    if match_info is None:  # a custom resource: resolve a copy of the request for real
        match_info = await router.resolve(request.clone(rel_url=raw_path))
    return match_info.http_exception is None


def normalize_path_middleware(
    *,
    append_slash: bool = True,
    remove_slash: bool = False,
    merge_slashes: bool = True,
    redirect_class: type[HTTPMove] = HTTPPermanentRedirect,
) -> Middleware:
    """Redirect a request that matched no route to the normalized path that does match.

    ``append_slash`` tries ``/path/`` for ``/path``; ``remove_slash`` the reverse (not both);
    ``merge_slashes`` collapses ``//`` runs. The query string is kept. Only a path that
    resolves is ever a redirect target, so a real 404 stays a 404.
    """
    if append_slash and remove_slash:
        raise ValueError("normalize_path_middleware: cannot both append and remove the slash")

    @middleware
    async def normalize_path(request: Request, handler: Handler) -> StreamResponse:
        if request.match_info.http_exception is None:
            return await handler(request)
        raw = request.raw_path
        path, sep, query = raw.partition("?")
        tried: set[str] = {path}
        for candidate in _candidates(
            path,
            append_slash=append_slash,
            remove_slash=remove_slash,
            merge_slashes=merge_slashes,
        ):
            if candidate in tried:
                continue
            tried.add(candidate)
            if await _resolves(request, candidate):
                raise redirect_class(candidate + sep + query)
        return await handler(request)

    return normalize_path

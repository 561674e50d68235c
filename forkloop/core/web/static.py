"""Static files: ``app.router.add_static(prefix, directory)`` and ``web.static(...)``.

Owner: bodies-and-files (issue 5). Owns ``StaticResource`` (aiohttp's constructor and API), the
traversal-proof mapping of a URL tail to a file under the root, directory indexes and
``url_for(filename=..., append_version=True)`` content hashes. Files are sent by
``FileResponse``.

Path safety (``resolve_static_path``): the tail after the prefix, already percent-decoded once
by the router, is split on ``/`` and its dot segments are removed as RFC 3986 section 5.2.4
removes them from a URL path (aiohttp's router sees the path after yarl did exactly that, so
``/static/sub/..`` is the root's index there too); a ``..`` that would climb above the root, a
leading ``/`` (an absolute path), a backslash, NUL, control character or drive letter (``C:``)
is refused. The joined path is then resolved (symlinks followed) and must stay under the
resolved root (``commonpath``, as Starlette's ``lookup_path``) unless ``follow_symlinks`` is
set; with ``follow_symlinks`` the *unresolved* path is still under the root because no segment
can climb. Everything refused answers 404, as aiohttp does (a 404 tells a prober less than a
403 would); a directory without ``show_index`` and an unreadable file answer 403.

Imports: ``.urldispatcher`` (PrefixResource and friends), ``.fileresponse``, ``.response``,
``.exceptions``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from yarl import URL

from .exceptions import HTTPForbidden, HTTPNotFound
from .fileresponse import FileResponse
from .response import Response
from .urldispatcher import (
    AbstractRoute,
    ExpectHandler,
    PrefixResource,
    ResourceRoute,
    UrlMappingMatchInfo,
)

if TYPE_CHECKING:
    from .request import Request
    from .response import StreamResponse

__all__ = ["StaticResource"]

_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_EMPTY: set[str] = set()
_HASH_CACHE_MAX = 1024
_URL_SAFE = "/:@!$&'()*+,;=-._~"


class UnsafePathError(Exception):
    """The URL tail is a traversal attempt or an absolute path (answered 404, as aiohttp)."""


def split_static_tail(tail: str) -> list[str]:
    """Validate a decoded URL tail; return its segments with dot segments removed.

    Empty segments (``a//b``) and ``.`` are dropped and ``..`` removes the segment before it,
    as a URL path is normalised (RFC 3986 section 5.2.4). Raises ``UnsafePathError`` for a
    leading ``/`` (absolute path), a ``..`` above the root, backslashes, NUL, control characters
    and drive letters.
    """
    if tail.startswith("/"):
        raise UnsafePathError("absolute path")
    segments: list[str] = []
    for seg in tail.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if not segments:
                raise UnsafePathError("climbs above the root")
            segments.pop()
            continue
        if "\\" in seg or "\x00" in seg or _DRIVE_RE.match(seg):
            raise UnsafePathError(f"segment {seg!r}")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in seg):
            raise UnsafePathError("control character")
        segments.append(seg)
    return segments


def _is_within(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives, or mixing absolute and relative
        return False


def resolve_static_path(root: Path, tail: str, *, follow_symlinks: bool) -> Path:
    """Map a decoded URL tail to an existing path under ``root`` (already resolved).

    Raises ``UnsafePathError`` (403) for hostile shapes and ``FileNotFoundError`` (404) for names
    that do not exist or whose symlinks leave the root without ``follow_symlinks``.
    """
    segments = split_static_tail(tail)
    unresolved = root.joinpath(*segments)
    try:
        resolved = unresolved.resolve(strict=True)
    except (OSError, RuntimeError, ValueError) as exc:  # missing, ELOOP, NUL
        raise FileNotFoundError(tail) from exc
    if not follow_symlinks and not _is_within(str(resolved), str(root)):
        raise FileNotFoundError(tail)
    return resolved


class StaticResource(PrefixResource):
    """Files under ``directory`` served at ``prefix`` (aiohttp's ``StaticResource``)."""

    VERSION_KEY = "v"
    _sync = True

    def __init__(
        self,
        prefix: str,
        directory: str | os.PathLike[str],
        *,
        name: str | None = None,
        expect_handler: ExpectHandler | None = None,
        chunk_size: int = 256 * 1024,
        show_index: bool = False,
        follow_symlinks: bool = False,
        append_version: bool = False,
    ) -> None:
        super().__init__(prefix, name=name)
        try:
            resolved = Path(directory).expanduser().resolve(strict=True)
        except FileNotFoundError as exc:
            raise ValueError(f"'{directory}' does not exist") from exc
        except (OSError, RuntimeError) as exc:
            raise ValueError(f"'{directory}' cannot be used: {exc}") from exc
        if not resolved.is_dir():
            raise ValueError(f"'{directory}' is not a directory")
        self._directory = resolved
        self._show_index = show_index
        self._chunk_size = chunk_size
        self._follow_symlinks = follow_symlinks
        self._expect_handler = expect_handler
        self._append_version = append_version
        self._hash_cache: dict[tuple[str, int, int], str] = {}
        self._routes: dict[str, ResourceRoute] = {
            "GET": ResourceRoute("GET", self._handle, self, expect_handler=expect_handler),
            "HEAD": ResourceRoute("HEAD", self._handle, self, expect_handler=expect_handler),
        }
        self._allowed = set(self._routes)

    def __repr__(self) -> str:
        name = f"'{self.name}'" if self.name is not None else ""
        return f"<StaticResource {name} {self._prefix} -> {self._directory!r}>"

    # -- routing ------------------------------------------------------------------------

    def set_options_route(self, handler: Any) -> None:
        """Answer OPTIONS on this prefix with ``handler`` (CORS libraries use this)."""
        if "OPTIONS" in self._routes:
            raise RuntimeError("OPTIONS route was set already")
        self._routes["OPTIONS"] = ResourceRoute(
            "OPTIONS", handler, self, expect_handler=self._expect_handler
        )
        self._allowed = set(self._routes)

    def _resolve_sync(
        self, request: Request, method: str, path: str
    ) -> tuple[UrlMappingMatchInfo | None, set[str]]:
        if not path.startswith(self._prefix2) and path != self._prefix:
            return None, _EMPTY
        route = self._routes.get(method)
        if route is None:
            return None, self._allowed
        tail = path[len(self._prefix2) :]
        if "%" in tail:  # the router keeps %2F and %25 escaped; decode them now, once
            tail = tail.replace("%2F", "/").replace("%25", "%")
        return UrlMappingMatchInfo({"filename": tail}, route), self._allowed

    async def resolve(self, request: Request) -> tuple[UrlMappingMatchInfo | None, set[str]]:
        from .urldispatcher import request_path

        return self._resolve_sync(request, request.method, request_path(request))

    def __len__(self) -> int:
        return len(self._routes)

    def __iter__(self) -> Iterator[AbstractRoute]:
        return iter(self._routes.values())

    def get_info(self) -> dict[str, Any]:
        return {"directory": self._directory, "prefix": self._prefix, "routes": self._routes}

    # -- URLs ---------------------------------------------------------------------------

    def url_for(  # type: ignore[override]
        self, *, filename: str | os.PathLike[str], append_version: bool | None = None
    ) -> URL:
        """``/prefix/filename``; with ``append_version`` a ``?v=`` content hash is added."""
        if append_version is None:
            append_version = self._append_version
        name = str(filename).lstrip("/")
        url = URL.build(path=self._prefix + "/" + quote(name, safe=_URL_SAFE), encoded=True)
        if not append_version:
            return url
        version = self._file_version(name)
        return url.with_query({self.VERSION_KEY: version}) if version else url

    def _file_version(self, name: str) -> str | None:
        try:
            path = resolve_static_path(self._directory, name, follow_symlinks=self._follow_symlinks)
            st = path.stat()
        except (UnsafePathError, OSError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        key = (str(path), st.st_mtime_ns, st.st_size)
        version = self._hash_cache.get(key)
        if version is None:
            digest = hashlib.sha256()
            with path.open("rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
            version = base64.urlsafe_b64encode(digest.digest()).decode("ascii")
            if len(self._hash_cache) >= _HASH_CACHE_MAX:
                self._hash_cache.clear()
            self._hash_cache[key] = version
        return version

    # -- handling -----------------------------------------------------------------------

    async def _handle(self, request: Request) -> StreamResponse:
        tail = request.match_info.get("filename", "")
        loop = asyncio.get_running_loop()
        try:
            path, is_dir = await loop.run_in_executor(None, self._lookup, tail)
        except (UnsafePathError, FileNotFoundError, NotADirectoryError):
            raise HTTPNotFound() from None
        except PermissionError:
            raise HTTPForbidden() from None
        if is_dir:
            if not self._show_index:
                raise HTTPForbidden()
            try:
                body = await loop.run_in_executor(None, self._index_html, path, tail)
            except PermissionError:
                raise HTTPForbidden() from None
            return Response(text=body, content_type="text/html")
        return FileResponse(path, chunk_size=self._chunk_size)

    def _lookup(self, tail: str) -> tuple[Path, bool]:
        path = resolve_static_path(self._directory, tail, follow_symlinks=self._follow_symlinks)
        return path, path.is_dir()

    def _index_html(self, path: Path, tail: str) -> str:
        """An HTML listing of ``path`` as aiohttp writes it: titled ``Index of /<dir relative to
        the root>`` (``/.`` for the root), names escaped, links percent-encoded by yarl."""
        rel = "/".join(split_static_tail(tail)) or "."
        title = f"Index of /{html.escape(rel)}"
        base = self._prefix + "/" + ("" if rel == "." else rel + "/")
        items = []
        for entry in sorted(path.iterdir(), key=lambda p: p.name):
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue
            label = entry.name + ("/" if is_dir else "")
            # yarl percent-encodes '"', '<' and '>', so the link needs no HTML escaping.
            href = URL.build(path=base + entry.name, encoded=False).raw_path
            items.append(f'<li><a href="{href}">{html.escape(label)}</a></li>')
        return (
            f"<html>\n<head>\n<title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n"
            f"<ul>\n{chr(10).join(items)}\n</ul>\n</body>\n</html>"
        )

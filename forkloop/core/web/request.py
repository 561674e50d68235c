"""Requests with aiohttp.web's API: ``BaseRequest`` and ``Request``.

Owns the view of one parsed request: its line and headers, the URL (built with yarl only when
asked), connection facts (remote, host, scheme), conditional and range headers, cookies, the
body (``content`` stream, ``read``/``text``/``json``, ``post``/``multipart`` through their
modules), per-request storage, and for ``Request`` the routing result (``match_info``, ``app``,
``config_dict``). Every property is computed on first use and cached. Imports ``core.http``,
``core.server`` and ``core.web`` helpers; forms and multipart lazily.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import socket
import string
import sys
import types
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from multidict import CIMultiDict, CIMultiDictProxy, MultiDictProxy
from yarl import URL

from ..http.headers import parse_cookie_headers
from ..http.parser import HTTP11, RequestHead
from ..http.serialize import plain_message
from ..server.protocol import HttpProtocol
from ..server.streams import StreamReader
from .deprecations import _seen_request_keys, warn_deprecated_loop_access, warn_plain_request_key
from .helpers import ChainMapProxy, ETag, parse_content_type, parse_etags, parse_http_date

if TYPE_CHECKING:
    from .response import StreamResponse

__all__ = ["BaseRequest", "Request"]

_SENTINEL: Final[Any] = object()
_TCHAR: Final = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")
# As aiohttp: the unit in any case (RFC 9110 §14.1), ASCII digits only.
_RANGE: Final = re.compile(r"^bytes=(\d*)-(\d*)$", re.ASCII | re.IGNORECASE)
_NO_LIMIT: Final = sys.maxsize


# What ``_send_plain`` did: nothing (the general path sends), or the whole response, keeping
# or closing the connection.
NOT_SENT: Final = 0
SENT_KEEP_ALIVE: Final = 1
SENT_CLOSE: Final = 2
_CLOSE_LINE: Final = b"Connection: close\r\n\r\n"
# Request._hookless while its match info is still to be built (``AppDispatch`` routed it, and
# the app fires no on_response_prepare signal).
LAZY_HOOKLESS: Final[Any] = object()


class BaseRequest(MutableMapping[str, Any]):
    """An HTTP request as a handler sees it."""

    POST_METHODS: Final = frozenset(("PATCH", "POST", "PUT", "TRACE", "DELETE"))

    # Rarely set per request: class-level defaults keep construction cheap.
    _match_info: Any = None  # routing result; set by Application._handle (Request)
    _read_bytes: bytes | None = None
    _post: MultiDictProxy[Any] | None = None
    _client_max_fields: int = 1000  # aiohttp's default; stored only when another is given
    _cleanups: list[Callable[[], None]] | None = None
    _cache: dict[str, Any] | None = None  # computed properties; made on first use (_store)

    def __init__(
        self,
        head: RequestHead,
        payload: StreamReader,
        # "| Any": a test's stand-in (make_mocked_request(protocol=Mock())) passes mypyc's
        # argument check when this module is compiled (setup.py); mypy still checks uses.
        protocol: HttpProtocol | Any,
        task: asyncio.Task[None] | None = None,
        *,
        client_max_size: int | None = 1024**2,
        loop: asyncio.AbstractEventLoop | None = None,
        state: dict[str, Any] | None = None,
        scheme: str | None = None,
        host: str | None = None,
        remote: str | None = None,
        client_max_fields: int = 1000,
    ) -> None:
        self._head = head
        self._payload = payload
        self._protocol = protocol
        self._task = task
        self._loop = loop
        self._client_max_size = client_max_size
        if client_max_fields != 1000:
            self._client_max_fields = client_max_fields
        self._state = state  # made on first store: most requests never store anything
        if scheme is not None or host is not None or remote is not None:
            cache = self._store()
            for key, value in (("scheme", scheme), ("host", host), ("remote", remote)):
                if value is not None:
                    cache[key] = value

    def _store(self) -> dict[str, Any]:
        """The cache of computed properties, made on first use: most requests ask none."""
        cache = self._cache
        if cache is None:
            cache = self._cache = {}
        return cache

    def clone(
        self,
        *,
        method: str | Any = _SENTINEL,
        rel_url: str | URL | Any = _SENTINEL,
        headers: Mapping[str, str] | Any = _SENTINEL,
        scheme: str | Any = _SENTINEL,
        host: str | Any = _SENTINEL,
        remote: str | Any = _SENTINEL,
        client_max_size: int | Any | None = _SENTINEL,
        client_max_fields: int | Any = _SENTINEL,
    ) -> BaseRequest:
        """A copy with some parts replaced; the body stream is shared."""
        if self._read_bytes is not None:
            raise RuntimeError("Cannot clone request after reading its content")
        head = self._head
        new_headers: CIMultiDictProxy[str] | None = head.headers
        raw = head.raw_headers
        if headers is not _SENTINEL:
            new_headers = CIMultiDictProxy(CIMultiDict(headers))
            raw = tuple((k.encode("utf-8"), v.encode("utf-8")) for k, v in new_headers.items())
        target = head.target
        if rel_url is not _SENTINEL:
            url = URL(rel_url)
            if url.absolute:
                raise ValueError("rel_url must be relative")
            target = str(url)
        new_head = RequestHead(
            method if method is not _SENTINEL else head.method,
            target,
            head.version,
            new_headers,
            raw,
            head.keep_alive,
            head.upgrade,
            head.chunked,
            head.content_length,
            head.expect,
        )
        kwargs: dict[str, Any] = {}
        for name, value in (("scheme", scheme), ("host", host), ("remote", remote)):
            if value is not _SENTINEL:
                kwargs[name] = value
            elif name in self._store():
                kwargs[name] = self._store()[name]
        clone = self._clone_class()(
            new_head,
            self._payload,
            self._protocol,
            self._task,
            client_max_size=(
                self._client_max_size if client_max_size is _SENTINEL else client_max_size
            ),
            loop=self._loop,
            state=dict(self._state) if self._state else None,
            client_max_fields=(
                self._client_max_fields if client_max_fields is _SENTINEL else client_max_fields
            ),
            **kwargs,
        )
        self._copy_routing(clone)
        return clone

    def _clone_class(self) -> type[BaseRequest]:
        return type(self)

    def _copy_routing(self, clone: BaseRequest) -> None:
        pass

    # -- storage --------------------------------------------------------------------------

    # Keys are "str | Any": RequestKey objects too, which a compiled module (setup.py) checks.
    def __getitem__(self, key: str | Any) -> Any:
        if self._state is None:
            raise KeyError(key)
        return self._state[key]

    def __setitem__(self, key: str | Any, value: Any) -> None:
        if self._state is None:
            self._state = {}
        if key not in _seen_request_keys:
            warn_plain_request_key(key)  # aiohttp's NotAppKeyWarning, once per plain key
        self._state[key] = value

    def __delitem__(self, key: str | Any) -> None:
        if self._state is None:
            raise KeyError(key)
        del self._state[key]

    def __len__(self) -> int:
        return len(self._state) if self._state is not None else 0

    def __iter__(self) -> Iterator[str]:
        return iter(self._state if self._state is not None else ())

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        path = self.path.encode("ascii", "backslashreplace").decode("ascii")
        return f"<{type(self).__name__} {self.method} {path} >"

    # -- the connection -----------------------------------------------------------------

    @property
    def protocol(self) -> HttpProtocol | Any:
        return self._protocol

    @property
    def transport(self) -> asyncio.Transport | None:
        return self._protocol.transport

    @property
    def writer(self) -> _ContinueWriter:
        """aiohttp's ``request.writer``: lets an expect handler send ``100 Continue``."""
        return _ContinueWriter(self)

    @property
    def task(self) -> asyncio.Task[None] | None:
        if self._task is None:
            self._task = self._protocol.task
        return self._task

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        cache = self._store()
        if "loop" not in cache:  # aiohttp's is a cached property: it warns once per request
            warn_deprecated_loop_access()
            cache["loop"] = self._loop if self._loop is not None else asyncio.get_running_loop()
        loop: asyncio.AbstractEventLoop = cache["loop"]
        return loop

    @property
    def client_max_size(self) -> int | None:
        """The most body bytes ``read()``/``post()`` take (decoded bytes when the body has
        a Content-Encoding); 0 or None: no limit, as in aiohttp."""
        return self._client_max_size

    @property
    def client_max_fields(self) -> int:
        """The most form fields ``post()`` takes (413 beyond); 0: no limit."""
        return self._client_max_fields

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        transport = self._protocol.transport
        if transport is None:
            return default
        return transport.get_extra_info(name, default)

    @property
    def keep_alive(self) -> bool:
        return self._head.keep_alive and self._protocol.keep_alive

    @property
    def secure(self) -> bool:
        return self.scheme == "https"

    @property
    def scheme(self) -> str:
        cache = self._cache
        scheme = cache.get("scheme") if cache is not None else None  # clone(scheme=...)
        return self._protocol.scheme if scheme is None else str(scheme)

    @property
    def remote(self) -> str | None:
        cache = self._store()
        if "remote" not in cache:
            peer = self._protocol.peername
            if isinstance(peer, list | tuple):
                cache["remote"] = str(peer[0])
            elif isinstance(peer, str):
                cache["remote"] = peer
            else:
                transport = self._protocol.transport
                sock = transport.get_extra_info("socket") if transport is not None else None
                unix = sock is not None and getattr(sock, "family", None) == socket.AF_UNIX
                cache["remote"] = "" if unix else None
        value = cache["remote"]
        return None if value is None else str(value)

    @property
    def host(self) -> str:
        cache = self._store()
        if "host" not in cache:
            target = self._head.target
            # absolute-form: the target's authority wins over Host (RFC 9112 §3.2.2)
            host = urlsplit(target).netloc if "://" in target[:12] else None
            host = host or self._head.headers.get("Host")
            if host is None:
                # As aiohttp: the address the request came in on, without the port (an IPv6
                # one in brackets), a Unix socket's path, or "" without a transport.
                transport = self._protocol.transport
                sockname = transport.get_extra_info("sockname") if transport is not None else None
                if sockname is None:
                    host = ""
                elif isinstance(sockname, tuple):
                    host = f"[{sockname[0]}]" if len(sockname) == 4 else str(sockname[0])
                else:
                    host = str(sockname)
            cache["host"] = host
        return str(cache["host"])

    @property
    def forwarded(self) -> tuple[types.MappingProxyType[str, str], ...]:
        """The ``Forwarded`` header (RFC 7239) as one mapping per proxy hop."""
        cache = self._store()
        if "forwarded" not in cache:
            cache["forwarded"] = tuple(
                types.MappingProxyType(elem)
                for value in self._head.headers.getall("Forwarded", ())
                for elem in _parse_forwarded(value)
            )
        result: tuple[types.MappingProxyType[str, str], ...] = cache["forwarded"]
        return result

    # -- the request line -----------------------------------------------------------------

    @property
    def method(self) -> str:
        return self._head.method

    @property
    def version(self) -> tuple[int, int]:
        return self._head.version

    @property
    def raw_path(self) -> str:
        """The request-target as sent (path and query, still percent-encoded)."""
        return self._head.target

    @property
    def rel_url(self) -> URL:
        cache = self._store()
        url = cache.get("rel_url")
        if url is None:
            target = self._head.target
            if target.startswith("/"):
                url = URL.build(
                    path=_split_target(target)[0],
                    query_string=_split_target(target)[1],
                    encoded=True,
                )
            else:  # absolute-form, authority-form (CONNECT) or asterisk-form
                parsed = URL(target, encoded=True)
                url = parsed.relative() if parsed.absolute else URL.build(path=target, encoded=True)
            cache["rel_url"] = url
        return url

    @property
    def url(self) -> URL:
        cache = self._store()
        url = cache.get("url")
        if url is None:
            url = URL.build(scheme=self.scheme, authority=self.host).join(self.rel_url)
            cache["url"] = url
        return url

    @property
    def path(self) -> str:
        cache = self._store()
        path = cache.get("path")
        if path is None:
            target = self._head.target
            raw = _split_target(target)[0] if target.startswith("/") else self.rel_url.raw_path
            path = self.rel_url.path if "%" in raw else raw
            cache["path"] = path
        return path

    @property
    def path_qs(self) -> str:
        return str(self.rel_url)

    @property
    def query_string(self) -> str:
        return self.rel_url.query_string

    @property
    def query(self) -> MultiDictProxy[str]:
        return self.rel_url.query

    # -- headers --------------------------------------------------------------------------

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self._head.headers

    @property
    def raw_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        return self._head.raw_headers

    def _content_type_parts(self) -> tuple[str, dict[str, str]]:
        cache = self._store()
        if "ctype" not in cache:
            raw = self._head.headers.get("Content-Type")
            cache["ctype"] = parse_content_type(raw) if raw else ("application/octet-stream", {})
        parts: tuple[str, dict[str, str]] = cache["ctype"]
        return parts

    @property
    def content_type(self) -> str:
        return self._content_type_parts()[0]

    @property
    def charset(self) -> str | None:
        return self._content_type_parts()[1].get("charset")

    @property
    def content_length(self) -> int | None:
        return self._head.content_length

    @property
    def cookies(self) -> Mapping[str, str]:
        cache = self._store()
        if "cookies" not in cache:
            # Linear in the header's length (SimpleCookie is quadratic in escapes; issue 15).
            parsed = parse_cookie_headers(self._head.headers.getall("Cookie", ()))
            cache["cookies"] = types.MappingProxyType(parsed)
        result: Mapping[str, str] = cache["cookies"]
        return result

    @property
    def if_modified_since(self) -> datetime.datetime | None:
        return parse_http_date(self._head.headers.get("If-Modified-Since"))

    @property
    def if_unmodified_since(self) -> datetime.datetime | None:
        return parse_http_date(self._head.headers.get("If-Unmodified-Since"))

    @property
    def if_range(self) -> datetime.datetime | None:
        return parse_http_date(self._head.headers.get("If-Range"))

    @property
    def if_match(self) -> tuple[ETag, ...] | None:
        return parse_etags(self._head.headers.get("If-Match"))

    @property
    def if_none_match(self) -> tuple[ETag, ...] | None:
        return parse_etags(self._head.headers.get("If-None-Match"))

    @property
    def http_range(self) -> slice:
        """The single byte range of the ``Range`` header as a slice (aiohttp's semantics)."""
        raw = self._head.headers.get("Range")
        if raw is None:
            return slice(None, None, 1)
        match = _RANGE.match(raw)
        if match is None:
            raise ValueError("range not in acceptable format")
        start_s, end_s = match.groups()
        start = int(start_s) if start_s else None
        end = int(end_s) if end_s else None
        if start is None and end is not None:
            return slice(-end, None, 1)  # suffix range: the last N bytes
        if start is not None and end is not None:
            if start > end:
                raise ValueError("start cannot be after end")
            end += 1  # inclusive on the wire, exclusive in a slice
        elif start is None:
            raise ValueError("No start or end of range specified")
        return slice(start, end, 1)

    # -- the body -------------------------------------------------------------------------

    @property
    def content(self) -> StreamReader:
        return self._payload

    @property
    def has_body(self) -> bool:
        warnings.warn("Deprecated, use .can_read_body #2005", DeprecationWarning, stacklevel=2)
        return self._head.has_body

    @property
    def body_exists(self) -> bool:
        return self._head.has_body

    @property
    def can_read_body(self) -> bool:
        return not self._payload.at_eof()

    async def read(self) -> bytes:
        """The whole body, at most ``client_max_size`` bytes (else 413)."""
        if self._read_bytes is None:
            limit = self._client_max_size
            declared = self._head.content_length
            if limit and declared is not None and declared > limit:
                self._too_large(declared)
            body = bytearray()
            while True:
                chunk = await self._payload.readany()
                if not chunk:
                    break
                body.extend(chunk)
                if limit and len(body) > limit:
                    self._too_large(len(body))
            self._read_bytes = bytes(body)
        return self._read_bytes

    def _too_large(self, actual: int) -> None:
        from .exceptions import HTTPRequestEntityTooLarge

        raise HTTPRequestEntityTooLarge(max_size=self._client_max_size or 0, actual_size=actual)

    async def text(self) -> str:
        body = await self.read()
        return body.decode(self.charset or "utf-8")

    async def json(
        self,
        *,
        loads: Callable[[str], Any] = json.loads,
        content_type: str | None = "application/json",
    ) -> Any:
        body = await self.text()
        if (
            content_type
            and self.content_type != content_type
            and not (content_type == "application/json" and self.content_type.endswith("+json"))
        ):
            from .exceptions import HTTPBadRequest

            raise HTTPBadRequest(
                text=f"Attempt to decode JSON with unexpected mimetype: {self.content_type}"
            )
        return loads(body)

    async def post(self) -> MultiDictProxy[Any]:
        """Form fields of an urlencoded or multipart body (empty for other methods/types)."""
        if self._post is None:
            from .forms import read_post

            self._post = await read_post(self)
        return self._post

    async def multipart(self) -> Any:
        from .multipart import MultipartReader, part_too_large

        # As aiohttp: each part's read()/text()/json()/form() stops at client_max_size (413).
        return MultipartReader(
            self._head.headers,
            self._payload,
            client_max_size=self._client_max_size or _NO_LIMIT,
            max_size_error_cls=part_too_large,
        )

    async def release(self) -> None:
        """Read and drop the rest of the body."""
        while not self._payload.at_eof():
            if not await self._payload.readany():
                break

    def add_cleanup(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the request is finished (temporary upload files)."""
        if self._cleanups is None:
            self._cleanups = []
        self._cleanups.append(callback)

    def _finish(self) -> None:
        cleanups, self._cleanups = self._cleanups, None
        for callback in cleanups or ():
            callback()

    async def wait_for_disconnection(self) -> None:
        """Return once the client has gone (the handler should then stop)."""
        await self._protocol.wait_closed()

    # -- hooks used by responses and the server -------------------------------------------

    async def _prepare_hook(self, response: StreamResponse) -> None:
        return None

    def _has_prepare_hooks(self) -> bool:
        return False

    def _send_plain(self, status: int, ctype_line: bytes, body: bytes) -> int:
        """The request's half of the one-write predicate (``response.send_in_one_write``):
        an HTTP/1.1 request, not HEAD, with no ``on_response_prepare`` signal to fire. If so,
        writes the whole plain response (``plain_message``) and returns ``SENT_KEEP_ALIVE``
        (through ``write_response``, which may hold it to the end of the loop's pass),
        or ``SENT_CLOSE`` when the request or the server ends the connection with it (the
        head then says ``Connection: close``, as ``prepare()`` writes it, and the connection
        closes after it); else ``NOT_SENT``, nothing written."""
        head = self._head
        if (
            head.version is not HTTP11  # the parser's own; an equal copy takes the general path
            or head.method == "HEAD"
            or self._has_prepare_hooks()
        ):
            return NOT_SENT
        protocol = self._protocol
        if head.keep_alive and protocol.keep_alive:
            protocol.write_response(
                plain_message(status, ctype_line, len(body), protocol.head_tail(), body)
            )
            return SENT_KEEP_ALIVE
        protocol.force_close()
        tail = protocol.head_tail()
        # The tail ends with the blank line: Connection goes after Date and Server, before it.
        tail = tail[: len(tail) - 2] + _CLOSE_LINE
        protocol.write(plain_message(status, ctype_line, len(body), tail, body))
        return SENT_CLOSE

    def _date_value(self) -> str:
        return self._protocol.date_value()

    def _routed_route(self) -> Any:
        """The route that answered this request (None outside an Application), for counting."""
        match_info = self._match_info
        return match_info._route if match_info is not None else None


class Request(BaseRequest):
    """A request routed by an Application: adds ``match_info``, ``app`` and ``config_dict``."""

    _match_info: Any = None  # set by Application._handle, or built by _routing()
    # A match info whose apps fire no on_response_prepare signal, as AppDispatch knows from
    # the frozen app: while it is still the request's, _has_prepare_hooks() need not look.
    # LAZY_HOOKLESS while that match info is not built yet.
    _hookless: Any = None
    # A remembered route AppDispatch answered, whose match info is built when first asked
    # for (_routing()): a handler that never reads it does not pay for it. Its dispatch
    # knows the apps (``match_info_for``).
    _lazy_route: Any = None
    _lazy_dispatch: Any = None

    def _routing(self) -> Any:
        """The match info (``match_info``), built now if ``AppDispatch`` left it to be."""
        match_info = self._match_info
        if match_info is None:
            route = self._lazy_route
            if route is not None:
                self._lazy_route = None
                match_info = self._lazy_dispatch.match_info_for(route)
                self._match_info = match_info
                if self._hookless is LAZY_HOOKLESS:
                    self._hookless = match_info
        return match_info

    def _routed_route(self) -> Any:
        match_info = self._match_info
        # Not built yet: the route AppDispatch remembered (None outside an Application).
        return self._lazy_route if match_info is None else match_info._route

    def _copy_routing(self, clone: BaseRequest) -> None:
        if isinstance(clone, Request):
            clone._match_info = self._routing()

    @property
    def match_info(self) -> Any:
        """The routing result: a dict of the path's variable parts, plus route details."""
        return self._routing()

    @property
    def app(self) -> Any:
        match_info = self._routing()
        return match_info.current_app if match_info is not None else None

    @property
    def config_dict(self) -> ChainMapProxy:
        match_info = self._routing()
        if match_info is None:
            return ChainMapProxy(())
        apps = list(match_info.apps)
        current = match_info.current_app
        if current in apps:
            apps = apps[: apps.index(current) + 1]
        return ChainMapProxy(list(reversed(apps)))

    def _has_prepare_hooks(self) -> bool:
        match_info = self._match_info
        if match_info is None:
            if self._lazy_route is None or self._hookless is LAZY_HOOKLESS:
                return False
            match_info = self._routing()
        if match_info is self._hookless:
            return False
        apps: tuple[Any, ...] = match_info._apps  # typed: the compiled loop indexes the tuple
        for app in apps:  # noqa: SIM110 - a plain loop: hot path, no generator
            if app._on_response_prepare:
                return True
        return False

    async def _prepare_hook(self, response: StreamResponse) -> None:
        match_info = self._routing()
        if match_info is None:
            return
        for app in match_info.apps:
            signal = app.on_response_prepare
            if signal:
                await signal.send(self, response)


class RequestFactory:
    """What the server calls to make each request of an ``Application``:
    ``Request(head, payload, protocol, task, client_max_size=..., loop=...)``, with no
    Python-level frame per request (this module is compiled). ``Application._request_factory``
    hands it to the server unless a subclass overrides ``_make_request``."""

    def __init__(
        self,
        client_max_size: int | None,
        loop: asyncio.AbstractEventLoop,
        client_max_fields: int = 1000,
    ) -> None:
        self.client_max_size = client_max_size
        self.loop = loop
        self.client_max_fields = client_max_fields

    def __call__(
        self,
        head: RequestHead,
        payload: StreamReader,
        protocol: HttpProtocol | Any,
        task: asyncio.Task[None] | None,
    ) -> Request:
        return Request(
            head,
            payload,
            protocol,
            task,
            client_max_size=self.client_max_size,
            loop=self.loop,
            client_max_fields=self.client_max_fields,
        )


class _ContinueWriter:
    """The part of aiohttp's stream writer an expect handler uses."""

    __slots__ = ("_request",)

    def __init__(self, request: BaseRequest) -> None:
        self._request = request

    async def write(self, data: bytes) -> None:
        if data.startswith(b"HTTP/1.1 100"):
            self._request._payload.continue_sent()
        self._request._protocol.write(data)

    async def drain(self) -> None:
        await self._request._protocol.drain()


def _split_target(target: str) -> tuple[str, str]:
    path, _, query = target.partition("?")
    path = path.partition("#")[0]
    return path, query


# Forwarded (RFC 7239) syntax, read as aiohttp reads it: a quoted-string holds tab, space and
# visible ASCII; a backslash escapes any of those.
_QUOTED_TEXT: Final = frozenset("\t" + "".join(chr(c) for c in range(0x20, 0x7F)))
_QUOTED_PAIR: Final = re.compile(r"\\([\t !-~])")


def _parse_forwarded(value: str) -> list[dict[str, str]]:
    """The elements of one ``Forwarded`` header value, as aiohttp 3.14 parses them.

    aiohttp scans ``name=value`` pairs (value a token or a quoted-string, then an optional
    ``:port`` of up to four digits); ``,`` starts the next element and ``;`` the next pair,
    whitespace is skipped, a later duplicate name wins, and anything else (or a pair not
    preceded by a separator) skips to the next ``,``. Separators inside a quoted-string belong
    to the value. aiohttp matches a backtracking regex at every position, quadratic on hostile
    input; this scanner finds the same matches in linear time (see ``_QuotedStrings``).
    """
    elem: dict[str, str] = {}
    elems = [elem]
    length = len(value)
    quoted = _QuotedStrings(value)
    pos = 0
    need_separator = False
    while 0 <= pos < length:
        match = _forwarded_pair(value, pos, quoted)
        if match is not None:
            if need_separator:
                pos = value.find(",", pos)  # bad syntax: skip to the next element
                continue
            name_end, start, end, port_end = match
            text = value[start:end]
            if text[0] == '"':
                text = _QUOTED_PAIR.sub(r"\1", text[1:-1])
            elem[value[pos:name_end].lower()] = text + value[end:port_end]
            pos = port_end
            need_separator = True
        elif value[pos] == ",":
            need_separator = False
            elem = {}
            elems.append(elem)
            pos += 1
        elif value[pos] == ";":
            need_separator = False
            pos += 1
        elif value[pos] in " \t":
            pos += 1
        else:
            pos = value.find(",", pos)
    return elems


def _forwarded_pair(
    value: str, pos: int, quoted: _QuotedStrings
) -> tuple[int, int, int, int] | None:
    """``token=(token|quoted-string)(:digits)?`` at ``pos``: (end of the name, start and end of
    the value, end of the port), or None."""
    length = len(value)
    i = pos
    while i < length and value[i] in _TCHAR:
        i += 1
    if i == pos or i >= length or value[i] != "=":
        return None
    name_end = start = i + 1
    if start < length and value[start] in _TCHAR:
        end = start + 1
        while end < length and value[end] in _TCHAR:
            end += 1
    elif start < length and value[start] == '"':
        close = quoted.close(start)
        if close < 0:
            return None
        end = close + 1
    else:
        return None
    port_end = end
    if end < length and value[end] == ":":
        digit = end + 1
        while digit < length and digit <= end + 4 and value[digit].isdecimal():
            digit += 1  # regex \d: any Unicode decimal digit, as aiohttp's pattern
        if digit > end + 1:
            port_end = digit
    return name_end - 1, start, end, port_end


class _QuotedStrings:
    """Where each quoted-string of a header value ends, in linear time overall.

    aiohttp's pattern ``"(?:\\\\[\\t !-~]|qdtext)*"`` has no choice to make: a backslash
    always starts an escaped pair (its qdtext class leaves the backslash out), and the first
    quote not escaped ends the string. The walk from a position is thus fixed; walks from
    different openings merge, and each position's outcome is computed once (``_end``), so a
    value with many openings costs one pass, not one per opening.
    """

    __slots__ = ("_end", "_value")

    def __init__(self, value: str) -> None:
        self._value = value
        self._end: dict[int, int] = {}

    def close(self, open_at: int) -> int:
        """Index of the quote closing the quoted-string opened at ``open_at``; -1 if none."""
        value = self._value
        length = len(value)
        ends = self._end
        path = []
        i = open_at + 1
        while True:
            known = ends.get(i)
            if known is not None:
                end = known
                break
            path.append(i)
            char = value[i] if i < length else ""
            if char == '"':
                end = i
                break
            if char == "\\":
                if i + 1 < length and value[i + 1] in _QUOTED_TEXT:
                    i += 2
                    continue
                end = -1
                break
            if char not in _QUOTED_TEXT:
                end = -1
                break
            i += 1
        for step in path:
            ends[step] = end
        return end

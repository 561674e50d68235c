"""URL routing: resources, routes, match info and the router (aiohttp's ``UrlDispatcher``).

Owns path patterns (``/users/{id}``, ``/files/{path:.*}``), resolution of a request to a
route, reverse URL building (``url_for``), class-based views and sub-application resources.

Theory of operation. Resources are indexed by the static part of their path up to its last
``/`` before the first variable (``/users/{id}/posts`` -> ``/users``; a plain ``/about`` ->
``/about``). Resolving ``/users/7/posts`` looks up ``/users/7/posts``, ``/users/7``, ``/users``,
``/`` in turn, so the cost follows the depth of the path, not the number of routes. Within one
index bucket resources are tried in registration order; a deeper bucket wins over a shallower
one; domain sub-applications (``add_domain``) are tried first -- aiohttp 3.x's order.

Built-in resources resolve synchronously (``_resolve_sync``): the application's request path
never creates a coroutine for routing. A resource class that overrides ``resolve()`` is awaited
instead, and only for requests whose path reaches its bucket.

Imports: ``forkloop.core.web.exceptions`` (and ``static`` lazily, for ``add_static``).
"""

from __future__ import annotations

import abc
import inspect
import keyword
import os
import re
import warnings
from collections.abc import (
    Awaitable,
    Callable,
    Container,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sized,
)
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeAlias, TypeVar, cast
from urllib.parse import quote, unquote

from yarl import URL

from ..http.headers import match_wildcard
from .exceptions import HTTPException, HTTPExpectationFailed, HTTPMethodNotAllowed, HTTPNotFound
from .pathmatch import match_default_vars

if TYPE_CHECKING:
    from .app import Application
    from .request import Request
    from .response import StreamResponse
    from .static import StaticResource

__all__ = [
    "AbstractResource",
    "AbstractRoute",
    "AbstractView",
    "Domain",
    "DynamicResource",
    "MaskDomain",
    "MatchInfoError",
    "MatchedSubAppResource",
    "PlainResource",
    "PrefixResource",
    "PrefixedSubAppResource",
    "Resource",
    "ResourceRoute",
    "SystemRoute",
    "UrlDispatcher",
    "UrlMappingMatchInfo",
    "View",
]

Handler: TypeAlias = Callable[["Request"], Awaitable["StreamResponse"]]
ExpectHandler: TypeAlias = Callable[["Request"], Awaitable["StreamResponse | None"]]
_Resolve: TypeAlias = "tuple[UrlMappingMatchInfo | None, set[str]]"

METH_ANY = "*"
METH_ALL = frozenset(
    {"CONNECT", "HEAD", "GET", "DELETE", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
# RFC 9110 section 5.6.2: a method is a token.
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NAME_SPLIT_RE = re.compile(r"[.:-]")
_IDENT_RE = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
# Characters RFC 3986 allows unescaped in a path (pchar plus "/").
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_KEEP_ESCAPED_RE = re.compile(r"(%2[Ff]|%25)")
_NO_APPS: tuple[Application, ...] = ()


# --- request path helpers -----------------------------------------------------------------


def _path_safe(raw: str) -> str:
    """Percent-decode a raw path except ``%2F`` and ``%25``, like yarl's ``path_safe``.

    Keeping those two escaped lets ``/a%2Fb`` match one ``{name}`` segment ("a/b") instead of
    two path segments.
    """
    pieces = _KEEP_ESCAPED_RE.split(raw)
    for i, piece in enumerate(pieces):
        pieces[i] = piece.upper() if i % 2 else unquote(piece)
    return "".join(pieces)


def _unquote_path_safe(value: str) -> str:
    if "%" not in value:
        return value
    return value.replace("%2F", "/").replace("%25", "%")


def request_path(request: Request) -> str:
    """The path the router matches: the request-target's path, decoded like ``path_safe``."""
    raw: str = request._head.target  # ``raw_path``, without a property call per request
    if not raw.startswith("/"):  # absolute-form or asterisk-form: let yarl take it apart
        return str(request.rel_url.path_safe)
    if "?" in raw:
        raw = raw.partition("?")[0]
    if "%" in raw:
        return _path_safe(raw)
    return raw


def _quote_path(value: str) -> str:
    return quote(value, safe=_PATH_SAFE)


# --- views --------------------------------------------------------------------------------


class AbstractView(abc.ABC):
    """A class-based handler: instantiated with the request, then awaited for the response."""

    def __init__(self, request: Request) -> None:
        self._request = request

    @property
    def request(self) -> Request:
        return self._request

    @abc.abstractmethod
    def __await__(self) -> Generator[Any, None, StreamResponse]: ...


class View(AbstractView):
    """Dispatch on the request method to the coroutine method of the same (lower-case) name.

    A method the class does not define answers 405 with ``Allow`` listing the defined ones.
    """

    async def _iter(self) -> StreamResponse:
        method = self.request.method
        if method not in METH_ALL:
            self._raise_allowed_methods()
        handler: Callable[[], Awaitable[StreamResponse]] | None = getattr(
            self, method.lower(), None
        )
        if handler is None:
            self._raise_allowed_methods()
        return await handler()

    def __await__(self) -> Generator[Any, None, StreamResponse]:
        return self._iter().__await__()

    def _raise_allowed_methods(self) -> NoReturn:
        allowed = {m for m in METH_ALL if hasattr(self, m.lower())}
        raise HTTPMethodNotAllowed(self.request.method, allowed)


# --- routes -------------------------------------------------------------------------------


async def _default_expect_handler(request: Request) -> None:
    """``Expect: 100-continue``: nothing to do now -- the server sends ``100 Continue`` when
    the handler first reads the body, so a handler that refuses the request never makes the
    client upload it. Any other expectation is a 417 (RFC 9110 section 10.1.1)."""
    expect: str = request.headers.get("Expect", "")
    if expect.lower() == "100-continue":
        return
    raise HTTPExpectationFailed(text=f"Unknown Expect: {expect}")


def _wrap_handler(handler: Any) -> Handler:
    """Turn any supported handler into ``async (request) -> response``.

    Coroutine functions and View classes are used as they are; a plain function (or any
    callable) is wrapped so its result is awaited when it is awaitable.
    """
    if inspect.isclass(handler):
        if issubclass(handler, AbstractView):
            return cast(Handler, handler)
        raise TypeError(f"Only View subclasses can be class-based handlers, got {handler!r}")
    if not callable(handler):
        raise TypeError(f"Handler {handler!r} should be callable")
    if inspect.iscoroutinefunction(handler):
        return cast(Handler, handler)
    if inspect.isgeneratorfunction(handler):
        # aiohttp's warning, and its handling: not wrapped, so awaiting what it returns fails
        # at the request (a 500).
        warnings.warn(
            "Bare generators are deprecated, use @coroutine wrapper",
            DeprecationWarning,
            stacklevel=3,
        )
        return cast(Handler, handler)
    warnings.warn("Bare functions are deprecated, use async ones", DeprecationWarning, stacklevel=3)

    @wraps(handler)
    async def handler_wrapper(request: Request) -> StreamResponse:
        result = handler(request)
        if inspect.isawaitable(result):
            result = await result
        return result  # type: ignore[no-any-return]

    return handler_wrapper


class AbstractRoute(abc.ABC):
    """One (method, handler) pair of a resource."""

    __slots__ = ("_expect_handler", "_handler", "_method", "_resource")

    def __init__(
        self,
        method: str,
        handler: Any,
        *,
        expect_handler: ExpectHandler | None = None,
        resource: AbstractResource | None = None,
    ) -> None:
        if expect_handler is None:
            expect_handler = _default_expect_handler
        if not inspect.iscoroutinefunction(expect_handler):
            raise TypeError(f"expect_handler {expect_handler!r} must be a coroutine function")
        method = method.upper()
        if not _TOKEN_RE.fullmatch(method):
            raise ValueError(f"{method!r} is not an allowed HTTP method")
        self._method = method
        self._handler = _wrap_handler(handler)
        self._expect_handler = expect_handler
        self._resource = resource

    @property
    def method(self) -> str:
        return self._method

    @property
    def handler(self) -> Handler:
        return self._handler

    @property
    @abc.abstractmethod
    def name(self) -> str | None: ...

    @property
    def resource(self) -> AbstractResource | None:
        return self._resource

    @abc.abstractmethod
    def get_info(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def url_for(self, *args: str, **kwargs: Any) -> URL: ...

    async def handle_expect_header(self, request: Request) -> StreamResponse | None:
        return await self._expect_handler(request)


class ResourceRoute(AbstractRoute):
    """A route attached to a :class:`Resource`."""

    __slots__ = ()

    def __init__(
        self,
        method: str,
        handler: Any,
        resource: AbstractResource,
        *,
        expect_handler: ExpectHandler | None = None,
    ) -> None:
        super().__init__(method, handler, expect_handler=expect_handler, resource=resource)

    def __repr__(self) -> str:
        return f"<ResourceRoute [{self.method}] {self._resource} -> {self.handler!r}>"

    @property
    def name(self) -> str | None:
        return self._resource.name if self._resource is not None else None

    def url_for(self, *args: str, **kwargs: Any) -> URL:
        if self._resource is None:
            raise RuntimeError("route has no resource")
        return self._resource.url_for(*args, **kwargs)

    def get_info(self) -> dict[str, Any]:
        return self._resource.get_info() if self._resource is not None else {}


class SystemRoute(AbstractRoute):
    """The route of a failed resolution (404/405): its handler raises the HTTP exception."""

    __slots__ = ("_http_exception",)

    def __init__(self, http_exception: HTTPException) -> None:
        self._http_exception = http_exception
        super().__init__(METH_ANY, self._handle)

    async def _handle(self, request: Request) -> StreamResponse:
        raise self._http_exception

    def url_for(self, *args: str, **kwargs: Any) -> URL:
        raise RuntimeError(".url_for() is not allowed for SystemRoute")

    @property
    def name(self) -> str | None:
        return None

    def get_info(self) -> dict[str, Any]:
        return {"http_exception": self._http_exception}

    @property
    def status(self) -> int:
        return self._http_exception.status

    @property
    def reason(self) -> str:
        return self._http_exception.reason

    def __repr__(self) -> str:
        return f"<SystemRoute {self.status}: {self.reason}>"


# --- match info ---------------------------------------------------------------------------


class UrlMappingMatchInfo(dict[str, str]):
    """The result of routing: the path variables (a dict) plus the matched route.

    ``apps`` is the application chain from the outermost app to the one owning the route;
    ``current_app`` is the app whose middlewares / handler run right now.
    """

    __slots__ = ("_apps", "_current_app", "_frozen", "_route")

    def __init__(self, match_dict: dict[str, str], route: AbstractRoute) -> None:
        super().__init__(match_dict)
        self._route = route
        self._apps: tuple[Application, ...] = _NO_APPS
        self._current_app: Application | None = None
        self._frozen = False

    @property
    def handler(self) -> Handler:
        return self._route.handler

    @property
    def route(self) -> AbstractRoute:
        return self._route

    @property
    def expect_handler(self) -> ExpectHandler:
        return self._route.handle_expect_header

    @property
    def http_exception(self) -> HTTPException | None:
        return None

    def get_info(self) -> dict[str, Any]:
        return self._route.get_info()

    @property
    def apps(self) -> tuple[Application, ...]:
        return self._apps

    def add_app(self, app: Application) -> None:
        if self._frozen:
            raise RuntimeError("Cannot change apps stack after .freeze() call")
        if self._current_app is None:
            self._current_app = app
        self._apps = (app, *self._apps)

    @property
    def current_app(self) -> Application:
        app = self._current_app
        if app is None:
            raise RuntimeError("match info has no application yet")
        return app

    @current_app.setter
    def current_app(self, app: Application) -> None:
        self._current_app = app

    @contextmanager
    def set_current_app(self, app: Application) -> Iterator[None]:
        if app not in self._apps:
            raise RuntimeError(f"Expected one of the following apps {self._apps!r}, got {app!r}")
        prev = self._current_app
        self._current_app = app
        try:
            yield
        finally:
            self._current_app = prev

    def freeze(self) -> None:
        self._frozen = True

    def __repr__(self) -> str:
        return f"<MatchInfo {dict.__repr__(self)}: {self._route}>"


class _RoutedMatchInfo(UrlMappingMatchInfo):
    """Same object, built without a Python-level ``__init__`` (about 3x cheaper per request)."""

    __slots__ = ()
    __init__ = dict.__init__


def _match_info(match_dict: dict[str, str], route: AbstractRoute) -> UrlMappingMatchInfo:
    info = cast(UrlMappingMatchInfo, _RoutedMatchInfo(match_dict))
    info._route = route
    info._apps = _NO_APPS
    info._current_app = None
    info._frozen = False
    return info


class MatchInfoError(UrlMappingMatchInfo):
    """Match info of a failed resolution; ``http_exception`` is the 404 or 405 to answer."""

    __slots__ = ("_exception",)

    def __init__(self, http_exception: HTTPException) -> None:
        self._exception = http_exception
        super().__init__({}, SystemRoute(http_exception))

    @property
    def http_exception(self) -> HTTPException:
        return self._exception

    def __repr__(self) -> str:
        return f"<MatchInfoError {self._exception.status}: {self._exception.reason}>"


# --- resources ----------------------------------------------------------------------------


class AbstractResource(Sized, Iterable[AbstractRoute]):
    """A URL (pattern) with its routes.

    Subclasses implement ``resolve(request) -> (match_info | None, allowed_methods)``. Built-in
    resources also implement the synchronous ``_resolve_sync``; a subclass overriding only
    ``resolve`` is awaited by the router.
    """

    __slots__ = ("_frozen", "_name")

    _sync: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "resolve" in cls.__dict__ and "_resolve_sync" not in cls.__dict__:
            cls._sync = False

    def __init__(self, *, name: str | None = None) -> None:
        self._name = name
        self._frozen = False

    @property
    def name(self) -> str | None:
        return self._name

    @property
    @abc.abstractmethod
    def canonical(self) -> str:
        """The path pattern with variables as ``{name}`` (``/users/{id}``)."""

    @abc.abstractmethod
    def url_for(self, **kwargs: Any) -> URL:
        """A relative URL for this resource, variable parts filled from ``kwargs``."""

    @abc.abstractmethod
    async def resolve(self, request: Request) -> _Resolve:
        """Match the request: ``(match_info or None, allowed methods)``."""

    def _resolve_sync(self, request: Request, method: str, path: str) -> _Resolve | None:
        """Synchronous resolve on the pre-extracted method and path; ``None``: await resolve."""
        return None

    @abc.abstractmethod
    def add_prefix(self, prefix: str) -> None:
        """Prepend ``prefix`` (a sub-application's) to the path."""

    @abc.abstractmethod
    def get_info(self) -> dict[str, Any]:
        """A description for introspection (``path``, ``formatter``/``pattern``, ...)."""

    @abc.abstractmethod
    def raw_match(self, path: str) -> bool:
        """Whether ``path`` is this resource's registered path pattern, verbatim."""

    def freeze(self) -> None:
        self._frozen = True


class Resource(AbstractResource):
    """A resource with routes (one per method, or ``*``)."""

    __slots__ = ("_allowed", "_any_route", "_method_routes", "_routes")

    _sync = True

    def __init__(self, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self._routes: list[ResourceRoute] = []
        self._method_routes: dict[str, ResourceRoute] = {}
        self._any_route: ResourceRoute | None = None
        self._allowed: set[str] = set()

    def add_route(
        self,
        method: str,
        handler: Any,
        *,
        expect_handler: ExpectHandler | None = None,
    ) -> ResourceRoute:
        if self._frozen:
            raise RuntimeError(f"Cannot add a route to {self!r}: the router is frozen.")
        method = method.upper()
        for route in self._routes:
            if route.method == method or route.method == METH_ANY:
                raise RuntimeError(
                    f"Added route will never be executed, method {route.method} is already "
                    f"registered for {self.canonical!r}"
                )
        route = ResourceRoute(method, handler, self, expect_handler=expect_handler)
        self._routes.append(route)
        if route.method == METH_ANY:
            self._any_route = route
        else:
            self._method_routes[route.method] = route
        self._allowed.add(route.method)
        return route

    @abc.abstractmethod
    def _match(self, path: str) -> dict[str, str] | None:
        """The path variables when ``path`` matches, else None."""

    def _resolve_sync(self, request: Request, method: str, path: str) -> _Resolve | None:
        match_dict = self._match(path)
        if match_dict is None:
            return None, _EMPTY_SET
        route = self._method_routes.get(method) or self._any_route
        if route is not None:
            return _match_info(match_dict, route), self._allowed
        return None, self._allowed

    async def resolve(self, request: Request) -> _Resolve:
        result = self._resolve_sync(request, request.method, request_path(request))
        if result is None:  # pragma: no cover - built-in resources always resolve
            raise RuntimeError("resource cannot resolve")
        return result

    def __len__(self) -> int:
        return len(self._routes)

    def __iter__(self) -> Iterator[AbstractRoute]:
        return iter(self._routes)


_EMPTY_SET: set[str] = set()


class PlainResource(Resource):
    """A fixed path such as ``/about``."""

    __slots__ = ("_path",)

    def __init__(self, path: str, *, name: str | None = None) -> None:
        super().__init__(name=name)
        if path and not path.startswith("/"):
            raise ValueError(f"path should be started with / or be empty: {path!r}")
        self._path = path

    @property
    def canonical(self) -> str:
        return self._path

    def add_prefix(self, prefix: str) -> None:
        _check_prefix(prefix)
        self._path = prefix + self._path

    def _match(self, path: str) -> dict[str, str] | None:
        return {} if path == self._path else None

    def raw_match(self, path: str) -> bool:
        return self._path == path

    def get_info(self) -> dict[str, Any]:
        return {"path": self._path}

    def url_for(self, **kwargs: Any) -> URL:
        if kwargs:
            raise ValueError(
                f"url_for() of the plain resource {self._path!r} takes no parts, "
                f"got {sorted(kwargs)}"
            )
        return URL.build(path=_quote_path(self._path), encoded=True)

    def __repr__(self) -> str:
        name = f"'{self.name}' " if self.name is not None else ""
        return f"<PlainResource {name} {self._path}>"


def _parse_pattern(path: str) -> list[tuple[str, str | None]]:
    """Split ``/a/{x}/{y:\\d+}`` into literal and variable parts.

    Each item is ``(literal, None)`` or ``(name, regex)``. Braces inside a variable's regex
    (``{id:\\d{1,3}}``) nest one level deep. Raises ValueError naming the bad text.
    """
    parts: list[tuple[str, str | None]] = []
    i, n = 0, len(path)
    literal_start = 0
    while i < n:
        ch = path[i]
        if ch == "}":
            raise ValueError(f"Invalid path {path!r}: unmatched '}}' at offset {i}")
        if ch != "{":
            i += 1
            continue
        if i > literal_start:
            parts.append((path[literal_start:i], None))
        depth, j = 1, i + 1
        while j < n and depth:
            if path[j] == "{":
                depth += 1
            elif path[j] == "}":
                depth -= 1
            j += 1
        if depth:
            raise ValueError(f"Invalid path {path!r}: unmatched '{{' at offset {i}")
        body = path[i + 1 : j - 1]
        name, sep, regex = body.partition(":")
        if not _IDENT_RE.fullmatch(name):
            raise ValueError(
                f"Invalid path {path!r}: bad variable {{{body}}}; a variable is "
                "{name} or {name:regex} with name a Python identifier"
            )
        if sep and not regex:
            raise ValueError(f"Invalid path {path!r}: empty regex in {{{body}}}")
        parts.append((name, regex if sep else "[^{}/]+"))
        i = literal_start = j
    if literal_start < n:
        parts.append((path[literal_start:], None))
    return parts


# Paths longer than this go to match_default_vars when the route qualifies (_linear_form);
# shorter ones take the compiled regex, whose worst case is small at this length.
_LINEAR_FROM = 64


def _linear_form(parts: list[tuple[str, str | None]]) -> tuple[list[str], list[str]] | None:
    """``(literals, names)`` of a route made of default variables where two share a segment
    (the regex of which backtracks), else None."""
    literals = [""]
    names: list[str] = []
    shared = False
    for text, var_regex in parts:
        if var_regex is None:
            literals[-1] += text
        elif var_regex != "[^{}/]+":
            return None
        else:
            if names and "/" not in literals[-1]:
                shared = True
            names.append(text)
            literals.append("")
    return (literals, names) if shared else None


class DynamicResource(Resource):
    """A path with variable parts: ``/users/{id}``, ``/files/{path:.*}``."""

    __slots__ = ("_canonical", "_linear", "_names", "_orig_path", "_parts", "_pattern")

    def __init__(self, path: str, *, name: str | None = None) -> None:
        super().__init__(name=name)
        if path and not path.startswith("/"):
            raise ValueError(f"path should be started with / or be empty: {path!r}")
        self._orig_path = path
        self._parts = _parse_pattern(path)
        self._compile()

    def _compile(self) -> None:
        regex_parts: list[str] = []
        canonical: list[str] = []
        names: list[str] = []
        for text, var_regex in self._parts:
            if var_regex is None:
                regex_parts.append(re.escape(text))
                canonical.append(text)
            else:
                regex_parts.append(f"(?P<{text}>{var_regex})")
                canonical.append(f"{{{text}}}")
                names.append(text)
        pattern = "".join(regex_parts)
        try:
            self._pattern = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"Bad pattern {self._orig_path!r}: {exc}") from None
        self._canonical = "".join(canonical)
        self._names = tuple(names)
        self._linear = _linear_form(self._parts)

    @property
    def canonical(self) -> str:
        return self._canonical

    def add_prefix(self, prefix: str) -> None:
        _check_prefix(prefix)
        self._orig_path = prefix + self._orig_path
        self._parts.insert(0, (prefix, None))
        self._compile()

    def _match(self, path: str) -> dict[str, str] | None:
        linear = self._linear
        if linear is not None and len(path) > _LINEAR_FROM:
            # Several default variables in one segment: the regex would backtrack
            # polynomially on a long hostile path (issue 15); same match, linear time.
            found = match_default_vars(linear[0], linear[1], path)
        else:
            match = self._pattern.fullmatch(path)
            found = None if match is None else match.groupdict()
        if found is None or "%" not in path:
            return found
        return {key: _unquote_path_safe(value) for key, value in found.items()}

    def raw_match(self, path: str) -> bool:
        return self._orig_path == path

    def get_info(self) -> dict[str, Any]:
        return {"formatter": self._canonical, "pattern": self._pattern}

    def url_for(self, **parts: Any) -> URL:
        missing = [name for name in self._names if name not in parts]
        if missing:
            raise KeyError(
                f"url_for() of {self._canonical!r} is missing the part(s) {', '.join(missing)}"
            )
        out: list[str] = []
        for text, var_regex in self._parts:
            if var_regex is None:
                out.append(_quote_path(text))
            else:
                out.append(_quote_path(str(parts[text])))
        return URL.build(path="".join(out), encoded=True)

    def __repr__(self) -> str:
        name = f"'{self.name}' " if self.name is not None else ""
        return f"<DynamicResource {name} {self._canonical}>"


def _check_prefix(prefix: str) -> None:
    if not prefix.startswith("/") or prefix.endswith("/") or len(prefix) < 2:
        raise ValueError(
            f"Invalid prefix {prefix!r}: a prefix starts with '/' and does not end with '/'"
        )


class PrefixResource(AbstractResource):
    """A resource that owns every path under a prefix (static files, sub-applications)."""

    __slots__ = ("_prefix", "_prefix2")

    def __init__(self, prefix: str, *, name: str | None = None) -> None:
        if prefix and not prefix.startswith("/"):
            raise ValueError(f"prefix should start with '/': {prefix!r}")
        if prefix not in ("", "/") and prefix.endswith("/"):
            raise ValueError(f"prefix should not end with '/': {prefix!r}")
        super().__init__(name=name)
        self._prefix = prefix
        self._prefix2 = prefix + "/"

    @property
    def canonical(self) -> str:
        return self._prefix

    def add_prefix(self, prefix: str) -> None:
        _check_prefix(prefix)
        self._prefix = prefix + self._prefix
        self._prefix2 = self._prefix + "/"

    def raw_match(self, prefix: str) -> bool:
        return False


class PrefixedSubAppResource(PrefixResource):
    """Everything under ``prefix`` goes to a sub-application's router."""

    __slots__ = ("_app",)

    _sync = True

    def __init__(self, prefix: str, app: Application) -> None:
        super().__init__(prefix)
        self._app = app
        self._add_prefix_to_resources(prefix)

    def add_prefix(self, prefix: str) -> None:
        super().add_prefix(prefix)
        self._add_prefix_to_resources(prefix)

    def _add_prefix_to_resources(self, prefix: str) -> None:
        router = self._app.router
        for resource in router.resources():
            router.unindex_resource(resource)
            resource.add_prefix(prefix)
            router.index_resource(resource)

    def url_for(self, **kwargs: Any) -> URL:
        raise RuntimeError(".url_for() is not supported by sub-application root")

    def get_info(self) -> dict[str, Any]:
        return {"app": self._app, "prefix": self._prefix}

    def _resolve_sync(self, request: Request, method: str, path: str) -> _Resolve | None:
        if not path.startswith(self._prefix2) and path != self._prefix:
            return None, _EMPTY_SET
        match_info = self._app.router._resolve_sync(request, method, path)
        if match_info is None:
            return None
        return self._claim(match_info)

    async def resolve(self, request: Request) -> _Resolve:
        path = request_path(request)
        if not path.startswith(self._prefix2) and path != self._prefix:
            return None, _EMPTY_SET
        return self._claim(await self._app.router.resolve(request))

    def _claim(self, match_info: UrlMappingMatchInfo) -> _Resolve:
        # The prefix owns its subtree: the sub-app's 404/405 is the answer.
        match_info.add_app(self._app)
        exc = match_info.http_exception
        if isinstance(exc, HTTPMethodNotAllowed):
            return match_info, exc.allowed_methods
        return match_info, _EMPTY_SET

    def __len__(self) -> int:
        return len(self._app.router.routes())

    def __iter__(self) -> Iterator[AbstractRoute]:
        return iter(self._app.router.routes())

    def __repr__(self) -> str:
        return f"<PrefixedSubAppResource {self._prefix} -> {self._app!r}>"


class AbstractRuleMatching(abc.ABC):
    """A rule selecting a sub-application (by host, for ``add_domain``)."""

    @abc.abstractmethod
    def match_request(self, request: Request) -> bool: ...

    @property
    @abc.abstractmethod
    def canonical(self) -> str: ...

    @abc.abstractmethod
    def get_info(self) -> dict[str, Any]: ...


_DOMAIN_LABEL_RE = re.compile(r"(?!-)[a-z\d-]{1,63}(?<!-)")


class Domain(AbstractRuleMatching):
    """Match the Host header exactly (``example.com``, ``example.com:8080``)."""

    def __init__(self, domain: str) -> None:
        self._domain = self._validate(domain)

    def _validate(self, domain: str) -> str:
        if not isinstance(domain, str):
            raise TypeError(f"Domain must be str, got {domain!r}")
        domain = domain.rstrip(".").lower()
        if not domain:
            raise ValueError("Domain cannot be empty")
        if "://" in domain:
            raise ValueError(f"Domain {domain!r}: scheme not supported")
        url = URL("http://" + domain)
        host = url.raw_host
        if host is None or not all(_DOMAIN_LABEL_RE.fullmatch(label) for label in host.split(".")):
            raise ValueError(f"Domain {domain!r} is not valid")
        if url.path not in ("", "/"):
            raise ValueError(f"Domain {domain!r} must not have a path")
        if url.port == 80:
            return host
        return f"{host}:{url.port}"

    @property
    def canonical(self) -> str:
        return self._domain

    def match_domain(self, host: str) -> bool:
        return host.lower() == self._domain

    def match_request(self, request: Request) -> bool:
        host = request.headers.get("Host")
        return host is not None and self.match_domain(host)

    def get_info(self) -> dict[str, Any]:
        return {"domain": self._domain}


class MaskDomain(Domain):
    """Match the Host header against a mask: ``*.example.com``."""

    def __init__(self, domain: str) -> None:
        super().__init__(domain)
        self._mask = re.compile(re.escape(self._domain).replace(r"\*", ".*"))

    def _validate(self, domain: str) -> str:
        # Validate with a letter standing in for each "*", then put the wildcards back.
        return super()._validate(domain.replace("*", "wildcard")).replace("wildcard", "*")

    @property
    def canonical(self) -> str:
        return self._mask.pattern

    def match_domain(self, host: str) -> bool:
        # Not the regex: ".*" pieces backtrack polynomially on a hostile Host (issue 15).
        return match_wildcard(self._domain, host.lower())


class MatchedSubAppResource(PrefixedSubAppResource):
    """A sub-application selected by a rule (``add_domain``), not by a path prefix."""

    __slots__ = ("_rule",)

    def __init__(self, rule: AbstractRuleMatching, app: Application) -> None:
        AbstractResource.__init__(self)
        self._prefix = ""
        self._prefix2 = "/"
        self._app = app
        self._rule = rule

    @property
    def canonical(self) -> str:
        return self._rule.canonical

    def get_info(self) -> dict[str, Any]:
        return {"app": self._app, "rule": self._rule}

    def _resolve_sync(self, request: Request, method: str, path: str) -> _Resolve | None:
        if not self._rule.match_request(request):
            return None, _EMPTY_SET
        match_info = self._app.router._resolve_sync(request, method, path)
        if match_info is None:
            return None
        return self._claim(match_info)

    async def resolve(self, request: Request) -> _Resolve:
        if not self._rule.match_request(request):
            return None, _EMPTY_SET
        return self._claim(await self._app.router.resolve(request))

    def __repr__(self) -> str:
        return f"<MatchedSubAppResource -> {self._app!r}>"


# --- views of the router ------------------------------------------------------------------


_T = TypeVar("_T")


class _ListView(Sized, Iterable[_T], Container[_T]):
    """A read-only view of a list (the router's resources or routes)."""

    def __init__(self, items: list[_T]) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[_T]:
        yield from self._items

    def __contains__(self, item: object) -> bool:
        return item in self._items


class ResourcesView(_ListView[AbstractResource]):
    pass


class RoutesView(_ListView[AbstractRoute]):
    def __init__(self, resources: list[AbstractResource]) -> None:
        super().__init__([route for resource in resources for route in resource])


# --- the router ---------------------------------------------------------------------------


def _check_name(name: str) -> None:
    for part in _NAME_SPLIT_RE.split(name):
        if not part.isidentifier() or keyword.iskeyword(part):
            raise ValueError(
                f"Incorrect route name {name!r}, the name should be a sequence of python "
                "identifiers separated by dash, dot or column"
            )


def _index_key(resource: AbstractResource) -> str:
    key = resource.canonical
    if "{" in key:
        # Up to the first variable, cut back to a segment boundary: "/a/b{x}" -> "/a".
        key = key.partition("{")[0].rpartition("/")[0]
    return key.rstrip("/") or "/"


class AbstractRouter(abc.ABC):
    """aiohttp.abc's router interface, for ``Application(router=...)`` with a router that is not
    a :class:`UrlDispatcher` (importable as ``forkloop.abc.AbstractRouter``).

    The application awaits :meth:`resolve` for every request and builds the middleware chain
    around the handler of the match info it returns (a :class:`UrlMappingMatchInfo`, or a
    :class:`MatchInfoError` for a 404/405), as aiohttp does; the resolution cache and the
    chains prepared at start-up are a :class:`UrlDispatcher`'s alone.
    """

    def __init__(self) -> None:
        self._frozen = False

    def post_init(self, app: Application) -> None:  # noqa: B027 - optional, as in aiohttp
        """aiohttp's hook for a router that wants its application; aiohttp 3.14's
        Application does not call it, nor does forkloop's."""

    @property
    def frozen(self) -> bool:
        return self._frozen

    def freeze(self) -> None:
        self._frozen = True

    @abc.abstractmethod
    async def resolve(self, request: Request) -> UrlMappingMatchInfo:
        """The match info of ``request``."""


class AbstractMatchInfo(abc.ABC):  # noqa: B024 - aiohttp.abc's name; UrlMappingMatchInfo registers
    """aiohttp.abc's match-info interface; :class:`UrlMappingMatchInfo` is registered as one."""


AbstractMatchInfo.register(UrlMappingMatchInfo)


class UrlDispatcher(Mapping[str, AbstractResource]):
    """The router: registers resources and routes, resolves requests, builds URLs.

    As a mapping it maps route names to resources (``router['login'].url_for()``).
    """

    def __init__(self) -> None:
        self._resources: list[AbstractResource] = []
        self._named_resources: dict[str, AbstractResource] = {}
        self._index: dict[str, list[AbstractResource]] = {}
        self._domain_resources: list[MatchedSubAppResource] = []
        self._frozen = False
        # path -> method -> route, for requests a PlainResource of this router answered: the
        # frozen router gives the same answer again (see _resolve_sync). At most one entry per
        # plain route, so clients cannot grow it.
        self._plain_hits: dict[str, dict[str, AbstractRoute]] = {}

    # -- resolution

    def remembered_route(self, target: str, method: str) -> AbstractRoute | None:
        """The route this frozen router gave a plain path before (``_resolve_sync`` remembers
        the answers of plain resources), for a request-target that is its own path: no
        query, no percent-escapes (request_path() would return it unchanged). None when there
        is no such answer: resolve the request then."""
        if "?" in target or "%" in target:
            return None
        by_method = self._plain_hits.get(target)
        return by_method.get(method) if by_method is not None else None

    def _resolve_sync(self, request: Request, method: str, path: str) -> UrlMappingMatchInfo | None:
        """Resolve without awaiting; ``None`` when a custom resource must be awaited."""
        route = self.remembered_route(path, method)
        if route is not None:
            return _match_info({}, route)
        if self._domain_resources:
            return self._resolve_domains_sync(request, method, path)
        info = self._resolve_index_sync(request, method, path, None)
        if (
            self._frozen
            and isinstance(info, _RoutedMatchInfo)
            and info._apps is _NO_APPS  # not through a sub-application
            and type(info._route._resource) is PlainResource  # matched by path equality
            and "?" not in path  # a request-target equal to a remembered path is that path
            and "%" not in path  # (AppDispatch relies on it: no query, no escapes to decode)
        ):
            # Resolution of a frozen router depends on the method and path only (domain
            # resources, which look at the Host, never get here), so remember the answer.
            self._plain_hits.setdefault(path, {})[method] = info._route
        return info

    def _resolve_domains_sync(
        self, request: Request, method: str, path: str
    ) -> UrlMappingMatchInfo | None:
        allowed: set[str] | None = None
        for resource in self._domain_resources:
            result = resource._resolve_sync(request, method, path)
            if result is None:
                return None
            if result[0] is not None:
                return result[0]
            if result[1]:
                allowed = set(result[1]) if allowed is None else allowed | result[1]
        return self._resolve_index_sync(request, method, path, allowed)

    def _resolve_index_sync(
        self, request: Request, method: str, path: str, allowed: set[str] | None
    ) -> UrlMappingMatchInfo | None:
        index = self._index
        part = path
        while True:
            bucket = index.get(part)
            if bucket is not None:
                for resource in bucket:
                    if not resource._sync:
                        return None
                    result = resource._resolve_sync(request, method, path)
                    if result is None:
                        return None
                    if result[0] is not None:
                        return result[0]
                    if result[1]:
                        allowed = set(result[1]) if allowed is None else allowed | result[1]
            if part == "/":
                break
            part = part.rpartition("/")[0] or "/"
        if allowed:
            return MatchInfoError(HTTPMethodNotAllowed(method, allowed))
        return MatchInfoError(HTTPNotFound())

    async def resolve(self, request: Request) -> UrlMappingMatchInfo:
        """Resolve ``request`` to its match info (a :class:`MatchInfoError` for 404/405)."""
        method: str = request.method
        path = request_path(request)
        result = self._resolve_sync(request, method, path)
        if result is not None:
            return result
        allowed: set[str] = set()
        for domain_resource in self._domain_resources:
            match_info, methods = await domain_resource.resolve(request)
            if match_info is not None:
                return match_info
            allowed |= methods
        part = path
        while True:
            for resource in self._index.get(part, ()):
                match_info, methods = await resource.resolve(request)
                if match_info is not None:
                    return match_info
                allowed |= methods
            if part == "/":
                break
            part = part.rpartition("/")[0] or "/"
        if allowed:
            return MatchInfoError(HTTPMethodNotAllowed(method, allowed))
        return MatchInfoError(HTTPNotFound())

    # -- mapping of names

    def __iter__(self) -> Iterator[str]:
        return iter(self._named_resources)

    def __len__(self) -> int:
        return len(self._named_resources)

    def __contains__(self, name: object) -> bool:
        return name in self._named_resources

    def __getitem__(self, name: str) -> AbstractResource:
        try:
            return self._named_resources[name]
        except KeyError:
            known = ", ".join(sorted(self._named_resources)) or "none"
            raise KeyError(f"No route named {name!r} (named routes: {known})") from None

    def resources(self) -> ResourcesView:
        return ResourcesView(self._resources)

    def routes(self) -> RoutesView:
        return RoutesView(self._resources)

    def named_resources(self) -> Mapping[str, AbstractResource]:
        return MappingProxyType(self._named_resources)

    # -- registration

    def register_resource(self, resource: AbstractResource) -> None:
        if not isinstance(resource, AbstractResource):
            raise TypeError(f"Instance of AbstractResource class is required, got {resource!r}")
        if self._frozen:
            raise RuntimeError("Cannot register a resource into frozen router.")
        name = resource.name
        if name is not None:
            _check_name(name)
            if name in self._named_resources:
                raise ValueError(
                    f"Duplicate {name!r}, already handled by {self._named_resources[name]!r}"
                )
            self._named_resources[name] = resource
        self._resources.append(resource)
        if isinstance(resource, MatchedSubAppResource):
            self._domain_resources.append(resource)
        else:
            self.index_resource(resource)

    def index_resource(self, resource: AbstractResource) -> None:
        self._index.setdefault(_index_key(resource), []).append(resource)

    def unindex_resource(self, resource: AbstractResource) -> None:
        self._index[_index_key(resource)].remove(resource)

    def add_resource(self, path: str, *, name: str | None = None) -> Resource:
        if path and not path.startswith("/"):
            raise ValueError(f"path should be started with / or be empty: {path!r}")
        if self._frozen:
            raise RuntimeError("Cannot register a resource into frozen router.")
        # Reuse the last resource when path and name repeat (aiohttp): GET and POST on one
        # path share one resource, so a wrong method is a 405, not a 404.
        if self._resources:
            last = self._resources[-1]
            if isinstance(last, Resource) and last.name == name and last.raw_match(path):
                return last
        resource: Resource
        if "{" in path or "}" in path:
            resource = DynamicResource(path, name=name)
        else:
            resource = PlainResource(path, name=name)
        self.register_resource(resource)
        return resource

    def add_route(
        self,
        method: str,
        path: str,
        handler: Any,
        *,
        name: str | None = None,
        expect_handler: ExpectHandler | None = None,
    ) -> AbstractRoute:
        resource = self.add_resource(path, name=name)
        return resource.add_route(method, handler, expect_handler=expect_handler)

    def add_static(
        self,
        prefix: str,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        expect_handler: ExpectHandler | None = None,
        chunk_size: int = 256 * 1024,
        show_index: bool = False,
        follow_symlinks: bool = False,
        append_version: bool = False,
    ) -> StaticResource:
        """Serve the files under directory ``path`` at URL ``prefix`` (for development)."""
        from .static import StaticResource

        if not prefix.startswith("/"):
            raise ValueError(f"prefix should start with '/': {prefix!r}")
        prefix = prefix.rstrip("/")
        resource = StaticResource(
            prefix,
            Path(path),
            name=name,
            expect_handler=expect_handler,
            chunk_size=chunk_size,
            show_index=show_index,
            follow_symlinks=follow_symlinks,
            append_version=append_version,
        )
        self.register_resource(resource)
        return resource

    def add_head(self, path: str, handler: Any, **kwargs: Any) -> AbstractRoute:
        return self.add_route("HEAD", path, handler, **kwargs)

    def add_options(self, path: str, handler: Any, **kwargs: Any) -> AbstractRoute:
        return self.add_route("OPTIONS", path, handler, **kwargs)

    def add_get(
        self,
        path: str,
        handler: Any,
        *,
        name: str | None = None,
        allow_head: bool = True,
        **kwargs: Any,
    ) -> AbstractRoute:
        """GET route; with ``allow_head`` (default) HEAD is served by the same handler."""
        resource = self.add_resource(path, name=name)
        if allow_head:
            resource.add_route("HEAD", handler, **kwargs)
        return resource.add_route("GET", handler, **kwargs)

    def add_post(self, path: str, handler: Any, **kwargs: Any) -> AbstractRoute:
        return self.add_route("POST", path, handler, **kwargs)

    def add_put(self, path: str, handler: Any, **kwargs: Any) -> AbstractRoute:
        return self.add_route("PUT", path, handler, **kwargs)

    def add_patch(self, path: str, handler: Any, **kwargs: Any) -> AbstractRoute:
        return self.add_route("PATCH", path, handler, **kwargs)

    def add_delete(self, path: str, handler: Any, **kwargs: Any) -> AbstractRoute:
        return self.add_route("DELETE", path, handler, **kwargs)

    def add_view(self, path: str, handler: type[AbstractView], **kwargs: Any) -> AbstractRoute:
        """A class-based view: every method goes to ``handler``, which dispatches itself."""
        return self.add_route(METH_ANY, path, handler, **kwargs)

    def add_routes(self, routes: Iterable[Any]) -> list[AbstractRoute]:
        """Register route definitions (``web.get(...)``, a ``RouteTableDef``)."""
        registered: list[AbstractRoute] = []
        for route_def in routes:
            registered.extend(route_def.register(self))
        return registered

    def freeze(self) -> None:
        self._frozen = True
        for resource in self._resources:
            resource.freeze()

    @property
    def frozen(self) -> bool:
        return self._frozen

    def __repr__(self) -> str:
        return f"<UrlDispatcher {len(self._resources)} resources>"

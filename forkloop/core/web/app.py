"""``Application``: routing table, middlewares, signals and state of an aiohttp.web app.

Owns the application object the runner serves: its dict-like state (``str`` keys or typed
:class:`AppKey`), its router, sub-applications (``add_subapp``, ``add_domain``), the signals
(``on_startup``, ``on_shutdown``, ``on_cleanup``, ``on_response_prepare``, ``cleanup_ctx``),
and the per-request entry point ``_handle`` (route, ``Expect``, middleware chain, handler).

Theory of operation. ``freeze()`` locks the router, the middleware list and the signals, then
builds, for every route of the app and its sub-apps, the complete middleware chain once (first
listed middleware outermost; an outer app's middlewares outside a sub-app's). Per request
``_handle`` resolves the route without awaiting (see ``urldispatcher``), looks the prepared
chain up by route and awaits it: no closures or partials are created per request.

Imports: ``urldispatcher``, ``request``, ``dispatch``, ``log``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import warnings
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    MutableMapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager
from functools import partial, update_wrapper
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

from .dispatch import AppDispatch, routed_match_info
from .log import web_logger
from .request import Request, RequestFactory
from .urldispatcher import (
    AbstractResource,
    AbstractRoute,
    AbstractRouter,
    Domain,
    Handler,
    MaskDomain,
    MatchedSubAppResource,
    PrefixedSubAppResource,
    UrlDispatcher,
    UrlMappingMatchInfo,
    request_path,
)

if TYPE_CHECKING:
    from .response import StreamResponse

__all__ = [
    "AppKey",
    "Application",
    "CleanupError",
    "NotAppKeyWarning",
    "RequestKey",
    "ResponseKey",
]

_T = TypeVar("_T")
_R = TypeVar("_R", bound=AbstractResource)

Middleware = Callable[["Request", Handler], Awaitable["StreamResponse"]]


class NotAppKeyWarning(UserWarning):
    """Warned, as aiohttp does, when a plain ``str`` is used as a key of an application, a
    request or a response's storage: typed keys (``AppKey``, ``RequestKey``, ``ResponseKey``)
    are recommended."""


class AppKey(Generic[_T]):
    """A typed application key: ``db_key = web.AppKey("db", Database)``; ``app[db_key]``.

    Type checkers infer ``app[db_key]`` to be a ``Database``; the key's name is qualified by
    the module that created it, so two libraries never clash.
    """

    def __init__(self, name: str, t: type[_T] | None = None) -> None:
        frame = sys._getframe(1)
        while frame.f_back is not None and frame.f_globals.get("__name__") == "typing":
            frame = frame.f_back  # AppKey[int]("x") is constructed from inside typing
        module = frame.f_globals.get("__name__", "")
        self._name = name if module in ("", "__main__") else f"{module}.{name}"
        self._t = t

    @property
    def name(self) -> str:
        return self._name

    def __lt__(self, other: object) -> bool:
        if isinstance(other, AppKey):
            return self._name < other._name
        return True  # AppKeys sort before str keys

    def __repr__(self) -> str:
        t: Any = self._t
        if t is None:
            t_repr = "<<Unknown>>"
        elif isinstance(t, type):
            t_repr = (
                t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
            )
        else:
            t_repr = repr(t)
        return f"<{type(self).__name__}({self._name}, type={t_repr})>"


class RequestKey(AppKey[_T]):
    """A typed key for ``request[key]`` storage (middleware -> handler data)."""


class ResponseKey(AppKey[_T]):
    """A typed key for ``response[key]`` storage (handler -> middleware data)."""


class FrozenList(list[_T]):
    """A list that refuses changes once frozen (``RuntimeError``)."""

    def __init__(self, items: Iterable[_T] = ()) -> None:
        super().__init__(items)
        self._frozen = False

    @property
    def frozen(self) -> bool:
        return self._frozen

    def freeze(self) -> None:
        self._frozen = True

    def _check(self) -> None:
        if self._frozen:
            raise RuntimeError("Cannot modify frozen list.")

    def append(self, item: _T) -> None:
        self._check()
        super().append(item)

    def extend(self, items: Iterable[_T]) -> None:
        self._check()
        super().extend(items)

    def insert(self, index: Any, item: _T) -> None:
        self._check()
        super().insert(index, item)

    def remove(self, item: _T) -> None:
        self._check()
        super().remove(item)

    def pop(self, index: Any = -1) -> _T:
        self._check()
        return super().pop(index)

    def clear(self) -> None:
        self._check()
        super().clear()

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self._check()
        super().sort(*args, **kwargs)

    def reverse(self) -> None:
        self._check()
        super().reverse()

    def __setitem__(self, index: Any, value: Any) -> None:
        self._check()
        super().__setitem__(index, value)

    def __delitem__(self, index: Any) -> None:
        self._check()
        super().__delitem__(index)

    def __iadd__(self, items: Iterable[_T]) -> FrozenList[_T]:  # type: ignore[override,misc]
        self._check()
        super().__iadd__(items)
        return self

    def __imul__(self, n: Any) -> FrozenList[_T]:  # type: ignore[misc]
        self._check()
        super().__imul__(n)
        return self

    def __repr__(self) -> str:
        return f"<FrozenList frozen={self._frozen} {list.__repr__(self)}>"


class Signal(FrozenList[Callable[..., Awaitable[Any]]]):
    """A list of async callbacks run in order by ``await signal.send(*args)``.

    Callbacks may be appended until the application freezes; an empty signal is falsy, so
    callers skip ``send`` cheaply.
    """

    def __init__(self, owner: object) -> None:
        super().__init__()
        self._owner = owner

    async def send(self, *args: Any, **kwargs: Any) -> None:
        if not self._frozen:
            raise RuntimeError("Cannot send non-frozen signal.")
        for receiver in self:
            await receiver(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Signal owner={self._owner!r}, frozen={self._frozen}, {list.__repr__(self)}>"


class CleanupError(RuntimeError):
    """Several ``cleanup_ctx`` exits failed; ``exceptions`` lists them all."""

    @property
    def exceptions(self) -> list[BaseException]:
        return cast(list[BaseException], self.args[1])


CleanupCallback = Callable[["Application"], AsyncIterator[None] | AbstractAsyncContextManager[None]]


class _GeneratorContext(AbstractAsyncContextManager[None]):
    """A ``cleanup_ctx`` async generator driven as an async context manager: the code before
    its ``yield`` on enter, the code after on exit (as ``contextlib.asynccontextmanager``)."""

    def __init__(self, gen: AsyncIterator[None]) -> None:
        self._gen = gen

    async def __aenter__(self) -> None:
        try:
            await self._gen.__anext__()
        except StopAsyncIteration:
            raise RuntimeError("generator didn't yield") from None

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self._gen.__anext__()
        except StopAsyncIteration:
            return
        raise RuntimeError("generator didn't stop")


class CleanupContext(FrozenList[CleanupCallback]):
    """``app.cleanup_ctx``: async generators (or functions returning an async context manager,
    such as ``@asynccontextmanager`` ones) whose code before ``yield`` runs at startup and
    after ``yield`` at cleanup -- only for those whose startup part finished."""

    def __init__(self) -> None:
        super().__init__()
        self._exits: list[AbstractAsyncContextManager[None]] = []

    async def _on_startup(self, app: Application) -> None:
        for callback in self:
            made = callback(app)
            ctx = made if isinstance(made, AbstractAsyncContextManager) else _GeneratorContext(made)
            await ctx.__aenter__()
            self._exits.append(ctx)

    async def _on_cleanup(self, app: Application) -> None:
        errors: list[BaseException] = []
        for ctx in reversed(self._exits):
            try:
                await ctx.__aexit__(None, None, None)
            except (Exception, asyncio.CancelledError) as exc:
                errors.append(exc)
        self._exits.clear()
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise CleanupError("Multiple errors on cleanup stage", errors)


async def _raise_match_error(request: Request) -> StreamResponse:
    """Innermost handler of a failed resolution: raise its 404/405."""
    exc = request._routing().http_exception
    if exc is None:  # pragma: no cover - only reached through MatchInfoError
        raise RuntimeError("no HTTP exception to raise")
    raise exc


def foreign_app_error(obj: object) -> str | None:
    """The one-line refusal of an aiohttp object given to forkloop as the app (an
    ``aiohttp.web.Application`` built by a module that still imports aiohttp), naming the
    fix; None for anything else. ``run_app``, the app loader of ``forkloop serve`` and the
    gunicorn worker all refuse with it at start (exit status 3)."""
    module = type(obj).__module__
    if module != "aiohttp" and not module.startswith("aiohttp."):
        return None
    return (
        f"the app is an aiohttp object ({module}.{type(obj).__qualname__}): "
        "build it with `from forkloop import web` instead of `from aiohttp import web`"
    )


def _fix_current_app(app: Application, handler: Handler) -> Handler:
    """Make ``request.app`` the sub-app whose middlewares run inside this wrapper."""

    async def with_current_app(request: Request) -> StreamResponse:
        match_info = request._routing()
        prev = match_info._current_app
        match_info._current_app = app
        try:
            return await handler(request)
        finally:
            match_info._current_app = prev

    # As every wrapper of the chain, it shows the handler's attributes to outer middlewares.
    return update_wrapper(with_current_app, handler)


async def _await_any(awaitable: Any) -> Any:
    """``await`` as Python does it (``AppDispatch`` hands over what is not a coroutine)."""
    return await awaitable


def _is_new_style(middleware: object) -> bool:
    """aiohttp's test: only a middleware marked by ``@web.middleware`` takes
    ``(request, handler)``; any other is an old-style factory ``(app, handler) -> handler``."""
    return getattr(middleware, "__middleware_version__", None) == 1


def _old_style(app: Application, factory: Callable[..., Any], handler: Handler) -> Handler:
    """Run an old-style middleware factory: like aiohttp, call ``await factory(app, handler)``
    for every request and await the handler it returns."""

    async def old_style_middleware(request: Request) -> StreamResponse:
        made = await factory(app, handler)
        return cast("StreamResponse", await made(request))

    return update_wrapper(old_style_middleware, handler)


def _build_chain(handler: Handler, apps: Sequence[Application]) -> Handler:
    """Wrap ``handler`` in the middlewares of ``apps`` (outermost app first in ``apps``)."""
    nested = len(apps) > 1
    for app in reversed(apps):
        for middleware in reversed(app._middlewares):
            call: Callable[..., Awaitable[StreamResponse]] = middleware
            if _is_new_style(call):
                handler = update_wrapper(partial(call, handler=handler), handler)
            else:
                handler = _old_style(app, call, handler)
        if nested:
            handler = _fix_current_app(app, handler)
    return handler


class Application(MutableMapping[str | AppKey[Any], Any]):
    """An aiohttp.web application: ``app = web.Application(); app.router.add_get(...)``."""

    def __init__(
        self,
        *,
        logger: logging.Logger = web_logger,
        router: UrlDispatcher | AbstractRouter | None = None,
        middlewares: Iterable[Middleware] = (),
        handler_args: dict[str, Any] | None = None,
        client_max_size: int | None = 1024**2,
        client_max_fields: int = 1000,
        loop: asyncio.AbstractEventLoop | None = None,
        debug: Any = ...,  # deprecated, as in aiohttp: unset follows the loop's debug mode
    ) -> None:
        if router is None:
            router = UrlDispatcher()
        else:
            warnings.warn("router argument is deprecated", DeprecationWarning, stacklevel=2)
            if not isinstance(router, UrlDispatcher | AbstractRouter):
                raise TypeError(
                    "router should be a UrlDispatcher or a forkloop.abc.AbstractRouter, "
                    f"got {router!r}"
                )
        if loop is not None:
            warnings.warn("loop argument is deprecated", DeprecationWarning, stacklevel=2)
        if debug is not ...:
            warnings.warn("debug argument is deprecated", DeprecationWarning, stacklevel=2)
        # None or 0: no limit, as in aiohttp.
        if client_max_size is not None and client_max_size < 0:
            raise ValueError(f"client_max_size must be >= 0, got {client_max_size}")
        # A router of the app's own (aiohttp's AbstractRouter) is resolved through its
        # resolve() for every request (_handle_custom_router); typed as the UrlDispatcher
        # that every other router is.
        self._custom_router = isinstance(router, AbstractRouter)
        self._router = cast(UrlDispatcher, router)  # aiohttp 3.14 never calls its post_init()
        self._loop = loop
        self._handler_args = handler_args
        self.logger = logger
        self._middlewares: FrozenList[Middleware] = FrozenList(middlewares)
        for middleware in self._middlewares:
            if not callable(middleware):
                raise TypeError(f"middleware {middleware!r} is not callable")
        self._debug = debug
        self._client_max_size = client_max_size
        self._client_max_fields = client_max_fields
        self._state: dict[str | AppKey[Any], Any] = {}
        self._frozen = False
        self._pre_frozen = False
        self._subapps: list[Application] = []
        self._on_response_prepare = Signal(self)
        self._on_startup = Signal(self)
        self._on_shutdown = Signal(self)
        self._on_cleanup = Signal(self)
        self._cleanup_ctx = CleanupContext()
        self._on_startup.append(self._cleanup_ctx._on_startup)
        self._on_cleanup.append(self._cleanup_ctx._on_cleanup)
        self._run_middlewares = False
        self._chains: dict[AbstractRoute, Handler] = {}
        self._error_chains: dict[tuple[Application, ...], Handler] = {}
        self._self_apps = (self,)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        warnings.warn(
            f"Inheritance class {cls.__name__} from web.Application is discouraged",
            DeprecationWarning,
            stacklevel=3,
        )

    # -- dict-like state ------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __bool__(self) -> bool:
        return True

    @overload
    def __getitem__(self, key: AppKey[_T]) -> _T: ...

    @overload
    def __getitem__(self, key: str) -> Any: ...

    def __getitem__(self, key: str | AppKey[_T]) -> Any:
        return self._state[key]

    def _check_frozen(self) -> None:
        if self._frozen:
            warnings.warn(
                "Changing state of started or joined application is deprecated",
                DeprecationWarning,
                stacklevel=3,
            )

    @overload
    def __setitem__(self, key: AppKey[_T], value: _T) -> None: ...

    @overload
    def __setitem__(self, key: str, value: Any) -> None: ...

    def __setitem__(self, key: str | AppKey[_T], value: Any) -> None:
        if not isinstance(key, str | AppKey):
            raise TypeError(f"Application keys are str or web.AppKey, got {key!r}")
        self._check_frozen()
        if not isinstance(key, AppKey):
            warnings.warn(
                "It is recommended to use web.AppKey instances for keys.\n"
                "https://docs.aiohttp.org/en/stable/web_advanced.html#application-s-config",
                NotAppKeyWarning,
                stacklevel=2,
            )
        self._state[key] = value

    def __delitem__(self, key: str | AppKey[_T]) -> None:
        self._check_frozen()
        del self._state[key]

    def __len__(self) -> int:
        return len(self._state)

    def __iter__(self) -> Iterator[str | AppKey[Any]]:
        return iter(self._state)

    @overload  # type: ignore[override]
    def get(self, key: AppKey[_T], default: None = ...) -> _T | None: ...

    @overload
    def get(self, key: AppKey[_T], default: _T) -> _T: ...

    @overload
    def get(self, key: str, default: Any = ...) -> Any: ...

    def get(self, key: str | AppKey[_T], default: Any = None) -> Any:
        return self._state.get(key, default)

    # -- properties -----------------------------------------------------------------------

    @property
    def router(self) -> UrlDispatcher:
        return self._router

    @property
    def middlewares(self) -> FrozenList[Middleware]:
        return self._middlewares

    @property
    def on_response_prepare(self) -> Signal:
        return self._on_response_prepare

    @property
    def on_startup(self) -> Signal:
        return self._on_startup

    @property
    def on_shutdown(self) -> Signal:
        return self._on_shutdown

    @property
    def on_cleanup(self) -> Signal:
        return self._on_cleanup

    @property
    def cleanup_ctx(self) -> CleanupContext:
        return self._cleanup_ctx

    @property
    def frozen(self) -> bool:
        return self._frozen

    @property
    def pre_frozen(self) -> bool:
        return self._pre_frozen

    @property
    def debug(self) -> Any:
        warnings.warn("debug property is deprecated", DeprecationWarning, stacklevel=2)
        return self._debug  # as aiohttp: ``...`` (unset) until the app meets its loop

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        warnings.warn("loop property is deprecated", DeprecationWarning, stacklevel=2)
        # As aiohttp: the loop the app runs on, None (typed away) before it runs.
        return cast(asyncio.AbstractEventLoop, self._loop)

    def _set_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        if self._debug is ...:
            self._debug = self._loop.get_debug()  # as aiohttp: debug follows the loop's
        for subapp in self._subapps:
            subapp._set_loop(self._loop)

    # -- composition ----------------------------------------------------------------------

    def add_routes(self, routes: Iterable[Any]) -> list[AbstractRoute]:
        """Register route definitions: ``app.add_routes([web.get('/', handler)])``."""
        return self._router.add_routes(routes)

    def add_subapp(self, prefix: str, subapp: Application) -> PrefixedSubAppResource:
        """Serve ``subapp`` under ``prefix``: its routes, middlewares and signals chain in."""
        if not isinstance(prefix, str):
            raise TypeError(f"Prefix must be str, got {prefix!r}")
        prefix = prefix.rstrip("/")
        if not prefix:
            raise ValueError("Prefix cannot be empty")
        return self._add_subapp(partial(PrefixedSubAppResource, prefix, subapp), subapp)

    def add_domain(self, domain: str, subapp: Application) -> MatchedSubAppResource:
        """Serve ``subapp`` for requests whose Host is ``domain`` (``*`` masks allowed)."""
        if not isinstance(domain, str):
            raise TypeError(f"Domain must be str, got {domain!r}")
        rule = MaskDomain(domain) if "*" in domain else Domain(domain)
        return self._add_subapp(partial(MatchedSubAppResource, rule, subapp), subapp)

    def _add_subapp(self, factory: Callable[[], _R], subapp: Application) -> _R:
        if not isinstance(subapp, Application):
            raise TypeError(f"Sub-application must be an Application, got {subapp!r}")
        if subapp is self:
            raise ValueError("An application cannot be its own sub-application")
        if self._frozen:
            raise RuntimeError("Cannot add sub application to frozen application")
        if subapp._pre_frozen:
            raise RuntimeError(
                "Cannot add frozen application (already started or added as a sub-application)"
            )
        resource = factory()
        self._router.register_resource(resource)
        self._reg_subapp_signals(subapp)
        self._subapps.append(subapp)
        subapp.pre_freeze()
        return resource

    def _reg_subapp_signals(self, subapp: Application) -> None:
        def reg(signame: str) -> None:
            subsig: Signal = getattr(subapp, signame)

            async def handler(app: Application) -> None:
                await subsig.send(subapp)

            getattr(self, signame).append(handler)

        reg("on_startup")
        reg("on_shutdown")
        reg("on_cleanup")

    # -- freezing -------------------------------------------------------------------------

    def pre_freeze(self) -> None:
        """Lock routes, middlewares and signals (done for sub-apps when they are added)."""
        if self._pre_frozen:
            return
        self._pre_frozen = True
        self._middlewares.freeze()
        self._router.freeze()
        self._on_response_prepare.freeze()
        self._cleanup_ctx.freeze()
        self._on_startup.freeze()
        self._on_shutdown.freeze()
        self._on_cleanup.freeze()
        for middleware in reversed(self._middlewares):
            if not _is_new_style(middleware):
                warnings.warn(
                    f'old-style middleware "{middleware!r}" deprecated, see #2252',
                    DeprecationWarning,
                    stacklevel=2,
                )
        self._run_middlewares = bool(self._middlewares)
        for subapp in self._subapps:
            subapp.pre_freeze()
            self._run_middlewares = self._run_middlewares or subapp._run_middlewares

    def freeze(self) -> None:
        """Lock the app and build each route's middleware chain (the runner calls this)."""
        if self._frozen:
            return
        self.pre_freeze()
        self._frozen = True
        for subapp in self._subapps:
            subapp.freeze()
        self._chains = {}
        if self._run_middlewares:
            for route, apps in self._routes_with_apps((self,)):
                self._chains[route] = _build_chain(route.handler, apps)

    def _routes_with_apps(
        self, apps: tuple[Application, ...]
    ) -> Iterator[tuple[AbstractRoute, tuple[Application, ...]]]:
        if self._custom_router:  # its routes are known only when it resolves a request
            return
        for resource in self._router.resources():
            if isinstance(resource, PrefixedSubAppResource):
                subapp = resource._app
                yield from subapp._routes_with_apps((*apps, subapp))
            else:
                for route in resource:
                    yield route, apps

    # -- lifecycle ------------------------------------------------------------------------

    async def startup(self) -> None:
        """Run ``on_startup`` (``cleanup_ctx`` entries first, then sub-apps in order)."""
        await self.on_startup.send(self)

    async def shutdown(self) -> None:
        await self.on_shutdown.send(self)

    async def cleanup(self) -> None:
        """Run ``on_cleanup``; ``cleanup_ctx`` exits run first, in reverse order."""
        if self.on_cleanup.frozen:
            await self.on_cleanup.send(self)
        else:  # never frozen: startup never ran, only the cleanup contexts may hold state
            await self._cleanup_ctx._on_cleanup(self)

    def make_handler(self, *, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any) -> Any:
        """The low-level ``Server`` serving this app (deprecated, as in aiohttp: use
        ``AppRunner``). Keyword arguments are the server's; ``handler_args`` override them."""
        warnings.warn(
            "Application.make_handler(...) is deprecated, use AppRunner API instead",
            DeprecationWarning,
            stacklevel=2,
        )
        from .lowlevel import Server  # the server imports the app's modules, not the reverse

        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = asyncio.get_event_loop_policy().get_event_loop()
        self._set_loop(loop)
        self.freeze()
        kwargs["debug"] = self._debug
        kwargs.update(self._handler_args or {})
        handle: Any = self._server_handler()
        return Server(handle, request_factory=self._request_factory(loop), loop=loop, **kwargs)

    # -- per request ----------------------------------------------------------------------

    def _make_request(self, head: Any, payload: Any, protocol: Any, task: Any) -> Request:
        """aiohttp's hook for a Request subclass; by default the compiled ``RequestFactory``'s
        request, which the server calls directly unless a subclass overrides this."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        request: Request = RequestFactory(self._client_max_size, loop, self._client_max_fields)(
            head, payload, protocol, task
        )
        return request

    def _request_factory(self, loop: asyncio.AbstractEventLoop) -> Any:
        """The server's request factory: the compiled ``RequestFactory``, or ``_make_request``
        when a subclass overrides it."""
        if type(self)._make_request is not Application._make_request:
            return self._make_request
        return RequestFactory(self._client_max_size, loop, self._client_max_fields)

    async def _handle(self, request: Request) -> StreamResponse:
        router = self._router
        head = request._head
        # The router's remembered answer for a plain path: no resolution, no match dict.
        route = router.remembered_route(head.target, head.method)
        if route is not None:
            match_info: UrlMappingMatchInfo = routed_match_info(route, self._self_apps, self)
        else:
            resolved = router._resolve_sync(request, head.method, request_path(request))
            match_info = resolved if resolved is not None else await router.resolve(request)
            # match_info.add_app(self) and freeze(), inlined: this runs for every request.
            apps = match_info._apps
            match_info._apps = (self, *apps) if apps else self._self_apps
            if match_info._current_app is None:
                match_info._current_app = self
        match_info._frozen = True
        request._match_info = match_info

        if head.expect:
            resp = await match_info.route.handle_expect_header(request)
            if resp is not None:
                return resp

        if not self._run_middlewares:
            return await match_info._route._handler(request)
        handler = self._chains.get(match_info._route)
        if handler is None:
            handler = self._chain_for(match_info)
        return await handler(request)

    def _server_handler(self) -> Handler:
        """What the server calls with each of the app's requests (its request factory's):
        ``_handle``, or ``_handle_custom_router`` for a router of the app's own. A frozen app
        with its own ``UrlDispatcher`` and ``_handle`` gets ``_handle`` behind the compiled
        ``dispatch.AppDispatch``, which answers requests to a remembered plain route itself."""
        if self._custom_router:
            return self._handle_custom_router
        if (
            self._frozen
            and type(self)._handle is Application._handle
            and "_handle" not in self.__dict__
            and type(self._router) is UrlDispatcher
        ):
            chains = self._chains if self._run_middlewares else None
            return AppDispatch(
                self, self._handle, _await_any, self._router._plain_hits, chains, self._self_apps
            )
        return self._handle

    async def _handle_custom_router(self, request: Request) -> StreamResponse:
        """``_handle`` for a router that is not a UrlDispatcher, as aiohttp handles every
        request: await its ``resolve()``, then the middleware chain around its handler."""
        match_info = await self._router.resolve(request)
        match_info.add_app(self)
        match_info.freeze()
        request._match_info = match_info
        if request._head.expect:
            resp = await match_info.expect_handler(request)
            if resp is not None:
                return resp
        if not self._run_middlewares:
            return await match_info.handler(request)
        return await self._chain_for(match_info)(request)

    def _chain_for(self, match_info: UrlMappingMatchInfo) -> Handler:
        apps = match_info.apps
        if match_info.http_exception is not None:
            chain = self._error_chains.get(apps)
            if chain is None:
                chain = self._error_chains[apps] = _build_chain(_raise_match_error, apps)
            return chain
        # A route of a custom resource: not known at freeze time.
        return _build_chain(match_info.handler, apps)

    def __call__(self) -> Application:
        """gunicorn's ``aiohttp.GunicornWebWorker`` calls the app factory; it is the app."""
        return self

    def __repr__(self) -> str:
        return f"<Application 0x{id(self):x}>"

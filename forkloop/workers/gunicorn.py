"""gunicorn worker classes for forkloop apps, and gunicorn's access-log format for forkloop.

Owns:
- ``GunicornWebWorker`` / ``GunicornUVLoopWebWorker``: ``gunicorn app:app -k
  forkloop.workers.GunicornWebWorker`` serves a forkloop ``Application`` (or a factory, sync or
  async, returning one or an ``AppRunner``) on the sockets gunicorn's master bound.
- ``GunicornAccessLogger``: gunicorn's ``--access-logformat`` atoms (``%(h)s %(r)s ...``)
  rendered from a forkloop request/response, logged through gunicorn's access logger so
  ``--access-logfile``, ``--log-config`` and USR1 reopening apply unchanged.
- ``limits_from_config``: gunicorn's ``--limit-request-*`` and ``--keep-alive`` as a ``Limits``.

Imports gunicorn (the ``gunicorn`` extra) and ``forkloop.core``; only ``forkloop.workers``'s lazy
``__getattr__`` imports this module.

Theory of operation (gunicorn's signal table is the reference):
- The master forks the worker and calls ``init_process``; we build the event loop first, so
  gunicorn's ``init_signals`` (overridden here) can route TERM/INT/QUIT/USR1/WINCH through the
  loop. ``load_wsgi`` imports the app module; ``run`` then builds the runner, starts one
  ``SockSite`` per inherited socket, and only then sets ``booted``. An exception before that point
  leaves the process with ``WORKER_BOOT_ERROR`` (3), which makes the master halt instead of
  respawning the worker forever; a bad gunicorn setting is logged as one line and exits the same
  way.
- A heartbeat task on the loop calls ``notify()``, so a handler that blocks the loop stops the
  heartbeat and the master's ``--timeout`` catches it (ABRT, then KILL). ABRT is handled below
  Python's loop: faulthandler dumps every thread's traceback even when the loop is stuck in C,
  then a plain signal handler runs gunicorn's ``worker_abort`` hook and exits with status 1.
- TERM, a change of parent and the ``--max-requests`` budget all start the graceful stop: stop
  accepting, let in-flight requests finish within 95 % of ``--graceful-timeout``, run the app's
  shutdown/cleanup, exit 0. INT and QUIT run ``worker_int`` and exit at once (status 0).
- ``--max-requests`` is counted per request by an observer (``forkloop.core.hooks``): the request
  that reaches the budget triggers the stop, so at most the requests already in flight overshoot.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import datetime
import faulthandler
import inspect
import logging
import os
import re
import signal
import ssl
import sys
import time as _time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

from gunicorn import sock as gunicorn_sock
from gunicorn.workers.base import Worker

from forkloop.core.http.limits import Limits
from forkloop.core.web.app import Application
from forkloop.core.web.log import AbstractAccessLogger
from forkloop.core.web.runner import AppRunner, SockSite

if TYPE_CHECKING:
    from forkloop.core.web.request import BaseRequest
    from forkloop.core.web.response import StreamResponse

__all__ = [
    "WORKER_BOOT_ERROR",
    "AccessLogFormatError",
    "GunicornAccessLogger",
    "GunicornUVLoopWebWorker",
    "GunicornWebWorker",
    "limits_from_config",
]

#: gunicorn's ``Arbiter.WORKER_BOOT_ERROR``: the master halts instead of respawning.
WORKER_BOOT_ERROR: Final = 3
#: Share of ``--graceful-timeout`` in which in-flight requests must finish.
GRACEFUL_SHARE: Final = 0.95
#: Share of ``--graceful-timeout`` for the whole stop, app cleanup included (the master
#: SIGKILLs at 100 %).
CLEANUP_SHARE: Final = 0.99
#: How long a quick exit (INT/QUIT) waits for the runner to close connections.
QUICK_EXIT_S: Final = 0.5
#: Upper bound of the heartbeat period; a tighter ``--timeout`` shortens it.
HEARTBEAT_MAX_S: Final = 1.0

_log = logging.getLogger(__name__)

# -- gunicorn's request limits ------------------------------------------------------------------

# gunicorn's own bounds (gunicorn.http.message): a request line is capped at 8190 bytes (0 means
# "unlimited", which gunicorn implements as 1 MiB), at most 32768 header fields, and a field size
# of 0 falls back to the default 8190.
_GUNICORN_MAX_REQUEST_LINE: Final = 8190
_GUNICORN_UNLIMITED_REQUEST_LINE: Final = 1024 * 1024
_GUNICORN_MAX_HEADERS: Final = 32768
_GUNICORN_DEFAULT_FIELD_SIZE: Final = 8190


def limits_from_config(cfg: Any, base_limits: Limits | None = None) -> Limits:
    """gunicorn's ``--limit-request-*`` and ``--keep-alive`` settings as forkloop ``Limits``."""
    line = int(cfg.limit_request_line)
    if line < 0 or line >= _GUNICORN_MAX_REQUEST_LINE:
        line = _GUNICORN_MAX_REQUEST_LINE
    elif line == 0:
        line = _GUNICORN_UNLIMITED_REQUEST_LINE
    fields = int(cfg.limit_request_fields)
    if fields <= 0 or fields > _GUNICORN_MAX_HEADERS:
        fields = _GUNICORN_MAX_HEADERS
    field_size = int(cfg.limit_request_field_size)
    if field_size <= 0:
        field_size = _GUNICORN_DEFAULT_FIELD_SIZE
    start = base_limits or Limits()
    return dataclasses.replace(
        start,
        max_request_line_bytes=line,
        max_header_count=fields,
        max_header_field_bytes=field_size,
        # --keep-alive 0 disables keep-alive; the worker then closes each connection after its
        # response (see _CloseAfterResponse), and Limits only takes positive timeouts.
        keepalive_timeout_s=(
            float(cfg.keepalive) if cfg.keepalive > 0 else start.keepalive_timeout_s
        ),
    )


# -- gunicorn's access-log format ---------------------------------------------------------------


class AccessLogFormatError(ValueError):
    """An ``--access-logformat`` that forkloop cannot render."""


_ATOM_KEY = re.compile(r"%\(([^)]*)\)")
# Atoms computed for every request (gunicorn's glogging.Logger.atoms); header and environ atoms
# are computed only when the format names them.
_PLAIN_ATOMS: Final = frozenset("hlutrsmUqHbBfaTDMLp")
_INT_ATOMS: Final = frozenset("BTDM")

_Getter = Callable[["BaseRequest", "StreamResponse"], object]


def _header(name: str) -> _Getter:
    def get(request: BaseRequest, _response: StreamResponse) -> object:
        values = request.headers.getall(name, ())
        # gunicorn builds the atom from its header list, so the last occurrence wins.
        return values[-1] if values else "-"

    return get


def _response_header(name: str) -> _Getter:
    def get(_request: BaseRequest, response: StreamResponse) -> object:
        values = response.headers.getall(name, ())
        return values[-1] if values else "-"

    return get


def _cgi_header(name: str) -> _Getter:
    def get(request: BaseRequest, _response: StreamResponse) -> object:
        values = request.headers.getall(name, ())
        # A WSGI environ joins a repeated header with commas.
        return ",".join(values) if values else "-"

    return get


def _split_target(target: str) -> tuple[str, str]:
    path, _, query = target.partition("?")
    return path, query.partition("#")[0]


def _peer_port(request: BaseRequest) -> object:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return str(peer[1]) if isinstance(peer, tuple) and len(peer) > 1 else "-"


# WSGI environ keys gunicorn exposes as ``{NAME}e`` that a forkloop request can answer.
_ENVIRON_ATOMS: Final[Mapping[str, _Getter]] = {
    "remote_addr": lambda rq, _rs: _remote(rq),
    "remote_port": lambda rq, _rs: _peer_port(rq),
    "request_method": lambda rq, _rs: rq.method,
    "raw_uri": lambda rq, _rs: rq.raw_path,
    "path_info": lambda rq, _rs: rq.path,
    "query_string": lambda rq, _rs: _split_target(rq.raw_path)[1],
    "server_protocol": lambda rq, _rs: _protocol(rq),
    "script_name": lambda _rq, _rs: "",
    "wsgi.url_scheme": lambda rq, _rs: rq.scheme,
    "content_type": lambda rq, _rs: rq.headers.get("Content-Type", "-"),
    "content_length": lambda rq, _rs: rq.headers.get("Content-Length", "-"),
}


def _extra_atom(key: str) -> _Getter:
    """The getter of a ``{...}i``/``{...}o``/``{...}e`` atom, or AccessLogFormatError."""
    lowered = key.lower()
    if len(key) > 3 and key[0] == "{" and key[-2] == "}":
        name, kind = lowered[1:-2], key[-1]
        if kind == "i":
            return _header(name)
        if kind == "o":
            return _response_header(name)
        if kind == "e":
            if name in _ENVIRON_ATOMS:
                return _ENVIRON_ATOMS[name]
            if name.startswith("http_") and len(name) > 5:
                return _cgi_header(name[5:].replace("_", "-"))
            raise AccessLogFormatError(
                f"access log atom %({key})s: WSGI environ key {name.upper()!r} has no forkloop "
                f"equivalent (supported: HTTP_*, {', '.join(k.upper() for k in _ENVIRON_ATOMS)})"
            )
    raise AccessLogFormatError(
        f"access log atom %({key})s is not one of gunicorn's atoms "
        f"({' '.join(sorted(_PLAIN_ATOMS))}, {{header}}i, {{header}}o, {{VAR}}e)"
    )


class _Atoms(dict[str, object]):
    """gunicorn's SafeAtoms contract: double quotes escaped; unknown atoms render as ``-``."""

    __slots__ = ()

    def __init__(self, atoms: Mapping[str, object]) -> None:
        super().__init__(
            (key, value.replace('"', '\\"') if isinstance(value, str) else value)
            for key, value in atoms.items()
        )

    def __missing__(self, key: str) -> object:
        if key.startswith("{"):
            return self.get(key.lower(), "-")
        return "-"


@dataclasses.dataclass(frozen=True, slots=True)
class _CompiledFormat:
    fmt: str
    extra: tuple[tuple[str, _Getter], ...]


def compile_access_log_format(fmt: str) -> _CompiledFormat:
    """Check every atom of a gunicorn access-log format; raise AccessLogFormatError if not."""
    extra: dict[str, _Getter] = {}
    for key in _ATOM_KEY.findall(fmt):
        if key not in _PLAIN_ATOMS and key not in extra:
            extra[key] = _extra_atom(key)
    sample: dict[str, object] = {key: 0 if key in _INT_ATOMS else "-" for key in _PLAIN_ATOMS}
    sample.update(dict.fromkeys(extra, "-"))
    try:
        fmt % _Atoms(sample)  # formatting once proves the format string is valid
    except (TypeError, ValueError, KeyError) as exc:
        raise AccessLogFormatError(f"access log format {fmt!r} is malformed: {exc}") from None
    return _CompiledFormat(fmt, tuple(extra.items()))


def _remote(request: BaseRequest) -> str:
    remote = request.remote
    return "-" if remote is None else remote


def _protocol(request: BaseRequest) -> str:
    major, minor = request.version
    return f"HTTP/{major}.{minor}"


def _basic_auth_user(request: BaseRequest) -> str:
    auth = request.headers.get("Authorization", "")
    scheme, _, credentials = auth.partition(" ")
    if scheme.lower() != "basic" or not credentials:
        return "-"
    try:
        decoded = base64.b64decode(credentials.strip().encode(), validate=False)
        return decoded.split(b":", 1)[0].decode("utf-8") or "-"
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return "-"


def _body_bytes(request: BaseRequest, response: StreamResponse) -> int:
    # gunicorn counts body bytes put on the wire: none for HEAD, 1xx, 204 and 304 (RFC 9110
    # section 6.4.1), whatever the handler wrote.
    status = response.status
    if request.method == "HEAD" or status < 200 or status in (204, 304):
        return 0
    return int(response.body_length)


class GunicornAccessLogger(AbstractAccessLogger):
    """Renders gunicorn's ``--access-logformat`` from forkloop requests (see gunicorn's docs).

    ``log_format`` is gunicorn's format (``%(h)s %(l)s %(u)s %(t)s "%(r)s" ...``); every atom is
    checked when the logger is built, and one forkloop cannot compute raises
    ``AccessLogFormatError``. Each line is emitted as gunicorn emits it —
    ``logger.info(format, atoms)`` — so handlers that read ``record.args`` keep working.
    """

    __slots__ = ("_compiled",)

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        self._compiled = compile_access_log_format(log_format)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        try:
            self.logger.info(self._compiled.fmt, self.atoms(request, response, time))
        except Exception:
            self.logger.exception("forkloop: cannot write the access log line")

    def atoms(self, request: BaseRequest, response: StreamResponse, time: float) -> _Atoms:
        elapsed = datetime.timedelta(seconds=max(0.0, time))
        method = request.method
        target = request.raw_path
        protocol = _protocol(request)
        sent = _body_bytes(request, response)
        headers = request.headers
        atoms: dict[str, object] = {
            "h": _remote(request),
            "l": "-",
            "u": _basic_auth_user(request),
            "t": _time.strftime("[%d/%b/%Y:%H:%M:%S %z]"),
            "r": f"{method} {target} {protocol}",
            "s": str(response.status),
            "m": method,
            "U": request.path,
            "q": _split_target(target)[1],
            "H": protocol,
            "b": str(sent),
            "B": sent,
            "f": ",".join(headers.getall("Referer", ())) or "-",
            "a": ",".join(headers.getall("User-Agent", ())) or "-",
            "T": elapsed.seconds,
            "D": elapsed.seconds * 1_000_000 + elapsed.microseconds,
            "M": elapsed.seconds * 1000 + elapsed.microseconds // 1000,
            "L": f"{elapsed.seconds}.{elapsed.microseconds:06d}",
            "p": f"<{os.getpid()}>",
        }
        for key, get in self._compiled.extra:
            atoms[key] = get(request, response)
        return _Atoms(atoms)


# -- max-requests observer ----------------------------------------------------------------------


class _RequestBudget:
    """Observer counting requests; the one reaching the budget starts the worker's stop."""

    __slots__ = ("_on_exhausted", "_worker", "limit")

    def __init__(self, worker: GunicornWebWorker, limit: int, on_exhausted: Callable[[], None]):
        self._worker = worker
        self.limit = limit
        self._on_exhausted = on_exhausted

    def request_started(self, request: object) -> None:
        worker = self._worker
        worker.nr += 1
        if worker.nr == self.limit:
            self._on_exhausted()


class _CloseAfterResponse:
    """Observer for ``--keep-alive 0``: every connection closes after its first response."""

    __slots__ = ()

    def request_started(self, request: BaseRequest) -> None:
        request.protocol.force_close()


# -- the worker ---------------------------------------------------------------------------------


class GunicornWebWorker(Worker):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn worker serving a forkloop app on asyncio's default event loop."""

    loop: asyncio.AbstractEventLoop

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._sockets_served = False
        super().__init__(*args, **kwargs)
        self.exit_code = 0
        # asyncio.Event binds to a loop on first use, so creating them pre-fork is harmless.
        self._stop_requested = asyncio.Event()
        self._quick_exit = asyncio.Event()
        self._stop_started: float | None = None
        self._runner: AppRunner | None = None
        self._abort_pending = False

    # gunicorn's Worker.init_process sets ``booted = True`` just before ``run()``, i.e. before
    # the app is built and the sockets are served. forkloop reports booted only once every
    # socket is served, so that a failure in between is a boot error the master halts on.
    @property
    def booted(self) -> bool:
        return self._sockets_served

    @booted.setter
    def booted(self, value: bool) -> None:
        pass

    # -- process setup (runs in the forked child) ------------------------------------------------

    def init_process(self) -> None:
        self._check_config()
        self.loop = self._new_event_loop()
        asyncio.set_event_loop(self.loop)
        _route_forkloop_logs(self.log)
        super().init_process()

    def _new_event_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.new_event_loop()

    def _check_config(self) -> None:
        """One-line errors for settings forkloop cannot honour; the master then halts."""
        problem = self._config_problem()
        if problem is not None:
            self.log.error("forkloop: %s", problem)
            sys.exit(WORKER_BOOT_ERROR)

    def _config_problem(self) -> str | None:
        if self._access_log_enabled():
            try:
                compile_access_log_format(self.cfg.access_log_format)
            except AccessLogFormatError as exc:
                return f"--access-logformat: {exc}"
        protocols = [str(p).strip() for p in getattr(self.cfg, "http_protocols", None) or ()]
        if any(p not in ("h1", "http/1.1") for p in protocols):
            return (
                f"--http-protocols {','.join(protocols)}: forkloop's gunicorn worker speaks "
                "HTTP/1.1 only (use --http-protocols h1)"
            )
        return None

    def init_signals(self) -> None:
        # Replace gunicorn's handlers: TERM/INT/QUIT/USR1/WINCH run on the loop (so a request is
        # never interrupted mid-bytecode); ABRT must work while the loop is blocked.
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        loop = self.loop
        loop.add_signal_handler(signal.SIGTERM, self._on_term)
        loop.add_signal_handler(signal.SIGINT, self._on_quit, signal.SIGINT)
        loop.add_signal_handler(signal.SIGQUIT, self._on_quit, signal.SIGQUIT)
        loop.add_signal_handler(signal.SIGUSR1, self._on_usr1)
        loop.add_signal_handler(signal.SIGWINCH, self._on_winch)
        # faulthandler's fatal-signal handler dumps every thread's traceback at C level (even when
        # the loop is stuck in C code), then re-raises the signal to the handler it replaced: the
        # Python handler below, which runs once the interpreter gets control back. Re-enabling
        # makes it record that handler as the one to chain to.
        faulthandler.disable()
        signal.signal(signal.SIGABRT, self.handle_abort)
        faulthandler.enable(file=sys.stderr, all_threads=True)

    # -- signal handlers -------------------------------------------------------------------------

    def _on_term(self) -> None:
        self.log.info("Worker %s: TERM received, finishing in-flight requests", self.pid)
        self.request_stop(graceful=True)

    def _on_quit(self, sig: int) -> None:
        self.log.info("Worker %s: %s received, exiting now", self.pid, signal.Signals(sig).name)
        self.cfg.worker_int(self)
        self.request_stop(graceful=False)

    def _on_usr1(self) -> None:
        self.log.reopen_files()

    def _on_winch(self) -> None:
        self.log.debug("worker: SIGWINCH ignored.")

    def handle_abort(self, sig: int, frame: FrameType | None) -> None:
        """ABRT (the master's ``--timeout``): tracebacks were dumped; run the hook and exit 1."""
        self.alive = False
        self._abort_pending = True
        self.exit_code = 1
        self.cfg.worker_abort(self)
        sys.stderr.flush()
        sys.exit(1)

    def request_stop(self, *, graceful: bool) -> None:
        """Start the graceful (TERM) or quick (INT/QUIT) exit; a quick one overrides."""
        self.alive = False
        if self._stop_started is None:
            self._stop_started = self.loop.time()
        self._stop_requested.set()
        if not graceful:
            self._quick_exit.set()

    # -- main loop -------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            if not self._abort_pending:
                _close_loop(self.loop)
        if self.exit_code:
            sys.exit(self.exit_code)

    async def _serve(self) -> None:
        runner = self._runner = await self._make_runner()
        await runner.setup()
        heartbeat: asyncio.Task[None] | None = None
        try:
            context = self._ssl_context()
            for listener in self.sockets:
                site = SockSite(
                    runner,
                    getattr(listener, "sock", listener),
                    ssl_context=context,
                    backlog=int(self.cfg.backlog),
                )
                await site.start()
            self._sockets_served = True
            self.log.info(
                "forkloop worker %s serving %s%s",
                self.pid,
                ", ".join(site.name for site in runner.sites),
                f" (max requests {self.max_requests})" if self.max_requests < sys.maxsize else "",
            )
            heartbeat = asyncio.create_task(self._heartbeat())
            await self._stop_requested.wait()
        finally:
            await self._shutdown(runner)
            if heartbeat is not None:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat

    async def _heartbeat(self) -> None:
        period = HEARTBEAT_MAX_S
        if self.timeout:
            period = min(period, max(0.05, float(self.timeout) / 2))
        while True:
            self.notify()
            if self._abort_pending:  # the app swallowed the SystemExit raised on ABRT
                os._exit(1)
            if self.alive and self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                self.request_stop(graceful=True)
            elif not self.alive:  # e.g. gunicorn's --reload thread or a hook cleared it
                self.request_stop(graceful=True)
            await asyncio.sleep(period)

    async def _shutdown(self, runner: AppRunner) -> None:
        """The runner's staged stop within the graceful budget; a quick exit cuts it short."""
        loop = self.loop
        started = self._stop_started if self._stop_started is not None else loop.time()
        # Requests get GRACEFUL_SHARE of --graceful-timeout (the runner's shutdown_timeout);
        # the app's on_shutdown/on_cleanup must be done before the master's own deadline.
        deadline = started + CLEANUP_SHARE * float(self.cfg.graceful_timeout)
        cleanup = asyncio.ensure_future(runner.cleanup())
        quick = asyncio.ensure_future(self._quick_exit.wait())
        try:
            await asyncio.wait(
                {cleanup, quick},
                timeout=max(0.0, deadline - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not cleanup.done() and self._quick_exit.is_set():
                # Cut every connection now (their handlers are cancelled); the runner's stop
                # then finds nothing left to wait for and runs the app's cleanup.
                server = runner.server
                if server is not None:
                    await server.shutdown(0)
                await asyncio.wait({cleanup}, timeout=QUICK_EXIT_S)
            if not cleanup.done():
                self.log.warning("Worker %s: stop did not finish in time, exiting", self.pid)
                cleanup.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await cleanup
            elif not cleanup.cancelled() and cleanup.exception() is not None:
                self.log.error(
                    "Worker %s: error while stopping", self.pid, exc_info=cleanup.exception()
                )
        finally:
            quick.cancel()

    # -- building the app and the runner ---------------------------------------------------------

    async def _make_runner(self) -> AppRunner:
        target = await _resolve_app(self.wsgi)
        if isinstance(target, AppRunner):
            self.log.info(
                "forkloop: the factory returned an AppRunner; it is served as built, so "
                "gunicorn's --keep-alive, --limit-request-* and access-log settings do not apply"
            )
            return target
        return AppRunner(target, **self._runner_kwargs())

    def _runner_kwargs(self) -> dict[str, Any]:
        observers: list[object] = []
        if self.cfg.keepalive <= 0:
            observers.append(_CloseAfterResponse())
        if self.max_requests < sys.maxsize:
            observers.append(_RequestBudget(self, int(self.max_requests), self._on_max_requests))
        kwargs: dict[str, Any] = {
            "handle_signals": False,
            "logger": _error_logger(self.log),
            "limits": limits_from_config(self.cfg),
            "observers": observers,
            "shutdown_timeout": GRACEFUL_SHARE * float(self.cfg.graceful_timeout),
        }
        if self._access_log_enabled():
            kwargs["access_log_class"] = GunicornAccessLogger
            kwargs["access_log"] = getattr(
                self.log, "access_log", logging.getLogger("gunicorn.access")
            )
            kwargs["access_log_format"] = self.cfg.access_log_format
        else:
            kwargs["access_log"] = None
        return kwargs

    def _on_max_requests(self) -> None:
        """The budget is spent: no request may start after the ones already in flight."""
        self.log.info("Autorestarting worker after current request.")
        runner = self._runner
        server = runner.server if runner is not None else None
        if runner is not None and server is not None:
            # Synchronously, before another request can start: stop accepting, and let every
            # open connection finish its current response (if any) and close. The staged
            # stop that follows closes the idle ones.
            for site in list(runner.sites):
                self.loop.create_task(site.stop())
            for protocol in server.connections:
                protocol.force_close()
        self.request_stop(graceful=True)

    def _access_log_enabled(self) -> bool:
        enabled = getattr(self.log, "access_log_enabled", None)
        if enabled is None:
            enabled = bool(self.cfg.accesslog)
        return bool(enabled)

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.cfg.is_ssl:
            return None
        context: ssl.SSLContext = gunicorn_sock.ssl_context(self.cfg)
        return context


class GunicornUVLoopWebWorker(GunicornWebWorker):
    """gunicorn worker serving a forkloop app on uvloop."""

    def _new_event_loop(self) -> asyncio.AbstractEventLoop:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop


# -- helpers ------------------------------------------------------------------------------------


async def _resolve_app(obj: object) -> Application | AppRunner:
    """gunicorn's loaded object -> an Application or AppRunner (calling/awaiting a factory)."""
    if isinstance(obj, Application | AppRunner):
        return obj
    if not callable(obj):
        raise TypeError(_not_an_app(obj))
    _reject_wsgi(obj)
    result = obj()
    if inspect.isawaitable(result):
        result = await result
    if isinstance(result, Application | AppRunner):
        return result
    raise TypeError(_not_an_app(result, factory=obj))


def _reject_wsgi(obj: Callable[..., object]) -> None:
    try:
        parameters = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return
    required = [
        p
        for p in parameters
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if required:
        raise TypeError(
            f"{_name(obj)} takes arguments ({', '.join(p.name for p in required)}): it looks like "
            "a WSGI/ASGI application. forkloop's gunicorn worker serves a forkloop.web.Application "
            "or a factory called without arguments; use -k sync or -k gthread for WSGI apps"
        )


def _not_an_app(obj: object, factory: object = None) -> str:
    got = f"{type(obj).__module__}.{type(obj).__qualname__}"
    where = f"{_name(factory)}() returned" if factory is not None else "the app object is"
    hint = ""
    if type(obj).__module__.startswith("aiohttp"):
        hint = " (an aiohttp object: build the app with `from forkloop import web`)"
    return (
        f"{where} {got}{hint}; forkloop's gunicorn worker expects a forkloop.web.Application, "
        "an AppRunner, or a (possibly async) factory returning one"
    )


def _name(obj: object) -> str:
    module = getattr(obj, "__module__", None) or "?"
    return f"{module}.{getattr(obj, '__qualname__', repr(obj))}"


def _error_logger(glog: Any) -> logging.Logger:
    error_log = getattr(glog, "error_log", None)
    return error_log if isinstance(error_log, logging.Logger) else logging.getLogger("forkloop")


def _route_forkloop_logs(glog: Any) -> None:
    """Send forkloop's own log records (engine errors, app tracebacks) to gunicorn's error log."""
    target = logging.getLogger("forkloop")
    error_log = getattr(glog, "error_log", None)
    if target.handlers or not isinstance(error_log, logging.Logger):
        return
    for handler in error_log.handlers:
        target.addHandler(handler)
    target.setLevel(error_log.level)
    target.propagate = False


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()

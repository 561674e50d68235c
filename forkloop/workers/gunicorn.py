"""gunicorn worker classes for forkloop apps, and gunicorn's access-log format for forkloop.

Owns:
- ``GunicornWebWorker`` / ``GunicornUVLoopWebWorker``: ``gunicorn app:app -k
  forkloop.workers.GunicornWebWorker`` serves a forkloop ``Application`` (or a factory, sync or
  async, returning one or an ``AppRunner``) on the sockets gunicorn's master bound.
- ``GunicornAccessLogger``: gunicorn's ``--access-logformat`` atoms (``%(h)s %(r)s ...``)
  rendered from a forkloop request/response, logged through gunicorn's access logger so
  ``--access-logfile``, ``--log-config`` and USR1 reopening apply unchanged.
- ``limits_from_config``: gunicorn's ``--limit-request-*`` and ``--keep-alive`` as a ``Limits``.
- The probes ``GET /-/healthz`` and ``GET /-/readyz``, answered before the app as the
  supervised workers answer them (``forkloop.workers.probes``); readiness turns 503 once
  gunicorn tells the worker to stop (TERM, ``--max-requests``, a new parent, INT/QUIT).

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
  accepting, answer requests already on their way on keep-alive connections (IDLE_GRACE_S), let
  in-flight requests finish within 95 % of ``--graceful-timeout``, run the app's shutdown and
  cleanup, exit 0. INT and QUIT run ``worker_int`` and exit at once (status 0).
- Until the loop runs (gunicorn imports the app first), signals are only recorded; they are
  replayed once the loop's handlers are installed, since uvloop listens only while running.
- ``--max-requests`` is counted per request by an observer (``forkloop.core.hooks``): the request
  that reaches the budget triggers the stop, so at most the requests already in flight overshoot.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import faulthandler
import inspect
import logging
import math
import os
import re
import signal
import ssl
import sys
import time as _time
import urllib.parse
from collections.abc import Callable, Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

from gunicorn import sock as gunicorn_sock
from gunicorn.workers.base import Worker

from forkloop.core.hooks import OBSERVERS_KEY
from forkloop.core.http.limits import Limits
from forkloop.core.web.app import Application
from forkloop.core.web.deprecations import set_internal_key
from forkloop.core.web.log import AbstractAccessLogger
from forkloop.core.web.runner import AppRunner, SockSite

from .probes import Probes

if TYPE_CHECKING:
    from forkloop.core.web.request import BaseRequest
    from forkloop.core.web.response import StreamResponse

__all__ = [
    "WORKER_BOOT_ERROR",
    "AccessLogFormatError",
    "CompiledFormat",
    "GunicornAccessLogger",
    "GunicornUVLoopWebWorker",
    "GunicornWebWorker",
    "admission_from_environ",
    "compile_access_log_format",
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
#: How long a graceful stop keeps serving requests that arrive on open keep-alive connections.
IDLE_GRACE_S: Final = 0.25
#: Upper bound of the heartbeat period; a tighter ``--timeout`` shortens it.
HEARTBEAT_MAX_S: Final = 1.0

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


def admission_from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    """Overload protection for the gunicorn worker, from ``FORKLOOP_MAX_CONCURRENCY``,
    ``FORKLOOP_MAX_QUEUE_TIME`` and ``FORKLOOP_TRUST_REQUEST_START`` (gunicorn has no settings
    of its own for these): the ``AppRunner`` keyword arguments; ValueError (one line) if bad."""
    kwargs: dict[str, Any] = {}
    raw = environ.get("FORKLOOP_MAX_CONCURRENCY", "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"FORKLOOP_MAX_CONCURRENCY: expected a positive integer, got {raw!r}")
        kwargs["max_concurrency"] = int(raw)
    raw = environ.get("FORKLOOP_MAX_QUEUE_TIME", "").strip()
    if raw:
        try:
            seconds = float(raw.removesuffix("s"))
        except ValueError:
            seconds = math.nan
        if not 0 < seconds < math.inf:
            raise ValueError(f"FORKLOOP_MAX_QUEUE_TIME: expected seconds > 0, got {raw!r}")
        kwargs["max_queue_time"] = seconds
    trust = environ.get("FORKLOOP_TRUST_REQUEST_START", "").strip().lower()
    if trust not in ("", "0", "false", "no", "off", "1", "true", "yes", "on"):
        raise ValueError(f"FORKLOOP_TRUST_REQUEST_START: expected true or false, got {trust!r}")
    if trust in ("1", "true", "yes", "on"):
        if "max_queue_time" not in kwargs:
            raise ValueError("FORKLOOP_TRUST_REQUEST_START needs FORKLOOP_MAX_QUEUE_TIME")
        kwargs["trust_request_start"] = True
    return kwargs


# -- gunicorn's access-log format ---------------------------------------------------------------


class AccessLogFormatError(ValueError):
    """An ``--access-logformat`` that forkloop cannot render."""


# An atom's value from (request, response, duration in seconds). The atoms and their values are
# gunicorn's (glogging.Logger.atoms), computed from a forkloop request instead of a WSGI environ.
_Getter = Callable[["BaseRequest", "StreamResponse", float], object]

_ATOM_KEY: Final = re.compile(r"%\(([^)]*)\)")


def _remote(request: BaseRequest) -> str:
    remote = request.remote
    return "-" if remote is None else remote


def _protocol(request: BaseRequest) -> str:
    major, minor = request.version
    return f"HTTP/{major}.{minor}"


def _request_line(request: BaseRequest) -> str:
    return f"{request.method} {request.raw_path} {_protocol(request)}"


def _split_target(target: str) -> tuple[str, str]:
    path, _, query = target.partition("?")
    return path, query.partition("#")[0]


def _path_info(request: BaseRequest) -> str:
    # WSGI's PATH_INFO: the percent-decoded path, its bytes read as latin-1 (PEP 3333).
    return urllib.parse.unquote_to_bytes(_split_target(request.raw_path)[0]).decode("latin-1")


def _query(request: BaseRequest) -> str:
    return _split_target(request.raw_path)[1]


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
    return int(response._body_length)  # body only (body_length counts the head too)


def _micros(duration_s: float) -> int:
    return max(0, round(duration_s * 1_000_000))


def _seconds_micros(duration_s: float) -> str:
    seconds, micros = divmod(_micros(duration_s), 1_000_000)
    return f"{seconds}.{micros:06d}"


class _Clock:
    """Apache's ``[%d/%b/%Y:%H:%M:%S %z]`` of now, formatted once per second."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self) -> str:
        now = _time.time()
        second = int(now)
        if second != self._second:
            self._text = _time.strftime("[%d/%b/%Y:%H:%M:%S %z]", _time.localtime(now))
            self._second = second
        return self._text


_clock: Final = _Clock()


def _joined(name: str) -> _Getter:
    def get(request: BaseRequest, _response: StreamResponse, _d: float) -> object:
        # A WSGI environ joins a repeated header with commas.
        return ",".join(request.headers.getall(name, ())) or "-"

    return get


def _request_header(name: str) -> _Getter:
    def get(request: BaseRequest, _response: StreamResponse, _d: float) -> object:
        values = request.headers.getall(name, ())
        return values[-1] if values else "-"  # gunicorn's atom dict keeps the last one

    return get


def _response_header(name: str) -> _Getter:
    def get(_request: BaseRequest, response: StreamResponse, _d: float) -> object:
        values = response.headers.getall(name, ())
        return values[-1] if values else "-"

    return get


def _peer_port(request: BaseRequest) -> object:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[1]) if isinstance(peer, tuple) and len(peer) > 1 else "-"


_PLAIN_ATOMS: Final[Mapping[str, _Getter]] = {
    "h": lambda rq, _rs, _d: _remote(rq),
    "l": lambda _rq, _rs, _d: "-",
    "u": lambda rq, _rs, _d: _basic_auth_user(rq),
    "t": lambda _rq, _rs, _d: _clock(),
    "r": lambda rq, _rs, _d: _request_line(rq),
    "s": lambda _rq, rs, _d: str(rs.status),
    "m": lambda rq, _rs, _d: rq.method,
    "U": lambda rq, _rs, _d: _path_info(rq),
    "q": lambda rq, _rs, _d: _query(rq),
    "H": lambda rq, _rs, _d: _protocol(rq),
    "b": lambda rq, rs, _d: str(_body_bytes(rq, rs)),
    "B": lambda rq, rs, _d: _body_bytes(rq, rs),
    "f": _joined("Referer"),
    "a": _joined("User-Agent"),
    "T": lambda _rq, _rs, d: _micros(d) // 1_000_000,
    "D": lambda _rq, _rs, d: _micros(d),
    "M": lambda _rq, _rs, d: _micros(d) // 1000,
    "L": lambda _rq, _rs, d: _seconds_micros(d),
    "p": lambda _rq, _rs, _d: f"<{os.getpid()}>",
}

_NUMERIC_ATOMS: Final = frozenset(("B", "T", "D", "M"))

# WSGI environ keys (lower-cased, as gunicorn's atoms are) that a forkloop request can answer.
_ENVIRON_ATOMS: Final[Mapping[str, _Getter]] = {
    "remote_addr": _PLAIN_ATOMS["h"],
    "remote_port": lambda rq, _rs, _d: _peer_port(rq),
    "request_method": _PLAIN_ATOMS["m"],
    "raw_uri": lambda rq, _rs, _d: rq.raw_path,
    "path_info": _PLAIN_ATOMS["U"],
    "query_string": _PLAIN_ATOMS["q"],
    "server_protocol": _PLAIN_ATOMS["H"],
    "script_name": lambda _rq, _rs, _d: "",
    "wsgi.url_scheme": lambda rq, _rs, _d: rq.scheme,
    "content_type": _joined("Content-Type"),
    "content_length": _joined("Content-Length"),
}


def _atom(key: str) -> _Getter:
    """The getter of one atom of a format, or AccessLogFormatError."""
    plain = _PLAIN_ATOMS.get(key)
    if plain is not None:
        return plain
    if len(key) > 3 and key[0] == "{" and key[-2] == "}":
        name, kind = key[1:-2].lower(), key[-1]
        if kind == "i":
            return _request_header(name)
        if kind == "o":
            return _response_header(name)
        if kind == "e":
            environ = _ENVIRON_ATOMS.get(name)
            if environ is not None:
                return environ
            if name.startswith("http_") and len(name) > 5:
                return _joined(name[5:].replace("_", "-"))
            raise AccessLogFormatError(
                f"access log atom %({key})s: WSGI environ key {name.upper()!r} has no forkloop "
                f"equivalent (supported: HTTP_*, {', '.join(k.upper() for k in _ENVIRON_ATOMS)})"
            )
    raise AccessLogFormatError(
        f"access log atom %({key})s is not one of gunicorn's atoms "
        f"({' '.join(_PLAIN_ATOMS)}, {{header}}i, {{header}}o, {{VAR}}e)"
    )


class _Atoms(dict[str, object]):
    """gunicorn's SafeAtoms contract: double quotes escaped; unknown atoms render as ``-``."""

    __slots__ = ()

    def __missing__(self, key: str) -> object:
        return "-"


def _escaped(value: object) -> object:
    return value.replace('"', '\\"') if isinstance(value, str) else value


@dataclasses.dataclass(frozen=True, slots=True)
class CompiledFormat:
    """A checked gunicorn access-log format and the getters of the atoms it names."""

    fmt: str
    atoms: tuple[tuple[str, _Getter], ...]

    def render(self, request: BaseRequest, response: StreamResponse, duration_s: float) -> _Atoms:
        """The atoms of one request, ready for ``fmt % atoms``."""
        return _Atoms(
            (key, _escaped(get(request, response, duration_s))) for key, get in self.atoms
        )


def compile_access_log_format(fmt: str) -> CompiledFormat:
    """Check every atom of a gunicorn access-log format; raise AccessLogFormatError if not."""
    atoms: dict[str, _Getter] = {}
    for key in _ATOM_KEY.findall(fmt):
        if key not in atoms:
            atoms[key] = _atom(key)
    # Formatting once with stand-in values proves the format string itself is well formed.
    sample = _Atoms((key, 0 if key in _NUMERIC_ATOMS else "-") for key in atoms)
    try:
        fmt % sample
    except (TypeError, ValueError, KeyError) as exc:
        raise AccessLogFormatError(f"access log format {fmt!r} is malformed: {exc}") from None
    return CompiledFormat(fmt, tuple(atoms.items()))


class GunicornAccessLogger(AbstractAccessLogger):
    """Renders gunicorn's ``--access-logformat`` from forkloop requests (see gunicorn's docs).

    ``log_format`` is gunicorn's format (``%(h)s %(l)s %(u)s %(t)s "%(r)s" ...``); every atom is
    checked when the logger is built, and one forkloop cannot compute raises
    ``AccessLogFormatError``. Each line is emitted as gunicorn emits it -
    ``logger.info(format, atoms)`` - so handlers that read ``record.args`` keep working; only
    the atoms the format names are computed.
    """

    __slots__ = ("_compiled",)

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        self._compiled = compile_access_log_format(log_format)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        try:
            self.logger.info(self._compiled.fmt, self._compiled.render(request, response, time))
        except Exception:
            self.logger.exception("forkloop: cannot write the access log line")


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
        # asyncio.Event binds to a loop on first use, so creating them pre-fork is harmless.
        self._stop_requested = asyncio.Event()
        self._quick_exit = asyncio.Event()
        self._stop_started: float | None = None
        self._runner: AppRunner | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._early_signals: list[int] = []
        self._probes = Probes(self._draining)

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
        try:
            admission_from_environ(os.environ)
        except ValueError as exc:
            return str(exc)
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
        # The loop is not running yet (the app is still to be imported and built), and uvloop
        # only listens for signals while it runs: until then they are recorded, and replayed
        # once the loop handlers are in place (_install_loop_signals).
        for sig in self._loop_signals():
            signal.signal(sig, self._record_early_signal)
        # faulthandler's fatal-signal handler dumps every thread's traceback at C level (even when
        # the loop is stuck in C code), then re-raises the signal to the handler it replaced: the
        # Python handler below, which runs once the interpreter gets control back. Re-enabling
        # makes it record that handler as the one to chain to.
        faulthandler.disable()
        signal.signal(signal.SIGABRT, self.handle_abort)
        faulthandler.enable(file=sys.stderr, all_threads=True)

    # -- signal handlers -------------------------------------------------------------------------

    def _loop_signals(self) -> dict[int, Callable[[], None]]:
        return {
            signal.SIGTERM: self._on_term,
            signal.SIGINT: lambda: self._on_quit(signal.SIGINT),
            signal.SIGQUIT: lambda: self._on_quit(signal.SIGQUIT),
            signal.SIGUSR1: self._on_usr1,
            signal.SIGWINCH: self._on_winch,
        }

    def _record_early_signal(self, sig: int, frame: FrameType | None) -> None:
        self._early_signals.append(sig)

    def _install_loop_signals(self) -> None:
        handlers = self._loop_signals()
        for sig, handler in handlers.items():
            self.loop.add_signal_handler(sig, handler)
        early, self._early_signals = self._early_signals, []
        for sig in early:
            handlers[sig]()

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
        """ABRT (the master's ``--timeout``): tracebacks were dumped; run the hook and exit 1.

        The exit is immediate (``os._exit``): raising SystemExit here would unwind through the
        handler that blocked the loop, where the app or the event loop may swallow it (uvloop
        does, for a task), and nothing on a stuck loop is worth finishing. gunicorn's
        ``worker_exit`` hook therefore does not run for an aborted worker; ``child_exit`` in
        the master does.
        """
        self.alive = False
        try:
            self.log.error("Worker %s: heartbeat missed (blocked event loop), exiting", self.pid)
            self.cfg.worker_abort(self)
        finally:
            _flush_logs()
            os._exit(1)

    def _draining(self) -> bool:
        """Readiness: 503 from the moment gunicorn (or the request budget) stops us."""
        return self._stop_requested.is_set() or not self.alive

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
            _close_loop(self.loop)

    async def _serve(self) -> None:
        self._install_loop_signals()
        if self._stop_requested.is_set():  # stopped while the app module was being imported
            return
        runner = self._runner = await self._make_runner()
        if runner.server is None:
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
        cleanup = asyncio.ensure_future(self._stop_runner(runner))
        quick = asyncio.ensure_future(self._quick_exit.wait())
        try:
            await asyncio.wait(
                {cleanup, quick},
                timeout=max(0.0, deadline - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not cleanup.done() and self._quick_exit.is_set():
                # Cut every connection now: the runner's stop then finds nothing left to wait
                # for and runs the app's on_cleanup, which gets QUICK_EXIT_S.
                server = runner.server
                for protocol in server.connections if server is not None else ():
                    if protocol.transport is not None:
                        protocol.transport.abort()
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

    async def _stop_runner(self, runner: AppRunner) -> None:
        await self._let_idle_connections_finish(runner)
        await runner.cleanup()

    async def _let_idle_connections_finish(self, runner: AppRunner) -> None:
        """Before the staged stop: stop accepting, and give keep-alive connections a moment.

        A client may be sending its next request on a keep-alive connection just as the server
        closes it; few clients retry then. So every connection is first told to close after
        its next response, and requests already on their way are served (with ``Connection:
        close``) for up to IDLE_GRACE_S before the runner closes what is still idle.
        """
        server = runner.server
        if server is None or self._quick_exit.is_set():
            return
        for site in list(runner.sites):
            await site.stop()
        for protocol in server.connections:
            protocol.force_close()
        for _ in range(round(IDLE_GRACE_S / 0.01)):
            if not len(server.connections) or self._quick_exit.is_set():
                return
            await asyncio.sleep(0.01)

    # -- building the app and the runner ---------------------------------------------------------

    async def _make_runner(self) -> AppRunner:
        target = await _resolve_app(self.wsgi)
        if isinstance(target, AppRunner):
            self.log.info(
                "forkloop: the factory returned an AppRunner; it is served as built, so "
                "gunicorn's --keep-alive, --limit-request-* and access-log settings do not apply"
            )
            self._add_budget_to(target)
            return target
        return AppRunner(target, **self._runner_kwargs())

    def _budget_observers(self) -> list[object]:
        # Observers a gunicorn hook attached to this worker (forkloop.workers.gunicorn_conf's
        # post_fork adds the metrics observer), then the --max-requests budget.
        observers: list[object] = list(getattr(self, "forkloop_observers", ()))
        if self.max_requests < sys.maxsize:
            observers.append(_RequestBudget(self, int(self.max_requests), self._on_max_requests))
        return observers

    def _add_budget_to(self, runner: AppRunner) -> None:
        """--max-requests for a runner built by the app: through the app's observer list."""
        observers = self._budget_observers()
        if not observers:
            return
        try:
            if runner.server is not None:
                raise RuntimeError("the runner is already set up")
            listed = runner.app.get(OBSERVERS_KEY)
            if listed is None:
                set_internal_key(runner.app, OBSERVERS_KEY, observers)
            else:
                listed.extend(observers)
        except Exception as exc:
            self.log.warning("forkloop: --max-requests is not enforced for this runner: %s", exc)

    def _runner_kwargs(self) -> dict[str, Any]:
        observers = self._budget_observers()
        if self.cfg.keepalive <= 0:
            observers.append(_CloseAfterResponse())
        kwargs: dict[str, Any] = {
            "handle_signals": False,
            "intercept": self._probes.intercept,
            "logger": _error_logger(self.log),
            "limits": limits_from_config(self.cfg),
            "observers": observers,
            "shutdown_timeout": GRACEFUL_SHARE * float(self.cfg.graceful_timeout),
            **admission_from_environ(os.environ),
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
                task = self.loop.create_task(site.stop())
                self._background.add(task)
                task.add_done_callback(self._background.discard)
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
    from forkloop.core.web.app import foreign_app_error

    foreign = foreign_app_error(obj)
    if foreign is not None:
        return foreign if factory is None else f"{_name(factory)}(): {foreign}"
    return (
        f"{where} {got}; forkloop's gunicorn worker expects a forkloop.web.Application, "
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


def _flush_logs() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    for name in (None, "gunicorn.error", "gunicorn.access", "forkloop"):
        for handler in logging.getLogger(name).handlers:
            with contextlib.suppress(Exception):
                handler.flush()


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()

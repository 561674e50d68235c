"""The forkloop worker process: serve the app on the sockets inherited from the master.

Owns: everything a worker does between ``fork`` and ``os._exit``:

1. Tie its life to the master: ``PR_SET_PDEATHSIG`` (Linux, via ctypes) plus a parent check
   on every heartbeat, so a worker never outlives its master, even one killed with SIGKILL.
2. Arm faulthandler: the master's abort signal (SIGABRT) makes it dump every thread's
   traceback to the log before the process dies -- this is how a blocked event loop is shown.
   In JSON log mode the dump goes to the heartbeat pipe and the master logs it as one JSON
   record (faulthandler writes raw text, from a signal handler).
3. Load the app (unless the master preloaded it); on failure log it (traceback included, in
   the log format), send ``boot_error`` to the master and exit 3.
4. Build its own event loop (uvloop or asyncio), serve on every listener through the engine's
   ``AppRunner`` + ``SockSite``, answer ``GET /-/healthz`` and ``GET /-/readyz`` before the
   app (``forkloop.workers.probes``), and report ``ready``.
5. Send a heartbeat from the event loop (requests served, in flight, connections, loop lag),
   counted by an observer passed to ``AppRunner(observers=...)``.
6. Stop on signals: TERM = shutdown drain (readiness 503 at once, keep serving
   ``--drain-delay`` seconds, then retire); HUP = retire now (rolling reload and recycling:
   the siblings keep serving); QUIT/INT = quick exit; USR1 = reopen the log file.
   Retiring: stop accepting, accept what is already queued on the listener, answer every
   further request with ``Connection: close`` so keep-alive clients move to a sibling, then
   the runner's staged graceful shutdown (idle connections closed, busy ones finish,
   on_shutdown/on_cleanup) within ``--graceful-timeout``.

Imports: stdlib, :mod:`forkloop.core` (runner, response), :mod:`forkloop.supervisor` (pipe
protocol, sockets, logs) and :mod:`forkloop.workers.loader`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import faulthandler
import inspect
import logging
import os
import resource
import signal
import socket
import ssl
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from forkloop.supervisor import logs
from forkloop.supervisor.config import Config
from forkloop.supervisor.heartbeat import HeartbeatWriter
from forkloop.supervisor.process import WorkerContext
from forkloop.supervisor.scoreboard import Scoreboard
from forkloop.supervisor.sockets import open_worker_socket

from . import loader
from .accept import BalancedAcceptor
from .probes import Probes

__all__ = ["EXIT_BOOT_ERROR", "Counters", "Worker", "worker_main"]

log = logging.getLogger("forkloop.worker")
EXIT_BOOT_ERROR = 3
PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0)
    except (OSError, AttributeError):  # pragma: no cover - no libc/prctl
        return False


def ssl_context(config: Config) -> ssl.SSLContext | None:
    if not config.certfile or not config.keyfile:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.certfile, config.keyfile)
    return context


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


class Counters:
    """The worker's observer (``forkloop.core.hooks``): what the heartbeat reports.

    While retiring, every request started gets ``force_close()``: its response carries
    ``Connection: close`` and a keep-alive client reconnects -- to a sibling worker.
    """

    def __init__(self, scoreboard: Scoreboard | None = None, slot: int = 0) -> None:
        self.requests = 0
        self.inflight = 0
        self.connections = 0
        self.closing = False
        self._board = scoreboard
        self._slot = slot
        self.limit = 0  # --max-requests for this worker (jitter included); 0: none
        self.on_limit: Callable[[], None] | None = None

    def request_started(self, request: Any) -> None:
        self.inflight += 1
        if self.closing:
            protocol = getattr(request, "protocol", None)
            if protocol is not None:
                protocol.force_close()

    def request_finished(
        self, request: Any, response: Any, duration_s: float, exc: BaseException | None
    ) -> None:
        self.inflight -= 1
        self.requests += 1
        if self.requests == self.limit and self.on_limit is not None:
            self.on_limit()  # tell the master now, not at the next heartbeat

    def connection_made(self) -> None:
        self.connections += 1
        if self._board is not None:
            self._board.set_connections(self._slot, self.connections)

    def connection_lost(self) -> None:
        self.connections -= 1
        if self._board is not None:
            self._board.set_connections(self._slot, self.connections)


class Worker:
    """One worker process's life; ``run()`` returns its exit status."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        # The app may show or log which worker it is (the demo does); set before it loads.
        os.environ["FORKLOOP_WORKER_SLOT"] = str(ctx.slot)
        self.config = ctx.config
        self.pipe = HeartbeatWriter(ctx.pipe_fd)
        self.counters = Counters(ctx.scoreboard, ctx.slot)
        self.interval_s = min(1.0, max(0.05, self.config.timeout_s / 5))
        self.acceptors: list[BalancedAcceptor] = []
        hook = ctx.extra.get("heartbeat_fields")
        self._heartbeat_fields: Callable[[], Any] | None = hook if callable(hook) else None
        self.draining = False  # readiness 503
        self.probes = Probes(lambda: self.draining)
        self.stop_kind: str | None = None  # "shutdown" | "retire" | "quick"
        self.stopped: asyncio.Event | None = None
        self.runner: Any = None
        self.sites: list[Any] = []
        self.accept_socks: list[socket.socket] = []
        self.ssl: ssl.SSLContext | None = None

    # ------------------------------------------------------------------ boot

    def run(self) -> int:
        set_parent_death_signal()
        if os.getppid() != self.ctx.master_pid:
            return 0  # the master died before we armed the death signal
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core files on SIGABRT
        logs.configure(self.config.log_level, self.config.log_format)
        self._arm_faulthandler(to_pipe=logs.is_json())
        for sig in (
            signal.SIGUSR1,
            signal.SIGUSR2,
            signal.SIGTTIN,
            signal.SIGTTOU,
            signal.SIGWINCH,
        ):
            signal.signal(sig, signal.SIG_IGN)  # until the loop installs its handlers
        # Stop signals: fork_worker made them exit 0 until _serve installs the loop's handlers.
        try:
            app = self._load()
            self.ssl = ssl_context(self.config)
        except Exception as exc:
            return self._boot_failed(exc)
        with asyncio.Runner(loop_factory=loop_factory(self.config.loop)) as runner:
            return runner.run(self._serve(app))

    def _arm_faulthandler(self, *, to_pipe: bool) -> None:
        if to_pipe and not self.pipe.broken:
            faulthandler.enable(file=self.ctx.pipe_fd, all_threads=True)
        else:
            faulthandler.enable(file=sys.stderr, all_threads=True)

    def _load(self) -> Any:
        preloaded = self.ctx.preloaded
        if preloaded is None:
            return loader.load(self.config.app)
        if isinstance(preloaded, loader.AppTarget):
            return loader.make_app(preloaded)
        return preloaded

    def _boot_failed(self, exc: BaseException) -> int:
        detail = "".join(traceback.format_exception(exc))
        error = str(exc) if isinstance(exc, loader.AppLoadError) else loader.one_line(exc)
        log.error("cannot serve %s: %s", self.config.app, error, exc_info=exc)
        self.pipe.send_blocking("boot_error", error=error, detail=detail[-3000:])
        return EXIT_BOOT_ERROR

    async def _serve(self, app: Any) -> int:
        from forkloop.core.web.runner import AppRunner, SockSite

        loop = asyncio.get_running_loop()
        self.stopped = asyncio.Event()
        try:
            if inspect.isawaitable(app):
                app = loader.check_app(await app, self.config.app)
            kwargs: dict[str, Any] = {}
            if self.config.keepalive_timeout_s is not None:
                import dataclasses

                from forkloop.core.http.limits import Limits

                kwargs["limits"] = dataclasses.replace(
                    Limits(), keepalive_timeout_s=self.config.keepalive_timeout_s
                )
            if self.config.max_concurrency is not None:
                kwargs["max_concurrency"] = self.config.max_concurrency
            if self.config.max_queue_time_s is not None:
                kwargs["max_queue_time"] = self.config.max_queue_time_s
                kwargs["trust_request_start"] = self.config.trust_request_start
            observers: list[Any] = [self.counters]
            extra_observers = self.ctx.extra.get("observers")
            if callable(extra_observers):  # e.g. forkloop.metrics.worker_observers
                observers.extend(extra_observers(self.ctx))
            self.runner = AppRunner(
                app,
                intercept=self.probes.intercept,
                observers=observers,
                access_log=logging.getLogger("forkloop.access") if self.config.access_log else None,
                shutdown_timeout=max(0.1, self.config.graceful_timeout_s * 0.8),
                **kwargs,
            )
            await self.runner.setup()
            await self._listen(SockSite)
        except Exception as exc:
            return self._boot_failed(exc)
        self._close_unused_listeners()
        for sig, kind in (
            (signal.SIGTERM, "shutdown"),
            (signal.SIGHUP, "retire"),
            (signal.SIGQUIT, "quick"),
            (signal.SIGINT, "quick"),
        ):
            loop.add_signal_handler(sig, self.stop, kind)
        loop.add_signal_handler(signal.SIGUSR1, self._reopen_logs)
        self.pipe.send_blocking("ready", pid=os.getpid(), slot=self.ctx.slot)
        heartbeat = asyncio.create_task(self._heartbeat())
        self.counters.limit = self.ctx.max_requests
        self.counters.on_limit = self._beat_now
        await self.stopped.wait()
        try:
            if self.stop_kind != "quick":
                await self._graceful()
        finally:
            heartbeat.cancel()
            self._arm_faulthandler(to_pipe=False)  # the pipe's fd is about to close
            self.pipe.close()
        return 0

    async def _listen(self, site_class: Any) -> None:
        """Shared listeners: balanced accepting. Reuse-port: our own socket, an engine site."""
        self._publish()
        for listener in self.ctx.listeners:
            if listener.reuse_port:
                sock = open_worker_socket(listener, self.config.backlog)
                # Our own handle on the listener: after the site stops accepting we still
                # accept what the kernel already queued (see _accept_queued).
                self.accept_socks.append(sock.dup())
                site = site_class(
                    self.runner, sock, ssl_context=self.ssl, backlog=self.config.backlog
                )
                await site.start()
                self.sites.append(site)
            else:
                acceptor = BalancedAcceptor(
                    listener.sock,
                    self.runner.server,
                    ssl_context=self.ssl,
                    connections=lambda: self.counters.connections,
                    scoreboard=self.ctx.scoreboard,
                    slot=self.ctx.slot,
                    fresh_s=3 * self.interval_s,
                )
                acceptor.start()
                self.acceptors.append(acceptor)

    def _publish(self) -> None:
        board = self.ctx.scoreboard
        if board is not None:
            board.publish(self.ctx.slot, os.getpid(), self.counters.connections)

    def _close_unused_listeners(self) -> None:
        """In reuse-port mode the master's reserved sockets are not ours to hold."""
        for listener in self.ctx.listeners:
            if listener.reuse_port:
                with contextlib.suppress(OSError):
                    listener.sock.close()

    # ------------------------------------------------------------------ heartbeat

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.interval_s
        expected = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, expected - loop.time()))
            now = loop.time()
            lag = max(0.0, now - expected)  # how late the loop ran this timer
            expected = now + interval
            self._send_beat(lag)
            if self.pipe.broken or os.getppid() != self.ctx.master_pid:
                log.warning("the master is gone: exiting")
                self.stop("quick")

    def _send_beat(self, lag: float) -> None:
        counters = self.counters
        self._publish()
        extra = self._extra_fields() if self._heartbeat_fields is not None else {}
        self.pipe.send(
            "beat",
            requests=counters.requests,
            inflight=counters.inflight,
            connections=counters.connections,
            lag_s=round(lag, 6),
            draining=self.draining,
            **extra,
        )

    def _beat_now(self) -> None:
        """The request limit was just reached: say so now (a ``limit`` message is a heartbeat
        without a loop-lag sample), so the replacement starts at once."""
        counters = self.counters
        self.pipe.send(
            "limit",
            requests=counters.requests,
            inflight=counters.inflight,
            connections=counters.connections,
            draining=self.draining,
        )

    def _extra_fields(self) -> dict[str, Any]:
        """Fields another layer (metrics) adds to every heartbeat: ``ctx.extra``'s
        ``heartbeat_fields() -> dict``. A failing hook never stops the heartbeat."""
        try:
            fields = self._heartbeat_fields() if self._heartbeat_fields else {}
        except Exception:
            log.exception("heartbeat_fields hook failed")
            return {}
        return {k: v for k, v in dict(fields).items() if k not in ("v", "k")}

    # ------------------------------------------------------------------ stopping

    def stop(self, kind: str) -> None:
        """Signal handler (runs in the loop): record the strongest stop request."""
        order = {"retire": 0, "shutdown": 1, "quick": 2}
        if self.stop_kind is not None and order[kind] <= order[self.stop_kind]:
            return
        self.stop_kind = kind
        if kind == "shutdown":
            self.draining = True  # readiness 503 at once
        if kind == "quick":
            log.info("quick stop")
            if self.stopped is not None and self.stopped.is_set():
                os._exit(0)  # already draining: leave now
        if self.stopped is not None:
            self.stopped.set()

    async def _graceful(self) -> None:
        self.pipe.send("stopping", reason=self.stop_kind)
        log.info(
            "stopping (%s): %d connections open, %d requests served",
            self.stop_kind,
            self.counters.connections,
            self.counters.requests,
        )
        delay = self.config.drain_delay_s if self.stop_kind == "shutdown" else 0.0
        if delay:
            log.info("draining: readiness 503, serving %.1fs more", delay)
            self.counters.closing = True
            await asyncio.sleep(delay)
        self.counters.closing = True
        for site in self.sites:
            await site.stop()
        for acceptor in self.acceptors:
            acceptor.stop()
        await self._accept_queued()
        await self._let_connections_close(min(2.0, self.config.graceful_timeout_s * 0.1))
        await self.runner.cleanup()

    async def _accept_queued(self) -> None:
        """Serve the connections already in the kernel's accept queue, then close."""
        budget = min(1.0, self.config.graceful_timeout_s * 0.05)  # for TLS handshakes
        accepted = 0
        for acceptor in self.acceptors:
            accepted += await acceptor.accept_queued(budget)
            # Our copy of the shared listener: once every holder closed it, the port refuses.
            acceptor.sock.close()
        for sock in self.accept_socks:  # reuse-port listeners: the queue is ours alone
            acceptor = BalancedAcceptor(
                sock,
                self.runner.server,
                ssl_context=self.ssl,
                connections=lambda: 0,
                scoreboard=None,
                slot=self.ctx.slot,
                fresh_s=0.0,
            )
            acceptor.stop()
            accepted += await acceptor.accept_queued(budget)
            sock.close()
        self.accept_socks.clear()
        if self.ctx.scoreboard is not None:
            self.ctx.scoreboard.clear(self.ctx.slot, os.getpid())  # siblings stop waiting on us
        if accepted:
            log.info("serving %d connections that were queued on the listener", accepted)
            # Let their requests be read before the shutdown decides who is idle.
            for _ in range(3):
                await asyncio.sleep(0.01)

    async def _let_connections_close(self, limit_s: float) -> None:
        """Keep-alive clients get ``Connection: close`` on their next response; wait a
        moment for them rather than closing connections they may be writing to."""
        deadline = time.monotonic() + limit_s
        while self.counters.connections > 0 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    def _reopen_logs(self) -> None:
        if self.config.log_file:
            logs.reopen(self.config.log_file)


def worker_main(ctx: WorkerContext) -> int:
    """Entry point given to the supervisor by the composition root (``forkloop.cli``)."""
    return Worker(ctx).run()

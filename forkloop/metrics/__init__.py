"""Prometheus metrics for forkloop: the observer, aggregation across workers, the exposition.

Two ways in:

- ``forkloop serve APP --metrics-bind 0.0.0.0:9100``: every worker records its requests and
  sends the changes to the master over its heartbeat pipe; the master serves one ``/metrics``
  with every live worker's series (label ``worker`` = slot), a ``worker="retired"`` series
  holding what departed workers counted, and the supervisor's own metrics. ``sum without
  (worker)`` is the whole server, and never goes backwards when workers are replaced.
  The composition root (``forkloop.cli``) calls :func:`attach_supervisor` in the master and
  :func:`worker_observers` in each worker.

  A USR2 upgrade hands the metrics listener to the new master like the app listeners (the
  side socket ``forkloop-metrics``, see ``forkloop.supervisor.sockets``), with a channel
  (``forkloop-metrics-carry``) on which the old master, once its last worker has exited, sends
  its totals. Until then the old master answers the scrapes; then the new one folds those
  totals into its ``retired`` series and answers, so counters carry on across the upgrade
  (the supervisor's own restart and reload counters start again).
- ``forkloop.metrics.setup(app)`` for a single-process server (``web.run_app``): records
  requests in this process and mounts ``GET /metrics`` on the app.

The web core never imports this package; it reports through ``forkloop.core.hooks``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
import threading
import time
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from forkloop.supervisor.sockets import take_side_socket

from .aggregate import Aggregator
from .observer import HttpObserver
from .series import Store, WorkerValues, merge_into

__all__ = ["HttpObserver", "Store", "attach_supervisor", "setup", "worker_observers"]

log = logging.getLogger("forkloop.metrics")

METRICS_SOCKET = "forkloop-metrics"
CARRY_SOCKET = "forkloop-metrics-carry"
# The carried totals are our own previous master's: still, a bound on what we buffer.
MAX_CARRY_BYTES = 256 * 1024 * 1024

# The master's metrics sockets, kept so a forked worker can close its inherited copies.
_master_sockets: list[socket.socket] = []


def setup(app: Any, *, path: str | None = "/metrics") -> Store:
    """Record ``app``'s requests in this process; serve them at ``path`` (None: don't)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import choose_encoder

    from forkloop.core.hooks import OBSERVERS_KEY
    from forkloop.core.web.deprecations import set_internal_key
    from forkloop.core.web.response import Response

    from .exposition import HttpCollector

    store = Store()
    observers = app.get(OBSERVERS_KEY)
    if observers is None:
        observers = []
        set_internal_key(app, OBSERVERS_KEY, observers)
    observer = HttpObserver(store)
    observers.append(observer)

    def rows() -> list[tuple[str, Any]]:
        observer.sample_active()
        return [("0", store.snapshot())]

    registry = CollectorRegistry(auto_describe=False)
    registry.register(HttpCollector(rows))
    if path is not None:

        async def metrics(request: Any) -> Response:
            encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
            return Response(body=encoder(registry), headers={"Content-Type": content_type})

        app.router.add_get(path, metrics, name="forkloop-metrics")
    return store


def worker_observers(ctx: Any) -> list[object]:
    """In a supervised worker: the observer that records and ships this worker's metrics."""
    from forkloop.supervisor.heartbeat import HeartbeatWriter

    from .worker import PipeSender, WorkerMetricsObserver

    for sock in _master_sockets:  # inherited across fork: the master's, not ours
        with contextlib.suppress(OSError):
            sock.close()
    store = Store()
    sender = PipeSender(store, HeartbeatWriter(ctx.pipe_fd))
    return [WorkerMetricsObserver(store, sender)]


class _ErrorsToLog(io.StringIO):
    """``wsgi.errors`` of the exposition: what wsgiref would print on stderr (a failing
    collector's traceback) is logged as one record at each flush."""

    def flush(self) -> None:
        text = self.getvalue().rstrip()
        if text:
            log.error("metrics exposition failed: %s", text)
        self.seek(0)
        self.truncate()


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape, and nothing written to stderr outside logging."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def get_stderr(self) -> io.StringIO:
        return _ErrorsToLog()


class _ExpositionServer(WSGIServer):
    """prometheus_client's WSGI app served on a socket we already bound (or inherited):
    one thread per scrape, like prometheus_client's own server."""

    def __init__(self, sock: socket.socket, app: Any) -> None:
        super().__init__(sock.getsockname()[:2], _QuietHandler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_address = sock.getsockname()
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])
        self.setup_environ()
        self.set_app(app)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_one, args=(request, client_address), daemon=True
        )
        thread.start()

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("metrics scrape from %s failed", client_address, exc_info=True)


def _listen(host: str, port: int) -> socket.socket:
    """The metrics listener: inherited from a previous master (USR2) or systemd when it is
    the address asked for, else bound here. Raises OSError."""
    inherited = take_side_socket(METRICS_SOCKET)
    if inherited is not None:
        with contextlib.suppress(OSError):
            if port in (0, int(inherited.getsockname()[1])):
                inherited.listen(128)
                return inherited
        log.warning("--metrics-bind changed: not using the inherited metrics socket")
        inherited.close()
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _receive_carry(sock: socket.socket, aggregator: Aggregator, wait_s: float) -> None:
    """In a new master: wait (at most ``wait_s``) for the old master's totals; fold them
    into the retired series."""
    deadline = time.monotonic() + wait_s
    buffer = b""
    totals: list[Any] | None = None
    with contextlib.closing(sock):
        while totals is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                data = sock.recv(1 << 16)
            except OSError:
                data = b""
            if not data or len(buffer) + len(data) > MAX_CARRY_BYTES:
                break
            buffer += data
            line, newline, _ = buffer.partition(b"\n")
            if newline:
                with contextlib.suppress(ValueError, TypeError, AttributeError):
                    totals = list(json.loads(line)["records"])
                break
    if totals is None:
        log.warning("metrics: the previous master sent no totals; counting from zero")
        return
    values = WorkerValues()
    for record in totals:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            values.apply(record)
    with aggregator.lock:
        merge_into(aggregator.retired, values)
    log.info("metrics: carried on the previous master's totals")


def attach_supervisor(config: Any, arbiter: Any) -> str:
    """In the master: aggregate the workers' metrics and serve them on ``config.metrics_bind``."""
    from prometheus_client import CollectorRegistry, make_wsgi_app

    from .exposition import HttpCollector, SupervisorCollector

    aggregator = Aggregator()
    previous = arbiter.on_message

    def on_message(worker: Any, message: Any) -> None:
        if message.kind == "metrics":
            aggregator.on_metrics(worker.slot, worker.pid, message.fields.get("s"))
        elif message.kind == "beat":
            aggregator.on_beat(worker.slot, worker.pid, message.get_float("lag_s"))
        if previous is not None:
            previous(worker, message)

    arbiter.on_message = on_message

    def rows() -> list[tuple[str, Any]]:
        snapshot = arbiter.snapshot()
        return aggregator.view((w.slot, w.pid) for w in snapshot.workers)

    def ports() -> list[tuple[str, int]]:
        found = []
        for listener in arbiter.listeners:
            with contextlib.suppress(OSError, IndexError, TypeError):
                if listener.sock.family in (socket.AF_INET, socket.AF_INET6):
                    host, port = listener.sock.getsockname()[:2]
                    shown = f"[{host}]" if ":" in host else host
                    found.append((f"{shown}:{port}", int(port)))
        return found

    registry = CollectorRegistry(auto_describe=False)
    registry.register(HttpCollector(rows))
    registry.register(SupervisorCollector(arbiter.snapshot, rows, ports))
    host, port = config.metrics_bind
    sock = _listen(host, port)
    server = _ExpositionServer(sock, make_wsgi_app(registry))
    carried = take_side_socket(CARRY_SOCKET)
    _master_sockets[:] = [sock] if carried is None else [sock, carried]
    started, stopped = threading.Event(), threading.Event()
    _hand_over(arbiter, server, sock, aggregator, started, stopped)

    def serve() -> None:
        if carried is not None:  # the old master answers until it sends its totals
            _receive_carry(carried, aggregator, config.graceful_timeout_s + 30.0)
        if not stopped.is_set():
            started.set()
            server.serve_forever()

    threading.Thread(target=serve, name="forkloop-metrics", daemon=True).start()
    bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return f"http://{shown}:{bound_port}/metrics"


def _hand_over(
    arbiter: Any,
    server: _ExpositionServer,
    sock: socket.socket,
    aggregator: Aggregator,
    started: threading.Event,
    stopped: threading.Event,
) -> None:
    """USR2: pass the listener to the new master; at this master's halt, stop answering and
    send it the totals (see the module docstring)."""
    arbiter.side_sockets[METRICS_SOCKET] = sock
    carry: list[socket.socket] = []

    def on_upgrade() -> dict[str, socket.socket]:
        for old in carry:  # a previous upgrade that failed
            old.close()
        mine, theirs = socket.socketpair()
        carry[:] = [mine]
        return {CARRY_SOCKET: theirs}

    def on_halt() -> None:
        if not carry:
            return
        stopped.set()
        if started.is_set():
            server.shutdown()  # queued scrapes wait on the listener for the new master
        totals = aggregator.view(())[-1][1]  # every worker has exited: all is retired
        line = json.dumps({"records": totals.records()}, separators=(",", ":")) + "\n"
        with contextlib.closing(carry[0]) as channel, contextlib.suppress(OSError):
            channel.settimeout(10.0)
            channel.sendall(line.encode())
        carry.clear()

    arbiter.upgrade_hooks.append(on_upgrade)
    arbiter.halt_hooks.append(on_halt)

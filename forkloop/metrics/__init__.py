"""Prometheus metrics for forkloop: the observer, aggregation across workers, the exposition.

Two ways in:

- ``forkloop serve APP --metrics-bind 0.0.0.0:9100``: every worker records its requests and
  sends the changes to the master over its heartbeat pipe; the master serves one ``/metrics``
  with every live worker's series (label ``worker`` = slot), a ``worker="retired"`` series
  holding what departed workers counted, and the supervisor's own metrics. ``sum without
  (worker)`` is the whole server, and never goes backwards when workers are replaced.
  The composition root (``forkloop.cli``) calls :func:`attach_supervisor` in the master and
  :func:`worker_observers` in each worker.
- ``forkloop.metrics.setup(app)`` for a single-process server (``web.run_app``): records
  requests in this process and mounts ``GET /metrics`` on the app.

The web core never imports this package; it reports through ``forkloop.core.hooks``.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

from .aggregate import Aggregator
from .observer import HttpObserver
from .series import Store

__all__ = ["HttpObserver", "Store", "attach_supervisor", "setup", "worker_observers"]

log = logging.getLogger("forkloop.metrics")

# The master's exposition server, kept so a forked worker can close its inherited socket.
_master_server: Any = None


def setup(app: Any, *, path: str | None = "/metrics") -> Store:
    """Record ``app``'s requests in this process; serve them at ``path`` (None: don't)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import choose_encoder

    from forkloop.core.hooks import OBSERVERS_KEY
    from forkloop.core.web.response import Response

    from .exposition import HttpCollector

    store = Store()
    observers = app.get(OBSERVERS_KEY)
    if observers is None:
        observers = []
        app[OBSERVERS_KEY] = observers
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

    if _master_server is not None:  # inherited across fork: the master's, not ours
        with contextlib.suppress(OSError):
            _master_server.socket.close()
    store = Store()
    sender = PipeSender(store, HeartbeatWriter(ctx.pipe_fd))
    return [WorkerMetricsObserver(store, sender)]


def attach_supervisor(config: Any, arbiter: Any) -> str:
    """In the master: aggregate the workers' metrics and serve them on ``config.metrics_bind``."""
    global _master_server
    from prometheus_client import CollectorRegistry, start_http_server

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
    server, _thread = start_http_server(port, addr=host, registry=registry)
    _master_server = server
    bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return f"http://{shown}:{bound_port}/metrics"

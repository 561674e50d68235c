"""Prometheus metrics for forkloop's gunicorn workers: a gunicorn configuration module.

Use it as ``gunicorn myapp:app -k forkloop.workers.GunicornWebWorker
-c python:forkloop.workers.gunicorn_conf`` (or import its hooks into your own config file).
The metrics address comes from ``FORKLOOP_METRICS_BIND`` (default ``127.0.0.1:9100``).

Owns the gunicorn side of the metrics: in the master (``when_ready``) one pipe shared by every
worker, the aggregation of what they send and the ``/metrics`` server; per fork (``pre_fork``)
a slot number for the ``worker`` label, the lowest one no live worker holds; in each worker
(``post_fork``) the observer that records requests and sends changes over the pipe, each message
one atomic write carrying its slot and pid. A worker that exits is folded into
``worker="retired"`` at the next scrape, so whole-server counters never go backwards and nothing
grows with the number of workers ever started. Imports forkloop.metrics and the pipe protocol.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Any

from forkloop.metrics.aggregate import Aggregator
from forkloop.metrics.series import Store
from forkloop.supervisor.heartbeat import Decoder, HeartbeatWriter

__all__ = ["child_exit", "post_fork", "pre_fork", "when_ready"]

log = logging.getLogger("forkloop.metrics")

_master: dict[str, Any] = {}


def _bind() -> tuple[str, int]:
    value = os.environ.get("FORKLOOP_METRICS_BIND", "127.0.0.1:9100")
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"forkloop: FORKLOOP_METRICS_BIND must be HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _read(fd: int, aggregator: Aggregator) -> None:
    decoder = Decoder()
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            return
        if not data:
            return
        for message in decoder.feed(data):
            if message.kind == "metrics":
                aggregator.on_metrics(
                    message.get_int("slot", -1), message.get_int("pid"), message.fields.get("s")
                )


def when_ready(server: Any) -> None:
    """Master: the shared pipe, its reader thread and the /metrics server."""
    from prometheus_client import CollectorRegistry, start_http_server

    from forkloop.metrics.exposition import HttpCollector

    read_fd, write_fd = os.pipe()
    aggregator = Aggregator()
    threading.Thread(
        target=_read, args=(read_fd, aggregator), name="forkloop-metrics", daemon=True
    ).start()

    def rows() -> list[tuple[str, Any]]:
        live = [
            (getattr(worker, "forkloop_slot", -1), pid)
            for pid, worker in list(server.WORKERS.items())
        ]
        return aggregator.view(live)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(HttpCollector(rows))
    host, port = _bind()
    http, _thread = start_http_server(port, addr=host, registry=registry)
    _master.update(read_fd=read_fd, write_fd=write_fd, http=http)
    server.log.info("forkloop metrics: http://%s:%d/metrics", host, http.server_address[1])


def pre_fork(server: Any, worker: Any) -> None:
    """Master, before each fork: the lowest slot no live worker holds."""
    taken = {getattr(w, "forkloop_slot", None) for w in server.WORKERS.values()}
    worker.forkloop_slot = next(slot for slot in range(len(taken) + 1) if slot not in taken)


def post_fork(server: Any, worker: Any) -> None:
    """Worker, after the fork: record requests and send them to the master."""
    from forkloop.metrics.worker import PipeSender, WorkerMetricsObserver

    if not _master:
        return
    with contextlib.suppress(OSError):
        os.close(_master["read_fd"])
        _master["http"].socket.close()  # the master's listening socket, inherited
    store = Store()
    sender = PipeSender(
        store,
        HeartbeatWriter(_master["write_fd"]),
        fields={"slot": getattr(worker, "forkloop_slot", -1), "pid": os.getpid()},
    )
    worker.forkloop_observers = [WorkerMetricsObserver(store, sender)]


def child_exit(server: Any, worker: Any) -> None:
    """Master: nothing to clean up on disk; the next scrape folds the worker into "retired"."""

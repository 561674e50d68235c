"""The probes a worker answers before the app: ``GET /-/healthz`` and ``GET /-/readyz``.

Owns the probe paths and their answers, for every worker that serves an app: the supervised
worker (``forkloop.workers.main``) and the gunicorn worker classes (``forkloop.workers.gunicorn``)
pass :class:`Probes`'s ``intercept`` to their ``AppRunner(intercept=...)``, so the web core answers
a probe without running the app, its middlewares or the access log and metrics.

- ``/-/healthz``: 200 ``ok`` while the worker's event loop answers (liveness).
- ``/-/readyz``: 200 ``ready``, or 503 ``draining`` from the moment the worker was told to stop
  (``draining()`` says so), so that a load balancer stops sending it traffic (readiness).

Any other ``/-/`` path and any query string are the app's / ignored respectively; only the path
is compared. Imports the web core's ``Response`` (lazily: the master never builds one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["PREFIX", "Probes"]

PREFIX = "/-/"


class Probes:
    """``intercept(request)`` answers the probes; ``draining()`` tells readiness."""

    __slots__ = ("draining",)

    def __init__(self, draining: Callable[[], bool]) -> None:
        self.draining = draining

    def intercept(self, request: Any) -> Any:
        path: str = request.raw_path
        if not path.startswith(PREFIX):
            return None
        from forkloop.core.web.response import Response

        path = path.partition("?")[0]
        if path == "/-/healthz":
            return Response(text="ok\n")
        if path == "/-/readyz":
            if self.draining():
                return Response(status=503, text="draining\n")
            return Response(text="ready\n")
        return None

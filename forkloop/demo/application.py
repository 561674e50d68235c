"""The demo application: routes, static assets, and the metrics panel's JSON endpoint.

Owns: :func:`create_app` and the small JSON handlers (``GET /api/stats``,
``GET /api/whoami``). Routes:

============================  =========================================================
``GET /``                     the page (:mod:`forkloop.demo.page`)
``GET /ws/chat``              the chat WebSocket (:mod:`forkloop.demo.chat`)
``POST /api/upload``          the streaming upload (:mod:`forkloop.demo.upload`)
``GET /api/stats``            rate and latency from this server's ``/metrics``
``GET /api/whoami``           the worker answering: ``{"slot", "pid"}``
``GET /static/{filename}``    package files, linked with ``append_version=True``
============================  =========================================================

The metrics URL comes from ``FORKLOOP_DEMO_METRICS_URL`` (default
``http://127.0.0.1:9100/metrics``, what ``python -m forkloop.demo`` serves).

Imports: ``forkloop.web`` and the demo's modules.
"""

from __future__ import annotations

import os
from pathlib import Path

from forkloop import web

from .chat import chat_handler, close_all
from .identity import WorkerIdentity
from .page import index_handler
from .rooms import Rooms
from .state import STATE, DemoState
from .stats import StatsPanel
from .upload import upload_handler

__all__ = ["DEFAULT_METRICS_URL", "METRICS_URL_ENV", "STATIC_DIR", "create_app"]

METRICS_URL_ENV = "FORKLOOP_DEMO_METRICS_URL"
DEFAULT_METRICS_URL = "http://127.0.0.1:9100/metrics"
STATIC_DIR = Path(__file__).resolve().parent / "static"


async def stats_handler(request: web.Request) -> web.Response:
    panel = request.app[STATE].stats
    data = await panel.poll()
    data["worker"] = request.app[STATE].identity.as_dict()
    return web.json_response(data, headers={"Cache-Control": "no-store"})


async def whoami_handler(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].identity.as_dict())


def create_app(
    *, identity: WorkerIdentity | None = None, metrics_url: str | None = None
) -> web.Application:
    """Build the demo app. A bad metrics URL raises ValueError here, at boot."""
    who = identity if identity is not None else WorkerIdentity(slot=None, pid=os.getpid())
    url = metrics_url or os.environ.get(METRICS_URL_ENV) or DEFAULT_METRICS_URL
    app = web.Application()
    app[STATE] = DemoState(identity=who, rooms=Rooms(who), stats=StatsPanel(url))
    app.router.add_get("/", index_handler, name="index")
    app.router.add_get("/ws/chat", chat_handler, name="chat")
    app.router.add_post("/api/upload", upload_handler, name="upload")
    app.router.add_get("/api/stats", stats_handler, name="stats")
    app.router.add_get("/api/whoami", whoami_handler, name="whoami")
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=True)
    app.on_shutdown.append(close_all)
    return app

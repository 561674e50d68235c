"""The embedded demo: one page showing forkloop's WebSockets, streaming uploads, versioned
static files and its own Prometheus metrics, served by the pre-fork supervisor.

Run it with ``python -m forkloop.demo`` (``make demo``): that is ``forkloop serve
forkloop.demo:app -w 2 -b 127.0.0.1:8080 --metrics-bind 127.0.0.1:9100``. ``app`` is a factory:
every worker builds its own application (its own chat rooms) and learns its slot while
being built (see :mod:`forkloop.demo.identity`).

Imports: the demo's modules, lazily (``python -m forkloop.demo`` starts the server without
loading the web core in the launcher).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forkloop.web import Application

__all__ = ["app"]


def app() -> Application:
    """The factory ``forkloop serve forkloop.demo:app`` calls in each worker."""
    from .application import create_app
    from .identity import find_identity

    return create_app(identity=find_identity())

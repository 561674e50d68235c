"""The plaintext/JSON benchmark app, one code for aiohttp and forkloop.

``--framework aiohttp`` imports ``from aiohttp import web`` (with uvloop's event loop policy,
how aiohttp is run for speed); ``--framework forkloop`` imports ``from forkloop import web``
(uvloop by default). Everything below the import is the same code for both, which is the point:
forkloop must serve an aiohttp.web app unchanged. ``--metrics`` adds
``forkloop.metrics.setup(app)`` (issue 8) and exits with status 3 when that does not exist yet.
``--certfile``/``--keyfile`` serve HTTPS (the TLS workload). For the multi-worker workload the
module also exposes the app as attributes, built on first access: ``web_app:forkloop_app``
(``forkloop serve``) and ``web_app:aiohttp_app`` (gunicorn's aiohttp worker).

    python bench/peers/web_app.py --framework forkloop --port 8081
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
from types import ModuleType
from typing import Any

EXIT_UNSUPPORTED = 3  # mirrors common.EXIT_UNSUPPORTED; this file runs without bench/ on path

MESSAGE = "Hello, World!"
LOOP_LINE = "bench-peer event loop: "


def load_web(framework: str) -> ModuleType:
    if framework == "aiohttp":
        import uvloop
        from aiohttp import web

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        return web
    from forkloop import web as forkloop_web

    return forkloop_web


def build_app(web: Any) -> Any:
    """The app under test: ``GET /`` -> text, ``GET /json`` -> a JSON object."""

    async def plaintext(request: Any) -> Any:
        return web.Response(text=MESSAGE)

    async def json_handler(request: Any) -> Any:
        return web.json_response({"message": MESSAGE})

    async def report_loop(app: Any) -> None:
        # The harness reads this line to confirm both servers run on the same event loop.
        loop = type(asyncio.get_running_loop())
        print(f"{LOOP_LINE}{loop.__module__}.{loop.__qualname__}", flush=True)

    app = web.Application()
    app.router.add_get("/", plaintext)
    app.router.add_get("/json", json_handler)
    app.on_startup.append(report_loop)
    return app


def add_metrics(app: Any) -> None:
    try:
        import forkloop.metrics as metrics
    except ImportError as exc:
        print(f"forkloop.metrics cannot be imported: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_UNSUPPORTED) from exc
    setup = getattr(metrics, "setup", None)
    if setup is None:
        print("forkloop.metrics.setup does not exist yet (issue 8)", file=sys.stderr)
        raise SystemExit(EXIT_UNSUPPORTED)
    setup(app)


def __getattr__(name: str) -> Any:
    """``forkloop_app`` / ``aiohttp_app``: the app for a server that imports ``module:attr``."""
    if name in ("forkloop_app", "aiohttp_app"):
        app = build_app(load_web(name.removesuffix("_app")))
        globals()[name] = app
        return app
    raise AttributeError(name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=("aiohttp", "forkloop"), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--metrics", action="store_true", help="forkloop.metrics.setup(app)")
    parser.add_argument("--certfile", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--keyfile", help="the certificate's private key (PEM)")
    args = parser.parse_args(argv)
    if args.metrics and args.framework != "forkloop":
        parser.error("--metrics is a forkloop variant")
    web = load_web(args.framework)
    app = build_app(web)
    if args.metrics:
        add_metrics(app)
    context = None
    if args.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.certfile, args.keyfile)
    web.run_app(
        app, host=args.host, port=args.port, access_log=None, print=None, ssl_context=context
    )


if __name__ == "__main__":
    main()

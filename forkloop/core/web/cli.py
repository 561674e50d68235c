"""``python -m forkloop.web``: serve ``package.module:init_func`` (aiohttp.web's command line).

``init_func(argv)`` receives the arguments the command line did not consume and returns an
``Application`` or an awaitable of one. Mistakes (bad module, missing attribute, relative
module name) end with a one-line message on stderr and exit status 2.

Imports: ``run_app`` and ``app`` of ``forkloop.core.web``.
"""

from __future__ import annotations

import argparse
import errno
import inspect
import logging
import socket
import sys
from collections.abc import Awaitable, Sequence
from importlib import import_module
from typing import Any, NoReturn

from .app import Application
from .run_app import run_app

__all__: list[str] = []

PROG = "python -m forkloop.web"
# Binding failures are configuration mistakes: a one-line message, not a traceback.
_LISTEN_ERRNOS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


def _fail(message: str) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve a forkloop.web (aiohttp.web) application.",
        epilog="Arguments after entry-func that are not options above go to entry-func.",
    )
    parser.add_argument(
        "entry_func",
        metavar="entry-func",
        help="callable returning the web.Application, as 'package.module:function'",
    )
    parser.add_argument(
        "-H",
        "--hostname",
        default=None,
        help="TCP/IP hostname to serve on (default: localhost)",
    )
    parser.add_argument(
        "-P", "--port", type=int, default=8080, help="TCP/IP port to serve on (default: 8080)"
    )
    parser.add_argument(
        "-U",
        "--path",
        help="Unix socket path to serve on; with -H also serves TCP",
    )
    return parser


def load_entry_func(spec: str) -> Any:
    """Import ``module:function`` and return the function (one-line exit on any mistake)."""
    mod_str, _, func_str = spec.partition(":")
    if not mod_str or not func_str:
        _fail(f"entry-func {spec!r} is not in 'module:function' syntax")
    if mod_str.startswith("."):
        _fail(f"relative module names are not supported: {mod_str!r}")
    try:
        module = import_module(mod_str)
    except Exception as exc:  # any import-time failure gets the same one-line treatment
        _fail(f"unable to import {mod_str}: {type(exc).__name__}: {exc}")
    try:
        func = getattr(module, func_str)
    except AttributeError:
        _fail(f"module {mod_str!r} has no attribute {func_str!r}")
    if not callable(func):
        _fail(f"{spec} is not callable")
    return func


class _NotAnApp(Exception):
    """init_func's result is not an Application; raised inside run_app's loop."""


def _check_app(app: object, entry_func: str) -> Application:
    if not isinstance(app, Application):
        raise _NotAnApp(
            f"{entry_func} must return a web.Application (or an awaitable of one), "
            f"got {type(app).__name__}"
        )
    return app


async def _checked(awaitable: Awaitable[object], entry_func: str) -> Application:
    return _check_app(await awaitable, entry_func)


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args, extra_argv = parser.parse_known_args(argv)
    func = load_entry_func(args.entry_func)
    if args.path is not None and not hasattr(socket, "AF_UNIX"):
        _fail("file system paths are not supported on this platform")
    result = func(extra_argv)
    try:
        app = (
            _checked(result, args.entry_func)
            if inspect.isawaitable(result)
            else _check_app(result, args.entry_func)
        )
    except _NotAnApp as exc:
        _fail(str(exc))
    logging.basicConfig(level=logging.DEBUG)
    if args.path is not None and args.hostname is None:
        host = port = None
    else:
        host = args.hostname or "localhost"
        port = args.port
    try:
        run_app(app, host=host, port=port, path=args.path)
    except _NotAnApp as exc:
        _fail(str(exc))
    except OSError as exc:
        if exc.errno not in _LISTEN_ERRNOS:
            raise
        _fail(f"cannot listen: {exc.strerror or exc}")
    print("Stopped", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    main()

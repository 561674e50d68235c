"""``python -m forkloop.demo``: serve the demo with the supervisor, in the foreground.

Owns: the launcher's command line -- ``[-b HOST:PORT] [--metrics-bind HOST:PORT] [-w N]``,
defaulting to ``127.0.0.1:8080``, ``127.0.0.1:9100`` and 2 workers -- and the hand-over:
the launcher ``exec``s ``python -m forkloop serve forkloop.demo:app ...``, so the supervisor
*is* this process (same pid, same terminal process group). Ctrl-C reaches it directly and
its own shutdown stops the workers; nothing is left behind to forward signals to.

The app's metrics URL is derived from ``--metrics-bind`` and passed to the workers as
``FORKLOOP_DEMO_METRICS_URL`` unless that is already set.

Imports: stdlib only.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

__all__ = ["DEFAULT_BIND", "DEFAULT_METRICS_BIND", "command", "main"]

DEFAULT_BIND = "127.0.0.1:8080"
DEFAULT_METRICS_BIND = "127.0.0.1:9100"
METRICS_URL_ENV = "FORKLOOP_DEMO_METRICS_URL"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m forkloop.demo",
        description="Serve forkloop's demo page with the pre-fork supervisor.",
    )
    parser.add_argument("-b", "--bind", default=DEFAULT_BIND, help="HOST:PORT of the page")
    parser.add_argument(
        "--metrics-bind", default=DEFAULT_METRICS_BIND, help="HOST:PORT of /metrics"
    )
    parser.add_argument("-w", "--workers", type=int, default=2, help="worker processes")
    return parser


def _url_host(bind: str) -> str:
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--metrics-bind must be HOST:PORT, got {bind!r}")
    host = host or "127.0.0.1"
    if host in ("0.0.0.0", "[::]", "::"):  # a wildcard bind is scraped on loopback
        host = "127.0.0.1"
    return f"{host}:{port}"


def command(argv: Sequence[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The ``forkloop serve`` argv and environment the launcher execs."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("-w/--workers must be at least 1")
    try:
        metrics_host = _url_host(args.metrics_bind)
    except ValueError as exc:
        parser.error(str(exc))
    env = dict(os.environ)
    env.setdefault(METRICS_URL_ENV, f"http://{metrics_host}/metrics")
    argv_out = [
        sys.executable,
        "-m",
        "forkloop",
        "serve",
        "forkloop.demo:app",
        "-w",
        str(args.workers),
        "-b",
        args.bind,
        "--metrics-bind",
        args.metrics_bind,
    ]
    return argv_out, env


def main(argv: Sequence[str] | None = None) -> None:
    argv_out, env = command(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv_out[0], argv_out, env)  # noqa: S606 - our own interpreter, fixed argv


if __name__ == "__main__":
    main()

"""``python -m forkloop.demo``: serve the demo with the supervisor, in the foreground.

Owns: the launcher's command line -- ``[-b HOST:PORT] [--metrics-bind HOST:PORT] [-w N]``,
defaulting to ``127.0.0.1:8080``, ``127.0.0.1:9100`` and 2 workers -- and the hand-over:
the launcher ``exec``s ``python -m forkloop serve forkloop.demo:app ...``, so the supervisor
*is* this process (same pid, same terminal process group). Ctrl-C reaches it directly and
its own shutdown stops the workers; nothing is left behind to forward signals to.

The app's metrics URL is derived from ``--metrics-bind`` and passed to the workers as
``FORKLOOP_DEMO_METRICS_URL`` unless that is already set. Before the hand-over the launcher
checks that the metrics port can be bound (9100 is also node_exporter's port): a taken port
gets one line and exit status 1 here rather than a traceback from the metrics server.

Imports: stdlib only.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence

__all__ = [
    "DEFAULT_BIND",
    "DEFAULT_METRICS_BIND",
    "METRICS_URL_ENV",
    "check_bindable",
    "command",
    "main",
]

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


def check_bindable(bind: str, what: str) -> str | None:
    """None if ``bind`` (HOST:PORT) can be listened on now, else a one-line reason."""
    host, _, port = bind.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"  # what an empty host means to a server
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        return f"cannot resolve {what} address {bind!r}: {exc}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            return f"cannot bind {what} {bind}: {exc.strerror or exc}"
    return None


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
    problem = check_bindable(argv_out[-1], "--metrics-bind")
    if problem is not None:
        print(f"forkloop.demo: error: {problem}", file=sys.stderr)
        raise SystemExit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv_out[0], argv_out, env)  # noqa: S606 - our own interpreter, fixed argv


if __name__ == "__main__":
    main()

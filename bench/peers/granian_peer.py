"""Start granian on one of the raw peer apps, or exit 3 ("unsupported") when it is not installed.

The harness treats exit status 3 as "this peer does not exist here" and reports a skip with
the reason instead of a failure. Otherwise this process *becomes* granian (``os.execv``), so
the PID the harness started (and pinned, and stops) is granian's own.

    python bench/peers/granian_peer.py --interface rsgi --port 8081 [--workers 2]
        [--certfile C --keyfile K]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

EXIT_UNSUPPORTED = 3  # mirrors common.EXIT_UNSUPPORTED; this file runs without bench/ on path
PEERS_DIR = Path(__file__).resolve().parent
APPS = {"rsgi": "rsgi_app:app", "asgi": "asgi_app:app"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interface", choices=sorted(APPS), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("granian") is None:
        print("granian is not installed (pip install granian, the bench extra)", file=sys.stderr)
        raise SystemExit(EXIT_UNSUPPORTED)
    command = [
        sys.executable, "-m", "granian", "--interface", args.interface,
        "--host", args.host, "--port", str(args.port),
        "--workers", str(args.workers), "--runtime-threads", "1",
        "--loop", "uvloop", "--http", "1", "--no-ws", "--no-access-log", "--log-level", "warning",
        "--working-dir", str(PEERS_DIR),
    ]  # fmt: skip
    if args.certfile:
        command += ["--ssl-certificate", args.certfile, "--ssl-keyfile", args.keyfile]
    os.execv(sys.executable, [*command, APPS[args.interface]])


if __name__ == "__main__":
    main()

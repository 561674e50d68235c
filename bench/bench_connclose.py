"""Connection-per-request: every request on a new TCP connection (``Connection: close``).

forkloop vs aiohttp, uvicorn and granian (RSGI and ASGI), each one process pinned to CPU 0;
wrk pinned to CPU 1 sends ``GET /`` with ``Connection: close``, so the server closes after each
response and wrk opens a new connection for the next: accept, parse, respond, close, per request.
Interleaved rounds; medians; req/s and server CPU µs per request, each as a ratio to aiohttp.

    python bench/bench_connclose.py [--quick]
    python bench/run.py --extras connclose      # inside the full harness
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads
from common import HOST, run_wrk

CONNECTIONS = 16  # few: each costs a handshake per request, and TIME_WAIT sockets pile up


def measure(quick: bool = False) -> dict[str, Any]:
    duration, rounds = workloads.settings(quick)
    # A smoke run: few connections, so that each sees requests within its second.
    connections = 4 if quick else CONNECTIONS
    server_cpu, client_cpu = workloads.cpus()
    with tempfile.TemporaryDirectory(prefix="bench-connclose-") as tmp:
        wrk = workloads.wrk_config(client_cpu, connections, Path(tmp))
        with workloads.Peers(workloads.HTTP_PEERS, server_cpu) as peers:
            runs = workloads.interleaved(
                peers,
                rounds,
                lambda key, server: run_wrk(
                    wrk, f"http://{HOST}:{server.port}/", duration, ["Connection: close"]
                ),
                case="conn-close",
                warmup=not quick,
            )
            status = peers.status
    summary = workloads.summarize(runs)
    title = f"Connection-per-request (wrk -c{connections}, Connection: close, GET /)"
    return {
        "title": title,
        "benchmark": "connection-per-request",
        **workloads.rows_and_chart(title, summary),
        "summary": summary,
        "peers": status,
        "runs": runs,
        "settings": {"duration_s": duration, "rounds": rounds, "connections": connections},
    }


def main(argv: list[str] | None = None) -> None:
    workloads.run_cli(measure, __doc__, argv)


if __name__ == "__main__":
    main()

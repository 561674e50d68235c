"""TLS keep-alive: HTTPS with one self-signed certificate made at run time, shared by every server.

forkloop (``ssl_context=`` of ``web.run_app``) vs aiohttp (the same), uvicorn
(``--ssl-certfile``) and granian RSGI/ASGI (``--ssl-certificate``), one process each pinned to
CPU 0; wrk pinned to CPU 1 over 64 keep-alive HTTPS connections (``GET /``). The certificate is
an EC P-256 key made with openssl in a temporary directory, so the cipher work is the same for
all. Interleaved rounds; medians; req/s and server CPU µs per request, as ratios to aiohttp.

    python bench/bench_tls.py [--quick]
    python bench/run.py --extras tls
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads
from common import HOST, make_certificate, run_wrk

CONNECTIONS = 64


def measure(quick: bool = False) -> dict[str, Any]:
    duration, rounds = workloads.settings(quick)
    # A smoke run: few connections, so that each sees requests within its second.
    connections = 4 if quick else CONNECTIONS
    server_cpu, client_cpu = workloads.cpus()
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        cert, key = make_certificate(Path(tmp))
        wrk = workloads.wrk_config(client_cpu, connections, Path(tmp))
        peers = workloads.Peers(
            workloads.HTTP_PEERS,
            server_cpu,
            extra_args=lambda peer: workloads.tls_args(peer, cert, key),
            tls=True,
        )
        with peers:
            runs = workloads.interleaved(
                peers,
                rounds,
                lambda peer, server: run_wrk(wrk, f"https://{HOST}:{server.port}/", duration),
                case="tls keep-alive",
                warmup=not quick,
            )
    summary = workloads.summarize(runs)
    title = f"TLS keep-alive (wrk -c{connections} over HTTPS, EC P-256 self-signed, GET /)"
    return {
        "title": title,
        "benchmark": "tls",
        **workloads.rows_and_chart(title, summary),
        "summary": summary,
        "peers": peers.status,
        "runs": runs,
        "settings": {"duration_s": duration, "rounds": rounds, "connections": connections},
    }


def main(argv: list[str] | None = None) -> None:
    workloads.run_cli(measure, __doc__, argv)


if __name__ == "__main__":
    main()

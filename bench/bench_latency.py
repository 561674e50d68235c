"""Latency at a fixed offered rate: p50/p99/p99.9 at 50 % and 90 % of aiohttp's maximum.

forkloop vs aiohttp, uvicorn and granian RSGI, one process each pinned to CPU 0. First wrk
(pinned to CPU 1, 64 connections) measures aiohttp's maximum req/s on ``GET /``; then a bounded
open-loop client (bench/loadgen.py ``open``, wrk2-style: each request has a due time and its
latency counts from then, so no coordinated omission; Debian has no wrk2) offers 50 % and
90 % of that rate to every server over 64 keep-alive connections, in interleaved rounds.
Reported: p50/p99/p99.9 latency, the rate achieved, server CPU µs per request, and p99 against
aiohttp's. The client says how far behind its own schedule it fell (``client lag``): when that
is more than a few milliseconds the client, not the server, set the pace.

    python bench/bench_latency.py [--quick]
    python bench/run.py --extras latency
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads
from common import HOST, BenchError, ServerProcess, run_wrk

PEERS = ("forkloop", "aiohttp", "uvicorn", "granian-rsgi")
FRACTIONS = (0.5, 0.9)
CONNECTIONS = 64


def _open_loop(client_cpu: int | None, rate: float, duration: int) -> Any:
    def load(key: str, server: ServerProcess) -> dict[str, Any]:
        args = ["open", "--port", str(server.port), "--rate", f"{rate:.0f}"]
        args += ["--connections", str(CONNECTIONS), "--duration", str(duration)]
        return workloads.run_loadgen(client_cpu, args, timeout_s=duration + 60)

    return load


def measure(quick: bool = False) -> dict[str, Any]:
    duration, rounds = workloads.settings(quick, full_duration=10, full_rounds=3)
    server_cpu, client_cpu = workloads.cpus()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        wrk = workloads.wrk_config(client_cpu, CONNECTIONS, Path(tmp))
        with workloads.Peers(PEERS, server_cpu) as peers:
            base = peers.servers.get("aiohttp")
            if base is None:
                raise BenchError(f"aiohttp did not start: {peers.status.get('aiohttp')}")
            url = f"http://{HOST}:{base.port}/"
            maxima = [run_wrk(wrk, url, max(duration, 2)).rps for _ in range(rounds)]
            aiohttp_max = statistics.median(maxima)
            for fraction in FRACTIONS:
                rate = fraction * aiohttp_max
                case = f"{fraction:.0%} of aiohttp max"
                runs += workloads.interleaved(
                    peers,
                    rounds,
                    _open_loop(client_cpu, rate, duration),
                    case=case,
                    warmup=not quick and fraction == FRACTIONS[0],
                )
            status = peers.status
    fields = ("rps", "cpu_us_per_req", "p50_ms", "p99_ms", "p999_ms", "client_worst_lag_ms")
    summary = workloads.summarize(runs, fields)
    for by_peer in summary.values():
        base_p99 = by_peer.get("aiohttp", {}).get("p99_ms")
        for row in by_peer.values():
            p99 = row.get("p99_ms")
            row["p99_vs_aiohttp"] = p99 / base_p99 if p99 and base_p99 else None
    title = (
        f"Latency at a fixed offered rate (open loop, {CONNECTIONS} connections; aiohttp max "
        f"{aiohttp_max:,.0f} req/s)"
    )
    shaped = workloads.rows_and_chart(
        title,
        summary,
        columns=(
            ("p50_ms", "p50 ms"),
            ("p99_ms", "p99 ms"),
            ("p999_ms", "p99.9 ms"),
            ("p99_vs_aiohttp", "p99 vs aiohttp"),
            ("rps", "req/s achieved"),
            ("cpu_us_per_req", "server CPU µs/req"),
            ("cpu_ratio_to_aiohttp", "vs aiohttp by CPU"),
            ("client_worst_lag_ms", "client lag ms"),
        ),
        panels=(
            ("p99_ms", "p99 latency", "ms", True),
            ("p999_ms", "p99.9 latency", "ms", True),
        ),
    )
    return {
        "title": title,
        "benchmark": "latency at fixed rate",
        **shaped,
        "aiohttp_max_rps": aiohttp_max,
        "aiohttp_max_rounds": maxima,
        "summary": summary,
        "peers": status,
        "runs": runs,
        "settings": {"duration_s": duration, "rounds": rounds, "connections": CONNECTIONS},
    }


def main(argv: list[str] | None = None) -> None:
    workloads.run_cli(measure, __doc__, argv)


if __name__ == "__main__":
    main()

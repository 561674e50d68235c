"""1,000 connections, a few active and the rest idle: tail latency and memory per connection.

forkloop vs aiohttp, uvicorn and granian RSGI, one process each pinned to CPU 0. The client
(bench/loadgen.py ``mix``, pinned to CPU 1) opens 1,000 keep-alive connections, sends one
request on each (so each is fully set up in the server), then keeps 50 of them busy with
back-to-back ``GET /`` while 950 stay idle. Reported per server: p50/p99 latency of the active
requests, req/s, server CPU µs per request, and RSS per connection ((RSS at the peak of the run
- RSS before) / 1,000, in KiB), each against aiohttp. uvicorn gets ``--timeout-keep-alive 120``
so it keeps the idle connections as the others do; ``idle closed`` counts any the server shut.

    python bench/bench_idle_mix.py [--quick]
    python bench/run.py --extras idle_mix
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads
from common import ServerProcess

CONNECTIONS = 1000
ACTIVE = 50
PEERS = ("forkloop", "aiohttp", "uvicorn", "granian-rsgi")


def _extra(key: str) -> list[str]:
    return ["--timeout-keep-alive", "120"] if key == "uvicorn" else []


def _mix(client_cpu: int | None, duration: int, connections: int) -> Any:
    def load(key: str, server: ServerProcess) -> dict[str, Any]:
        before = server.rss_mib()
        peak = [before]
        stop = threading.Event()

        def sample() -> None:  # the server's RSS while the connections are open
            while not stop.wait(0.1):
                peak[0] = max(peak[0], server.rss_mib())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            args = ["mix", "--port", str(server.port), "--connections", str(connections)]
            args += ["--active", str(ACTIVE), "--duration", str(duration)]
            result = workloads.run_loadgen(client_cpu, args, timeout_s=duration + 90)
        finally:
            stop.set()
            sampler.join()
        result["rss_before_mib"] = before
        result["rss_peak_mib"] = peak[0]
        result["rss_kib_per_connection"] = (peak[0] - before) * 1024 / connections
        return result

    return load


def measure(quick: bool = False) -> dict[str, Any]:
    duration, rounds = workloads.settings(quick, full_duration=5, full_rounds=3)
    connections = 200 if quick else CONNECTIONS
    server_cpu, client_cpu = workloads.cpus()
    # A fresh set of servers per round: RSS per connection is read from a process that has not
    # yet held a thousand connections (allocators keep freed memory).
    runs: list[dict[str, Any]] = []
    status: dict[str, dict[str, str]] = {}
    for round_no in range(1, rounds + 1):
        with workloads.Peers(PEERS, server_cpu, extra_args=_extra) as peers:
            for one in workloads.interleaved(
                peers, 1, _mix(client_cpu, duration, connections), case=f"{connections} conns"
            ):
                one["round"] = round_no
                runs.append(one)
            status = peers.status
    fields = ("rps", "cpu_us_per_req", "p50_ms", "p99_ms", "rss_kib_per_connection")
    summary = workloads.summarize(runs, fields)
    for by_peer in summary.values():
        base = by_peer.get("aiohttp", {})
        for peer, row in by_peer.items():
            for field in ("p99_ms", "rss_kib_per_connection"):
                mine, theirs = row.get(field), base.get(field)
                row[f"{field}_vs_aiohttp"] = mine / theirs if mine and theirs else None
            row["idle_closed_by_server"] = max(
                (r["idle_closed_by_server"] for r in runs if r["peer"] == peer), default=0
            )
    title = (
        f"{connections} connections ({ACTIVE} active, {connections - ACTIVE} idle): "
        "p99 latency and RSS per connection"
    )
    shaped = workloads.rows_and_chart(
        title,
        summary,
        columns=(
            ("p50_ms", "p50 ms"),
            ("p99_ms", "p99 ms"),
            ("p99_ms_vs_aiohttp", "p99 vs aiohttp"),
            ("rss_kib_per_connection", "RSS KiB/conn"),
            ("rss_kib_per_connection_vs_aiohttp", "RSS/conn vs aiohttp"),
            ("rps", "req/s"),
            ("cpu_us_per_req", "server CPU µs/req"),
            ("cpu_ratio_to_aiohttp", "vs aiohttp by CPU"),
            ("idle_closed_by_server", "idle closed"),
        ),
        panels=(
            ("p99_ms", "p99 latency of the active requests", "ms", True),
            ("rss_kib_per_connection", "RSS per connection", "KiB", True),
            ("cpu_us_per_req", "server CPU per request", "µs", True),
        ),
    )
    return {
        "title": title,
        "benchmark": "idle+active mix",
        **shaped,
        "summary": summary,
        "peers": status,
        "runs": runs,
        "settings": {
            "duration_s": duration,
            "rounds": rounds,
            "connections": connections,
            "active": ACTIVE,
        },
    }


def main(argv: list[str] | None = None) -> None:
    workloads.run_cli(measure, __doc__, argv)


if __name__ == "__main__":
    main()

"""Overload: an open-loop client offering 3x the server's capacity, with and without protection.

The app (``bench/peers/overload_app.py``) answers ``GET /work`` after holding one of 2
downstream slots for 2 ms (an ``await asyncio.sleep`` under a semaphore, as a connection pool
to a database would), so capacity is about 2 / 2 ms = 1,000 req/s on any machine where the
server's own CPU per request is well below 1 ms, the same for every server. A CPU-bound
handler would not do: it runs to completion in one step, so there is never more than one
request in flight, and the overload queues in the kernel's socket buffers, before any server
reads it (only a proxy's ``X-Request-Start`` can measure that wait; see docs/supervisor.md).

Steps, every server pinned to CPU 0 and the client (bench/loadgen.py) to CPU 1, one process
each: capacity, closed loop (16 connections back to back on ``/work`` against forkloop without
protection); unloaded latency, open loop at 20 % of capacity; then the overload, open loop at
3x capacity for 20 s (wrk2-style: latency counted from each request's due time; a 503 with
``Connection: close`` costs the client a new connection). Servers: forkloop with
``--max-concurrency 4`` (twice the downstream's slots: capacity is kept, an admitted request
waits at most one turn), forkloop without protection, aiohttp (no protection exists), uvicorn
``--limit-concurrency 4`` (which counts open connections as well as tasks, so idle keep-alive
connections use up its budget). Reported per server: unloaded p99; admitted p99 and its
ratio to the unloaded p99 (the aim: within 3x); the 503s' p99 from their due time and from
the moment they were sent (the aim: under 5 ms); the shed fraction; the admitted rate; p99 of
the last window of the run against the first (how p99 grows without protection); requests
left unanswered when the client gave up; server CPU per request, and the share of the server's
CPU other processes took (above about 10 % the machine was not quiet: provisional figures).

    python bench/bench_overload.py [--quick]
    python bench/run.py --extras overload
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads
from common import (
    HOST,
    PEERS_DIR,
    BenchError,
    ServerExitedError,
    ServerProcess,
    free_port,
    pinned,
)

PY = sys.executable
APP = str(PEERS_DIR / "overload_app.py")
PATH = "/work"
# --max-concurrency / --limit-concurrency: twice the app's downstream slots, so a slot freed is
# taken at once by a request already admitted (capacity kept), which waits at most one 2 ms turn.
LIMIT = 4
OVERLOAD = 3.0  # offered load, times capacity
UNLOADED = 0.2
CLIENT_CONNECTIONS = 256  # the most the open-loop client keeps open at once
CAPACITY_CONNECTIONS = 16


def _forkloop(*extra: str) -> Any:
    return lambda port: [
        PY,
        APP,
        "--framework",
        "forkloop",
        "--host",
        HOST,
        "--port",
        str(port),
        *extra,
    ]


def _aiohttp(port: int) -> list[str]:
    return [PY, APP, "--framework", "aiohttp", "--host", HOST, "--port", str(port)]


def _uvicorn(port: int) -> list[str]:
    return [
        PY, "-m", "uvicorn", "overload_app:asgi", "--app-dir", str(PEERS_DIR),
        "--host", HOST, "--port", str(port), "--http", "httptools", "--loop", "uvloop",
        "--no-access-log", "--lifespan", "off", "--log-level", "warning",
        "--limit-concurrency", str(LIMIT),
    ]  # fmt: skip


SERVERS = {
    "forkloop-protected": (
        f"forkloop --max-concurrency {LIMIT}",
        _forkloop("--max-concurrency", str(LIMIT)),
    ),
    "forkloop": ("forkloop (no protection)", _forkloop()),
    "aiohttp": ("aiohttp + uvloop (no protection)", _aiohttp),
    "uvicorn-limited": (f"uvicorn --limit-concurrency {LIMIT}", _uvicorn),
}


def _pinned(cpu: int | None, command: Callable[[int], list[str]], port: int) -> list[str]:
    return pinned(cpu, command(port))


def _start(cpu: int | None) -> tuple[dict[str, ServerProcess], dict[str, dict[str, str]]]:
    servers: dict[str, ServerProcess] = {}
    status: dict[str, dict[str, str]] = {}
    for key, (_, command) in SERVERS.items():
        port = free_port()
        pinned_command = functools.partial(_pinned, cpu, command)
        server = ServerProcess(key, pinned_command(port), port, command=pinned_command)
        server.start()
        servers[key] = server
    for key, server in list(servers.items()):
        try:
            server.wait_ready(timeout_s=60)
            workloads.check_plaintext(server)
        except (ServerExitedError, BenchError, OSError) as exc:
            servers.pop(key).stop()
            status[key] = {"status": "failed", "reason": str(exc).splitlines()[0]}
        else:
            status[key] = {"status": "ok"}
    return servers, status


def _open(cpu: int | None, server: ServerProcess, rate: float, duration: float) -> dict[str, Any]:
    args = ["overload", "--port", str(server.port), "--path", PATH, "--rate", f"{rate:.0f}"]
    args += ["--connections", str(CLIENT_CONNECTIONS), "--duration", f"{duration:g}"]
    args += ["--window", f"{max(duration / 4, 0.25):g}", "--drain", "5"]
    return workloads.run_loadgen(cpu, args, timeout_s=duration + 60)


def _capacity(cpu: int | None, server: ServerProcess, duration: float) -> float:
    args = ["mix", "--port", str(server.port), "--path", PATH, "--duration", f"{duration:g}"]
    args += ["--connections", str(CAPACITY_CONNECTIONS), "--active", str(CAPACITY_CONNECTIONS)]
    result = workloads.run_loadgen(cpu, args, timeout_s=duration + 60)
    if result.get("non_2xx") or not result.get("rps"):
        raise BenchError(f"capacity run on {server.name} failed: {result}")
    return float(result["rps"])


def _row(unloaded: dict[str, Any], loaded: dict[str, Any]) -> dict[str, Any]:
    base = unloaded.get("p99_ms")
    p99 = loaded.get("p99_ms")
    windows = [w for w in loaded.get("ok_p99_by_window_ms", []) if w is not None]
    return {
        "unloaded_p99_ms": base,
        "admitted_p99_ms": p99,
        "admitted_p99_vs_unloaded": p99 / base if p99 and base else None,
        "shed_p99_ms": loaded.get("shed_p99_ms"),
        "shed_wire_p99_ms": loaded.get("shed_wire_p99_ms"),
        "shed_fraction": loaded.get("shed_fraction"),
        "admitted_rps": loaded.get("ok_rps"),
        "first_window_p99_ms": windows[0] if windows else None,
        "last_window_p99_ms": windows[-1] if windows else None,
        "all_p99_ms": loaded.get("all_p99_ms"),
        "unanswered": loaded.get("unanswered"),
        "errors": loaded.get("errors"),
        "client_worst_lag_ms": loaded.get("client_worst_lag_ms"),
        "cpu_us_per_req": loaded.get("cpu_us_per_req"),
        # How much of the server's CPU other processes took: above ~10 % the row is provisional.
        "others_on_server_cpu": loaded.get("others_on_server_cpu"),
    }


COLUMNS = (
    ("unloaded_p99_ms", "unloaded p99 ms"),
    ("admitted_p99_ms", "admitted p99 ms"),
    ("admitted_p99_vs_unloaded", "admitted p99 / unloaded"),
    ("shed_p99_ms", "503 p99 ms (from due)"),
    ("shed_wire_p99_ms", "503 p99 ms (from send)"),
    ("shed_fraction", "shed fraction"),
    ("admitted_rps", "admitted req/s"),
    ("first_window_p99_ms", "first window p99 ms"),
    ("last_window_p99_ms", "last window p99 ms"),
    ("all_p99_ms", "p99 of all offered ms"),
    ("unanswered", "unanswered"),
    ("client_worst_lag_ms", "client lag ms"),
    ("cpu_us_per_req", "server CPU µs/req"),
    ("others_on_server_cpu", "others on server CPU"),
)


def measure(quick: bool = False) -> dict[str, Any]:
    duration = 1.0 if quick else 20.0
    short = 0.5 if quick else 5.0
    server_cpu, client_cpu = workloads.cpus()
    servers, status = _start(server_cpu)
    rows: dict[str, dict[str, Any]] = {}
    try:
        reference = servers.get("forkloop")
        if reference is None:
            raise BenchError(f"forkloop did not start: {status.get('forkloop')}")
        _capacity(client_cpu, reference, short / 2)  # warm-up
        capacity = _capacity(client_cpu, reference, short)
        rate = OVERLOAD * capacity
        for key, server in list(servers.items()):
            try:
                unloaded = _open(client_cpu, server, UNLOADED * capacity, short)
                loaded = workloads.measured(
                    server, lambda s=server: _open(client_cpu, s, rate, duration), server_cpu
                )
            except BenchError as exc:
                servers.pop(key).stop()
                status[key] = {"status": "failed", "reason": str(exc).splitlines()[0]}
                continue
            rows[key] = {**_row(unloaded, loaded), "unloaded": unloaded, "overloaded": loaded}
            print(
                f"  {key:20} admitted p99 {rows[key]['admitted_p99_ms'] or 0:8.2f} ms  "
                f"503 p99 {rows[key]['shed_p99_ms'] or 0:6.2f} ms  "
                f"shed {rows[key]['shed_fraction'] or 0:.0%}",
                file=sys.stderr,
                flush=True,
            )
    finally:
        for server in servers.values():
            server.stop()
    title = (
        f"Overload: {OVERLOAD:g}x capacity ({capacity:,.0f} req/s closed loop) offered open loop "
        f"for {duration:g} s on GET {PATH} (2 downstream slots x 2 ms)"
    )
    table = []
    for key, row in rows.items():
        line: dict[str, Any] = {"case": f"{OVERLOAD:g}x capacity", "server": SERVERS[key][0]}
        for field, name in COLUMNS:
            value = row.get(field)
            line[name] = "n/a" if value is None else value
        table.append(line)
    chart = {
        "title": title,
        "panels": [
            {
                "title": name,
                "unit": unit,
                "lower_is_better": True,
                "groups": {
                    f"{OVERLOAD:g}x capacity": {
                        key: row[field] for key, row in rows.items() if row.get(field) is not None
                    }
                },
            }
            for field, name, unit in (
                ("admitted_p99_ms", "admitted p99 latency", "ms"),
                ("shed_p99_ms", "503 p99 latency", "ms"),
                ("last_window_p99_ms", "p99 in the last window", "ms"),
            )
        ],
    }
    return {
        "title": title,
        "benchmark": "overload",
        "rows": table,
        "chart": chart,
        "capacity_rps": capacity,
        "offered_rps": rate,
        "summary": rows,
        "peers": status,
        "settings": {
            "duration_s": duration,
            "limit": LIMIT,
            "overload": OVERLOAD,
            "client_connections": CLIENT_CONNECTIONS,
        },
    }


def main(argv: list[str] | None = None) -> None:
    workloads.run_cli(measure, __doc__, argv)


if __name__ == "__main__":
    main()

"""What the workload benchmarks of issue 17 share: peers started by key, interleaved wrk rounds,
medians, ratios to aiohttp and server CPU per request, the rows and chart of a result.

Each ``bench/bench_<workload>.py`` (connection-per-request, TLS, the 1,000-connection mix,
fixed-rate latency, multi-worker, WebSocket syscalls) builds on these so that every workload
reports the same figures the same way as ``bench/run.py``: servers pinned to one CPU, the load
to the other, rounds interleaved (A B C, A B C, ...), medians over rounds, ratios to aiohttp by
throughput and by server CPU per request. A peer whose tool is missing (granian) is reported as
skipped with the reason. Loopback only; every process started is stopped by its PID.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import run  # noqa: E402 - bench/ on sys.path first
from common import (  # noqa: E402
    EXIT_UNSUPPORTED,
    BenchError,
    ServerExitedError,
    ServerProcess,
    WrkConfig,
    WrkResult,
    cpu_busy_seconds,
    find_wrk,
    free_port,
    http_get,
    pinned,
    write_lua_script,
)

PY = sys.executable
BASELINE = "aiohttp"
# The single-process HTTP peers a workload may choose from (keys of run.PEERS).
HTTP_PEERS = ("forkloop", "aiohttp", "uvicorn", "granian-rsgi", "granian-asgi")
LOADGEN = str(BENCH_DIR / "loadgen.py")


def cpus() -> tuple[int | None, int | None]:
    """(server CPU, client CPU): the first two CPUs we may use, or (None, None) on one CPU."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None, None
    return allowed[0], allowed[1]


def label(key: str) -> str:
    peer = run.PEERS.get(key)
    return peer.label if peer is not None else key


def tls_args(key: str, cert: Path, key_file: Path) -> list[str]:
    """The options that make peer ``key`` serve HTTPS with this certificate."""
    if key.startswith("uvicorn"):
        return ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key_file)]
    if key.startswith(("forkloop", "aiohttp", "granian")):
        return ["--certfile", str(cert), "--keyfile", str(key_file)]
    raise BenchError(f"peer {key} has no TLS variant")


@dataclass
class Peers:
    """Peers of one workload, started side by side (pinned), stopped by PID at exit."""

    keys: Sequence[str]
    cpu: int | None
    extra_args: Callable[[str], list[str]] = lambda key: []
    tls: bool = False
    servers: dict[str, ServerProcess] = field(default_factory=dict)
    status: dict[str, dict[str, str]] = field(default_factory=dict)

    def __enter__(self) -> Peers:
        try:
            return self._start()
        except BaseException:
            self.__exit__()
            raise

    def _start(self) -> Peers:
        for key in self.keys:
            port = free_port()
            command = functools.partial(self._command, key)
            server = ServerProcess(key, command(port), port, tls=self.tls, command=command)
            server.start()
            self.servers[key] = server
        for key, server in list(self.servers.items()):
            try:
                server.wait_ready(timeout_s=60)
                check_plaintext(server)
            except ServerExitedError as exc:
                self.servers.pop(key).stop()
                last = exc.output.splitlines()[-1] if exc.output else f"exit {exc.returncode}"
                state = "skipped" if exc.returncode == EXIT_UNSUPPORTED else "failed"
                self.status[key] = {"status": state, "reason": last}
            except (BenchError, OSError) as exc:
                self.servers.pop(key).stop()
                self.status[key] = {"status": "failed", "reason": str(exc).splitlines()[0]}
            else:
                self.status[key] = {"status": "ok"}
        return self

    def _command(self, key: str, port: int) -> list[str]:
        return pinned(self.cpu, [*run.PEERS[key].command(port), *self.extra_args(key)])

    def __exit__(self, *exc: object) -> None:
        for server in self.servers.values():
            server.stop()


def check_plaintext(server: ServerProcess) -> None:
    """The peer answers ``GET /`` with the plaintext body, or BenchError."""
    status, _, body = http_get(server.port, "/", timeout_s=5, tls=server.tls)
    if status != 200 or body != b"Hello, World!":
        raise BenchError(f"{server.name}: wrong answer to GET /: {status} {body[:60]!r}")


def wrk_config(client_cpu: int | None, connections: int, workdir: Path) -> WrkConfig:
    return WrkConfig(
        wrk=find_wrk(install=False),
        lua_script=write_lua_script(workdir),
        connections=connections,
        cpu=client_cpu,
    )


def measured(
    server: ServerProcess,
    load: Callable[[], WrkResult | dict[str, Any]],
    cpu: int | None = None,
) -> dict[str, Any]:
    """Run ``load`` against ``server``; its figures plus server CPU per request and RSS, and,
    when the server is pinned to ``cpu``, the share of that CPU other processes took."""
    busy_before = cpu_busy_seconds(cpu) if cpu is not None else None
    before = server.cpu_seconds()
    result = load()
    cpu_s = server.cpu_seconds() - before  # BenchError if it exited during the load
    data = result.as_dict() if isinstance(result, WrkResult) else dict(result)
    requests = int(data.get("requests", 0))
    data["server_cpu_s"] = cpu_s
    data["cpu_us_per_req"] = cpu_s / requests * 1e6 if requests else math.nan
    data["server_rss_mib"] = server.rss_mib()
    if cpu is not None and busy_before is not None:
        data["others_on_server_cpu"] = run.others_share(busy_before, cpu_busy_seconds(cpu), cpu_s)
    return data


def interleaved(
    peers: Peers,
    rounds: int,
    load: Callable[[str, ServerProcess], WrkResult | dict[str, Any]],
    case: str = "",
    warmup: bool = False,
) -> list[dict[str, Any]]:
    """``rounds`` x every running peer in turn (A B C, A B C); one dict per run.

    ``warmup`` first runs the load once against every peer and discards it (as run.py's
    warm-up). A peer whose load fails is stopped, marked failed and left out of later rounds.
    """
    runs: list[dict[str, Any]] = []
    for key, server in list(peers.servers.items()) if warmup else ():
        try:
            load(key, server)
        except BenchError as exc:
            peers.servers.pop(key).stop()
            peers.status[key] = {"status": "failed", "reason": str(exc).splitlines()[0]}
    for round_no in range(1, rounds + 1):
        for key, server in list(peers.servers.items()):
            try:
                data = measured(server, functools.partial(load, key, server), peers.cpu)
            except BenchError as exc:
                peers.servers.pop(key).stop()
                peers.status[key] = {"status": "failed", "reason": str(exc).splitlines()[0]}
                continue
            data.update(round=round_no, peer=key, case=case)
            runs.append(data)
            print(
                f"  round {round_no}/{rounds} {case:14} {key:13} "
                f"{data.get('rps', math.nan):>10,.0f} req/s  "
                f"{data['cpu_us_per_req']:.1f} µs CPU/req",
                file=sys.stderr,
                flush=True,
            )
    return runs


def _median(values: Iterable[Any]) -> float | None:
    clean = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return statistics.median(clean) if clean else None


def summarize(
    runs: Sequence[Mapping[str, Any]], fields: Sequence[str] = ("rps", "cpu_us_per_req")
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per case and peer: the median of each field over rounds, errors, and the ratios to
    aiohttp (``ratio_to_aiohttp`` by req/s, ``cpu_ratio_to_aiohttp`` = aiohttp µs / this µs)."""
    grouped: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for one in runs:
        grouped.setdefault(str(one["case"]), {}).setdefault(str(one["peer"]), []).append(one)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for case, by_peer in grouped.items():
        rows: dict[str, dict[str, Any]] = {}
        for peer, peer_runs in by_peer.items():
            row: dict[str, Any] = {f: _median(r.get(f) for r in peer_runs) for f in fields}
            # How much of the server's CPU other processes took (median): above ~10 % the
            # machine was not quiet and the figures are provisional.
            row["others_on_server_cpu"] = _median(r.get("others_on_server_cpu") for r in peer_runs)
            row["rounds"] = len(peer_runs)
            row["errors"] = sum(int(r.get("errors", 0)) for r in peer_runs)
            row["non_2xx"] = sum(int(r.get("non_2xx", 0)) for r in peer_runs)
            row["rss_mib_max"] = _median([max(float(r["server_rss_mib"]) for r in peer_runs)])
            rows[peer] = row
        base = rows.get(BASELINE, {})
        for row in rows.values():
            rps, base_rps = row.get("rps"), base.get("rps")
            cpu, base_cpu = row.get("cpu_us_per_req"), base.get("cpu_us_per_req")
            row["ratio_to_aiohttp"] = rps / base_rps if rps and base_rps else None
            row["cpu_ratio_to_aiohttp"] = base_cpu / cpu if cpu and base_cpu else None
        out[case] = rows
    return out


def rows_and_chart(
    title: str,
    summary: Mapping[str, Mapping[str, Mapping[str, Any]]],
    columns: Sequence[tuple[str, str]] = (
        ("rps", "req/s (median)"),
        ("ratio_to_aiohttp", "vs aiohttp"),
        ("cpu_us_per_req", "server CPU µs/req"),
        ("cpu_ratio_to_aiohttp", "vs aiohttp by CPU"),
    ),
    panels: Sequence[tuple[str, str, str, bool]] = (
        ("rps", "requests per second", "req/s", False),
        ("cpu_us_per_req", "server CPU per request", "µs", True),
    ),
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``rows`` (one per case and peer) and ``chart`` entries of a result for run.py."""
    rows = []
    for case, by_peer in summary.items():
        for peer, row in by_peer.items():
            shown = labels.get(peer, peer) if labels is not None else label(peer)
            line: dict[str, Any] = {"case": case, "server": shown}
            for key, name in columns:
                value = row.get(key)
                line[name] = "n/a" if value is None else value
            line["errors"] = row.get("errors", 0) + row.get("non_2xx", 0)
            others = row.get("others_on_server_cpu")
            if others is not None:
                line["others on server CPU"] = f"{others:.0%}"
            rows.append(line)
    chart = {
        "title": title,
        "panels": [
            {
                "title": name,
                "unit": unit,
                "lower_is_better": lower,
                "groups": {
                    case: {p: r[key] for p, r in by_peer.items() if r.get(key) is not None}
                    for case, by_peer in summary.items()
                },
            }
            for key, name, unit, lower in panels
        ],
    }
    return {"rows": rows, "chart": chart}


def run_loadgen(cpu: int | None, args: Sequence[str], timeout_s: float) -> dict[str, Any]:
    """Run bench/loadgen.py (pinned to ``cpu``) and return the JSON it prints last."""
    argv = pinned(cpu, [PY, LOADGEN, *args])
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"loadgen did not finish within {timeout_s:g} s") from exc
    if done.returncode != 0 or not done.stdout.strip():
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()[-2:]
        raise BenchError(f"loadgen exited with {done.returncode}: {' / '.join(said)}")
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return data


def settings(quick: bool, full_duration: int = 5, full_rounds: int = 3) -> tuple[int, int]:
    """(seconds per run, rounds): tiny under ``--quick`` (a smoke run), else the full values."""
    return (1, 1) if quick else (full_duration, full_rounds)


def run_cli(
    measure: Callable[..., dict[str, Any]],
    doc: str | None,
    argv: list[str] | None,
    note: str | None = None,
) -> None:
    """The command line every workload module shares: ``--quick``, then its rows as JSON
    (after ``note``, where a workload has one to print first)."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    result = measure(quick=args.quick)
    if note:
        print(note)
    print(json.dumps({"rows": result["rows"], "peers": result["peers"]}, indent=2))

"""Multi-worker: two worker processes per server; CPU per request and the spread over workers.

``forkloop serve -w 2`` (the pre-fork supervisor) vs ``gunicorn -k
aiohttp.GunicornUVLoopWebWorker -w 2`` vs ``uvicorn --workers 2`` (raw ASGI app) vs ``granian
--workers 2`` (raw RSGI app), each serving the same app as the single-process runs. wrk
(64 connections, ``GET /``) loads one server at a time, interleaved over rounds. Nothing is
pinned: the workers need both CPUs, and so does wrk. On a 2-core machine wrk takes a core's
worth of time, so **req/s is not comparable** here (it is shown only to spot a broken server);
the figures to read are server CPU µs per request (every process of the server: master and
workers) and the spread: the busiest worker's CPU time over the mean worker's (1.0 = perfectly
even; 2.0 = one worker did everything).

    python bench/bench_multiworker.py [--quick]
    python bench/run.py --extras multiworker
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads
from common import (
    EXIT_UNSUPPORTED,
    HOST,
    PEERS_DIR,
    BenchError,
    ServerExitedError,
    ServerProcess,
    descendants,
    free_port,
    proc_cpu_seconds,
    run_wrk,
)

PY = sys.executable
WORKERS = 2
CONNECTIONS = 64
NOT_COMPARABLE = (
    "req/s is not comparable on 2 cores: wrk needs a core too; compare server CPU per request "
    "and the spread over workers"
)


def commands(port: int) -> dict[str, list[str]]:
    bind = f"{HOST}:{port}"
    return {
        "forkloop": [
            PY, "-m", "forkloop", "serve", "-w", str(WORKERS), "-b", bind, "--no-access-log",
            "web_app:forkloop_app",
        ],
        "gunicorn": [
            PY, "-m", "gunicorn", "-k", "aiohttp.GunicornUVLoopWebWorker", "-w", str(WORKERS),
            "-b", bind, "--chdir", str(PEERS_DIR), "--log-level", "warning", "web_app:aiohttp_app",
        ],
        "uvicorn": [
            PY, "-m", "uvicorn", "asgi_app:app", "--app-dir", str(PEERS_DIR), "--host", HOST,
            "--port", str(port), "--workers", str(WORKERS), "--http", "httptools", "--loop",
            "uvloop", "--no-access-log", "--lifespan", "off", "--log-level", "warning",
        ],
        "granian": [
            PY, str(PEERS_DIR / "granian_peer.py"), "--interface", "rsgi", "--host", HOST,
            "--port", str(port), "--workers", str(WORKERS),
        ],
    }  # fmt: skip


LABELS = {
    "forkloop": f"forkloop serve -w {WORKERS}",
    "gunicorn": f"gunicorn + aiohttp.GunicornUVLoopWebWorker -w {WORKERS}",
    "uvicorn": f"uvicorn --workers {WORKERS} (raw ASGI)",
    "granian": f"granian --workers {WORKERS} (raw RSGI)",
}


def _start(key: str) -> ServerProcess:
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PEERS_DIR), env.get("PYTHONPATH")]))
    server = ServerProcess(
        key,
        commands(port)[key],
        port,
        cwd=PEERS_DIR,
        env=env,
        command=lambda fresh: commands(fresh)[key],
    )
    server.start()
    return server


def _worker_cpu(server: ServerProcess) -> dict[int, float]:
    return {pid: proc_cpu_seconds(pid) for pid in descendants(server.pid)}


def measure(quick: bool = False) -> dict[str, Any]:
    duration, rounds = workloads.settings(quick)
    status: dict[str, dict[str, str]] = {}
    servers: dict[str, ServerProcess] = {}
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-multiworker-") as tmp:
        wrk = workloads.wrk_config(None, CONNECTIONS, Path(tmp))
        try:
            for key in LABELS:
                servers[key] = _start(key)
            for key, server in list(servers.items()):
                try:
                    server.wait_ready(timeout_s=60)
                    workloads.check_plaintext(server)
                except ServerExitedError as exc:
                    servers.pop(key).stop()
                    state = "skipped" if exc.returncode == EXIT_UNSUPPORTED else "failed"
                    status[key] = {"status": state, "reason": str(exc)}
                except (BenchError, OSError) as exc:
                    servers.pop(key).stop()
                    status[key] = {"status": "failed", "reason": str(exc).splitlines()[0]}
                else:
                    status[key] = {"status": "ok"}
            for round_no in range(1, rounds + 1):
                for key, server in servers.items():
                    before = _worker_cpu(server)
                    total_before = server.cpu_seconds()
                    result = run_wrk(wrk, f"http://{HOST}:{server.port}/", duration)
                    total = server.cpu_seconds() - total_before
                    after = _worker_cpu(server)
                    # The WORKERS processes that did the most work are the workers (uvicorn and
                    # granian also keep helper processes that serve no request).
                    used = sorted(
                        (
                            after[pid] - before.get(pid, 0.0)
                            for pid in after
                            if after[pid] == after[pid]
                        ),
                        reverse=True,
                    )[:WORKERS]
                    used += [0.0] * (WORKERS - len(used))
                    mean = statistics.mean(used)
                    data = result.as_dict()
                    data.update(
                        round=round_no,
                        peer=key,
                        case=f"{WORKERS} workers",
                        server_cpu_s=total,
                        cpu_us_per_req=total / result.requests * 1e6 if result.requests else None,
                        worker_cpu_s=used,
                        spread=max(used) / mean if mean > 0 else None,
                        server_rss_mib=server.rss_mib(),
                    )
                    runs.append(data)
                    print(
                        f"  round {round_no}/{rounds} {key:9} {data['rps']:>10,.0f} req/s  "
                        f"{data['cpu_us_per_req']:.1f} µs CPU/req  spread {data['spread']}",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            for server in servers.values():
                server.stop()
    summary = workloads.summarize(runs, ("rps", "cpu_us_per_req", "spread"))
    # The baseline here is gunicorn's aiohttp worker: aiohttp's way to run several workers.
    for by_peer in summary.values():
        base = by_peer.get("gunicorn", {})
        for row in by_peer.values():
            cpu, base_cpu = row.get("cpu_us_per_req"), base.get("cpu_us_per_req")
            row["cpu_ratio_to_aiohttp"] = base_cpu / cpu if cpu and base_cpu else None
            row["ratio_to_aiohttp"] = None
    title = f"Multi-worker ({WORKERS} workers each, wrk -c{CONNECTIONS}, GET /): {NOT_COMPARABLE}"
    shaped = workloads.rows_and_chart(
        title,
        summary,
        columns=(
            ("cpu_us_per_req", "server CPU µs/req (all processes)"),
            ("cpu_ratio_to_aiohttp", "vs aiohttp (gunicorn) by CPU"),
            ("spread", "busiest/mean worker CPU"),
            ("rps", "req/s (not comparable)"),
        ),
        panels=(
            ("cpu_us_per_req", "server CPU per request", "µs", True),
            ("spread", "busiest worker / mean worker", "ratio", True),
        ),
        labels=LABELS,
    )
    return {
        "title": title,
        "benchmark": "multi-worker",
        "note": NOT_COMPARABLE,
        **shaped,
        "summary": summary,
        "peers": status,
        "runs": runs,
        "settings": {"duration_s": duration, "rounds": rounds, "workers": WORKERS},
    }


def main(argv: list[str] | None = None) -> None:
    workloads.run_cli(measure, __doc__, argv, note=NOT_COMPARABLE)


if __name__ == "__main__":
    main()

"""System calls per WebSocket message: forkloop vs aiohttp, counted with ``strace -c``.

The same echo servers as bench/bench_ws.py (one process each, pinned to CPU 0) run the same
client load (pinned to CPU 1): strict ping-pong (1 message in flight per connection) and
pipelined (16 in flight). For each server and window, ``strace -c -f -p PID`` is attached for
the duration of one client run and detached (SIGINT, by its PID) after it; the system calls it
counted divided by the messages echoed give calls per message, in total and for the calls that
matter (reads, writes, epoll). strace slows the server down, so no rates are reported here: the
rates are bench_ws's. Skipped with the reason when strace is missing or cannot attach.

    python bench/bench_ws_syscalls.py [--quick]
    python bench/run.py --extras ws_syscalls
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ws
import workloads
from common import BenchError, ServerProcess, free_port, pinned

PY = sys.executable
SERVERS = ("forkloop", "aiohttp")
WINDOWS = (1, 16)
CONNECTIONS = 16
# Calls reported one by one (per message); the rest are in "total".
GROUPS = {
    "read": ("read", "recvfrom", "recvmsg", "readv"),
    "write": ("write", "sendto", "sendmsg", "writev"),
    "epoll": ("epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl"),
}


def parse_strace_summary(text: str) -> dict[str, int]:
    """``strace -c -U name,calls`` output -> {syscall: calls}, with "total"."""
    calls: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit() and not set(parts[0]) <= {"-"}:
            calls[parts[0]] = int(parts[1])
    if "total" not in calls:
        raise BenchError(f"no total in strace's summary: {text.strip()[-200:]!r}")
    return calls


def find_strace() -> str | None:
    return shutil.which("strace")


def _traced(server: ServerProcess, out: Path, run: Any) -> dict[str, int]:
    strace = find_strace()
    if strace is None:
        raise TracerUnavailableError("strace is not installed (apt-get install -y strace)")
    argv = [strace, "-c", "-f", "-U", "name,calls", "-o", str(out), "-p", str(server.pid)]
    with tempfile.TemporaryFile() as log:
        tracer = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # wait until strace says it attached
                log.seek(0)
                if b"attached" in log.read() or tracer.poll() is not None:
                    break
                time.sleep(0.05)
            if tracer.poll() is not None:
                log.seek(0)
                said = log.read().decode(errors="replace").strip()
                raise TracerUnavailableError(f"strace could not attach: {said[-200:]}")
            run()
        finally:
            if tracer.poll() is None:
                tracer.send_signal(signal.SIGINT)  # detach and write the summary
                try:
                    tracer.wait(30)
                except subprocess.TimeoutExpired:
                    tracer.kill()
                    tracer.wait(5)
    return parse_strace_summary(out.read_text())


class TracerUnavailableError(BenchError):
    """strace is missing or may not attach here: the workload is skipped, not failed."""


def _command(name: str, cpu: int | None, port: int) -> list[str]:
    return pinned(cpu, [PY, bench_ws.__file__, "--serve", name, "--port", str(port)])


def measure(quick: bool = False) -> dict[str, Any]:
    try:
        return _measure(quick)
    except TracerUnavailableError as exc:
        title = "WebSocket system calls per message"
        return {"title": title, "skipped": str(exc), "markdown": f"Skipped: {exc}"}


def _measure(quick: bool) -> dict[str, Any]:
    messages = 200 if quick else 2_000
    connections = 4 if quick else CONNECTIONS
    server_cpu, client_cpu = workloads.cpus()
    bench_ws.SERVER_CPU, bench_ws.CLIENT_CPU = server_cpu or 0, client_cpu or 0
    total = connections * messages
    servers: dict[str, ServerProcess] = {}
    found: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ws-syscalls-") as tmp:
        try:
            for name in SERVERS:
                port = free_port()
                command = functools.partial(_command, name, server_cpu)
                servers[name] = ServerProcess(name, command(port), port, command=command)
                servers[name].start()
            for server in servers.values():
                server.wait_ready(timeout_s=60)
            for window in WINDOWS:
                case = found.setdefault(f"window {window}", {})
                for name, server in servers.items():

                    def one(port: int = server.port, w: int = window) -> None:
                        bench_ws._run_client(port, connections, messages, w)

                    calls = _traced(server, Path(tmp) / f"{name}-{window}.txt", one)
                    row = {"total": calls["total"] / total}
                    for group, names in GROUPS.items():
                        row[group] = sum(calls.get(n, 0) for n in names) / total
                    row["other"] = row["total"] - sum(row[g] for g in GROUPS)
                    case[name] = row
                    print(f"  {case} {name}: {row}", file=sys.stderr, flush=True)
        finally:
            for server in servers.values():
                server.stop()
    rows = []
    for case, by_server in found.items():
        base = by_server.get("aiohttp", {}).get("total")
        for name, row in by_server.items():
            rows.append(
                {
                    "in flight": case,
                    "server": name,
                    "syscalls/msg": row["total"],
                    **{f"{g}/msg": row[g] for g in (*GROUPS, "other")},
                    "x fewer than aiohttp": base / row["total"] if base and row["total"] else "",
                }
            )
    title = f"WebSocket system calls per message ({connections} connections x {messages} messages)"
    return {
        "title": title,
        "benchmark": "websocket syscalls",
        "rows": rows,
        "chart": {
            "title": title,
            "panels": [
                {
                    "title": "system calls per message",
                    "unit": "calls",
                    "lower_is_better": True,
                    "groups": {c: {n: r["total"] for n, r in s.items()} for c, s in found.items()},
                }
            ],
        },
        "per_message": found,
        "settings": {"connections": connections, "messages": messages, "windows": WINDOWS},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    with contextlib.suppress(BrokenPipeError):
        print(json.dumps(measure(quick=args.quick)["rows"], indent=2))


if __name__ == "__main__":
    main()

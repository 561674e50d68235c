"""Streaming multipart upload: forkloop vs aiohttp, 200 MB through the seed's handler.

Each server runs the aiohttp docs' streaming example (``store_mp3_handler``: ``await
request.multipart()``, then ``read_chunk()`` of 8192 bytes until the part ends, each chunk
written to a file -- ``/dev/null`` here, so the disk is not what is measured) in its own process
pinned to CPU 0; the client, a raw-socket sender in another process pinned to CPU 1, streams a
``multipart/form-data`` body of 200 MB with a ``Content-Length`` and waits for the answer.
Rounds alternate between the servers. Reported per server: the best MB/s, the growth of the
server's RSS during the upload (peak sampled every 10 ms minus the RSS just before), and the
server's CPU seconds per upload (steadier than MB/s when other work shares the machine).

    python bench/bench_upload.py [--quick] [--size-mb 200]

``measure()`` returns the figures as a dict for the bench harness (``bench/run.py``).
Targets (issue 5): forkloop >= 2x aiohttp MB/s, forkloop's RSS growth < 20 MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import HOST, BenchError, ServerProcess, free_port, pinned

PY = sys.executable
SCRIPT = str(Path(__file__).resolve())
BOUNDARY = "----forkloopBenchBoundary7MA4YWxkTrZu0gW"
BLOCK = 1 << 20
TARGET_RATIO = 2.0
TARGET_RSS_MIB = 20.0


# -- the server (run as a child process) -------------------------------------------------------


def serve(framework: str, port: int) -> None:
    if framework == "aiohttp":
        import uvloop
        from aiohttp import web

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        from forkloop import web  # type: ignore[no-redef]

    sink = open(os.devnull, "wb")  # noqa: SIM115 - lives as long as the process

    async def store_mp3_handler(request: Any) -> Any:
        reader = await request.multipart()
        field = await reader.next()
        name = await field.read(decode=True)
        field = await reader.next()
        filename = field.filename
        size = 0
        while True:
            chunk = await field.read_chunk()  # 8192 bytes by default.
            if not chunk:
                break
            size += len(chunk)
            sink.write(chunk)
        return web.Response(text=f"{filename} sized of {size} successfully stored ({len(name)})")

    async def ready(request: Any) -> Any:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ready)
    app.router.add_post("/upload", store_mp3_handler)
    web.run_app(app, host=HOST, port=port, access_log=None, print=None)


# -- the client (run as a child process) -------------------------------------------------------


def upload(port: int, size: int) -> dict[str, Any]:
    """Stream one ``size``-byte file field over a raw socket; time until the full answer."""
    head_part = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="name"\r\n\r\nbench\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="mp3"; '
        'filename="song.mp3"\r\nContent-Type: audio/mpeg\r\n\r\n'
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    length = len(head_part) + size + len(tail)
    request = (
        f"POST /upload HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()
    block = os.urandom(BLOCK).replace(b"\r", b"\n")
    with socket.create_connection((HOST, port), timeout=120) as sock:
        start = time.perf_counter()
        sock.sendall(request + head_part)
        left = size
        while left > 0:
            piece = block if left >= BLOCK else block[:left]
            sock.sendall(piece)
            left -= len(piece)
        sock.sendall(tail)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
        elapsed = time.perf_counter() - start
    answer = b"".join(chunks)
    status = int(answer.split(b" ", 2)[1]) if answer else 0
    expected = f"sized of {size} successfully".encode()
    return {"status": status, "ok": status == 200 and expected in answer, "seconds": elapsed}


# -- the harness -------------------------------------------------------------------------------


def _cpus() -> tuple[int | None, int | None]:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) >= 2:
        return cpus[0], cpus[1]
    return None, None


def _one_round(server: ServerProcess, size: int, client_cpu: int | None) -> dict[str, Any]:
    baseline = server.rss_mib()
    cpu_before = server.cpu_seconds()
    peak = baseline
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, server.rss_mib())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        done = subprocess.run(
            pinned(client_cpu, [PY, SCRIPT, "--client", str(server.port), str(size)]),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        stop.set()
        sampler.join()
    if done.returncode != 0:
        raise BenchError(f"upload client failed: {done.stderr.strip()[-300:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    if not result["ok"]:
        raise BenchError(f"{server.name} answered {result['status']} to the upload")
    result["mb_s"] = size / 1e6 / result["seconds"]
    result["server_cpu_s"] = server.cpu_seconds() - cpu_before
    result["rss_growth_mib"] = peak - baseline
    return result


def _serve_command(name: str, cpu: int | None, port: int) -> list[str]:
    return pinned(cpu, [PY, SCRIPT, "--serve", name, str(port)])


def measure(quick: bool = False, size_mb: int = 200) -> dict[str, Any]:
    """Interleaved rounds of the 200 MB upload against forkloop and aiohttp."""
    rounds = 1 if quick else 3
    size = size_mb * 1024 * 1024
    server_cpu, client_cpu = _cpus()
    servers = {}
    for name in ("forkloop", "aiohttp"):
        port = free_port()
        command = functools.partial(_serve_command, name, server_cpu)
        servers[name] = ServerProcess(name, command(port), port, command=command)
    per: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    try:
        for server in servers.values():
            server.start()
            server.wait_ready()
            _one_round(server, 4 * 1024 * 1024, client_cpu)  # warm up
        for _ in range(rounds):
            for name, server in servers.items():
                per[name].append(_one_round(server, size, client_cpu))
    finally:
        for server in servers.values():
            server.stop()
    out: dict[str, Any] = {
        "size_mb": size_mb,
        "rounds": rounds,
        "server_cpu": server_cpu,
        "client_cpu": client_cpu,
        "handler": "aiohttp docs store_mp3_handler (read_chunk() of 8192 B to /dev/null)",
    }
    for name, results in per.items():
        out[name] = {
            "mb_s": max(r["mb_s"] for r in results),
            "mb_s_rounds": [round(r["mb_s"], 1) for r in results],
            "rss_growth_mib": max(r["rss_growth_mib"] for r in results),
            # CPU seconds the server spent on one upload: steadier than MB/s on a busy machine.
            "server_cpu_s": min(r["server_cpu_s"] for r in results),
        }
    ratio = out["forkloop"]["mb_s"] / out["aiohttp"]["mb_s"]
    out["ratio_mb_s"] = ratio
    fl_cpu = out["forkloop"]["server_cpu_s"]
    # CPU time is counted in clock ticks (10 ms): a tiny upload may read as zero.
    out["ratio_server_cpu"] = out["aiohttp"]["server_cpu_s"] / fl_cpu if fl_cpu > 0 else None
    out["targets"] = {"ratio_min": TARGET_RATIO, "forkloop_rss_growth_max_mib": TARGET_RSS_MIB}
    out["meets_targets"] = (
        ratio >= TARGET_RATIO and out["forkloop"]["rss_growth_mib"] < TARGET_RSS_MIB
    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--serve", nargs=2, metavar=("FRAMEWORK", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=2, metavar=("PORT", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    if args.client:
        print(json.dumps(upload(int(args.client[0]), int(args.client[1]))))
        return
    result = measure(quick=args.quick, size_mb=args.size_mb)
    for name in ("forkloop", "aiohttp"):
        r = result[name]
        print(
            f"{name:9s} {r['mb_s']:8.1f} MB/s  rounds {r['mb_s_rounds']}  "
            f"RSS growth {r['rss_growth_mib']:.1f} MiB  server CPU {r['server_cpu_s']:.2f} s"
        )
    print(
        f"ratio forkloop/aiohttp: {result['ratio_mb_s']:.2f}x (target >= {TARGET_RATIO}x); "
        f"targets met: {result['meets_targets']}"
    )
    if result["ratio_server_cpu"] is not None:
        print(f"aiohttp uses {result['ratio_server_cpu']:.2f}x forkloop's server CPU per upload")


if __name__ == "__main__":
    main()

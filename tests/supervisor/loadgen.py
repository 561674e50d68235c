"""A strict, bounded HTTP/1.1 keep-alive load loop for the supervisor's end-to-end tests.

Run as a subprocess: ``python loadgen.py HOST PORT --connections 16 --duration 5``; prints one
JSON object. Every request is counted: a 200 is ``ok``; anything else is a failure with its
kind (``refused`` connect, ``reset``/``eof`` before a complete response, ``status``, ``timeout``).
There are no retries, so "0 failures" means every request sent got a complete 200. The server
answers ``GET /pid`` with its pid, so the output also has requests per worker pid, and for
each failure the pid the connection was talking to.

A response with ``Connection: close`` is honoured: the connection is closed and reopened (that
is not a failure -- it is how a draining worker moves clients to its siblings).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import time


class Stats:
    def __init__(self) -> None:
        self.ok = 0
        self.failures: collections.Counter[str] = collections.Counter()
        self.failure_pids: collections.Counter[str] = collections.Counter()
        self.by_pid: collections.Counter[str] = collections.Counter()
        self.connections_by_pid: collections.Counter[str] = collections.Counter()
        self.connects = 0
        self.closes = 0


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return status, headers, body


async def connection(
    host: str, port: int, path: str, deadline: float, stats: Stats, timeout_s: float
) -> None:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    writer = None
    pid = "?"
    while time.monotonic() < deadline:
        if writer is None:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), timeout_s
                )
                stats.connects += 1
            except (ConnectionRefusedError, TimeoutError, OSError) as exc:
                kind = "refused" if isinstance(exc, ConnectionRefusedError) else "connect"
                stats.failures[kind] += 1
                await asyncio.sleep(0.05)
                continue
        try:
            writer.write(request)
            status, headers, body = await asyncio.wait_for(read_response(reader), timeout_s)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, OSError) as exc:
            kind = {
                asyncio.IncompleteReadError: "eof",
                TimeoutError: "timeout",
            }.get(type(exc), "reset")
            stats.failures[kind] += 1
            stats.failure_pids[pid] += 1
            writer.close()
            writer = None
            pid = "?"
            continue
        if status != 200:
            stats.failures[f"status_{status}"] += 1
            stats.failure_pids[pid] += 1
        else:
            stats.ok += 1
            fresh = pid == "?"
            pid = body.decode().strip() or "?"
            stats.by_pid[pid] += 1
            if fresh:
                stats.connections_by_pid[pid] += 1
        if headers.get("connection", "").lower() == "close":
            stats.closes += 1
            writer.close()
            writer = None
            pid = "?"
    if writer is not None:
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--path", default="/pid")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    stats = Stats()
    started = time.monotonic()
    deadline = started + args.duration
    await asyncio.gather(
        *(
            connection(args.host, args.port, args.path, deadline, stats, args.timeout)
            for _ in range(args.connections)
        )
    )
    print(
        json.dumps(
            {
                "ok": stats.ok,
                "failed": sum(stats.failures.values()),
                "failures": dict(stats.failures),
                "failure_pids": dict(stats.failure_pids),
                "by_pid": dict(stats.by_pid),
                "connections_by_pid": dict(stats.connections_by_pid),
                "connects": stats.connects,
                "closes": stats.closes,
                "elapsed_s": round(time.monotonic() - started, 3),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())

"""Load clients wrk does not provide: the idle+active connection mix and a fixed-rate open loop.

Run as a child process of a workload benchmark (pinned to the client CPU); prints one JSON line.
Both modes speak HTTP/1.1 keep-alive ``GET /`` to one loopback port, parse each response's
Content-Length framing, and stop by themselves after ``--duration`` seconds.

``mix``: opens ``--connections`` connections, each sends one request (so every connection is
fully set up in the server), then ``--active`` of them send requests back to back (one in
flight each) while the others stay idle. Reports the active requests' latency percentiles and
how many idle connections the server closed.

``open``: a bounded open-loop client in the manner of wrk2: request *i* is due at ``i / rate``
seconds; it goes out on connection ``i mod --connections`` as soon as that connection has no
request in flight, and its latency is counted from the time it was due (so a stalled server
is charged for the queue it causes: no coordinated omission). Reports p50/p99/p99.9, the rate
achieved and how late the client itself was (when it cannot keep up, the result says so).

    python bench/loadgen.py mix --port 8080 --connections 1000 --active 50 --duration 5
    python bench/loadgen.py open --port 8080 --rate 20000 --connections 64 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import resource
import time
from typing import Any

HOST = "127.0.0.1"
MAX_HEAD = 16384  # a response head longer than this is an error, not a reason to buffer more


class ProtocolError(Exception):
    """The server's answer could not be framed."""


class Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight; times each response."""

    request = b""

    def __init__(self, on_response: Any) -> None:
        self.on_response = on_response
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.sent_at = 0.0
        self.due_at = 0.0
        self.busy = False
        self.closed = False
        self.queue: collections.deque[float] = collections.deque()
        self.non_2xx = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, due_at: float) -> None:
        assert self.transport is not None
        self.busy = True
        self.due_at = due_at
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.busy:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    raise ProtocolError("response head too long")
                return
            head = self.buffer[:end].lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                raise ProtocolError(f"no Content-Length in {head[:80]!r}")
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            if not head.startswith(b"http/1.1 2"):
                self.non_2xx += 1
            self.buffer = self.buffer[total:]
            self.busy = False
            now = time.perf_counter()
            self.on_response(self, now)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True


async def _open_all(count: int, port: int, factory: Any) -> list[Connection]:
    loop = asyncio.get_running_loop()
    conns: list[Connection] = []
    for start in range(0, count, 100):  # in batches: the listen backlog is finite
        batch = [
            loop.create_connection(factory, HOST, port) for _ in range(min(100, count - start))
        ]
        for _, proto in await asyncio.gather(*batch):
            conns.append(proto)
    return conns


def _percentiles(latencies: list[float]) -> dict[str, float | None]:
    if not latencies:
        return {"p50_ms": None, "p99_ms": None, "p999_ms": None, "max_ms": None}
    ordered = sorted(latencies)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "p50_ms": at(0.5),
        "p99_ms": at(0.99),
        "p999_ms": at(0.999),
        "max_ms": ordered[-1] * 1000,
    }


async def mix(port: int, connections: int, active: int, duration: float) -> dict[str, Any]:
    latencies: list[float] = []
    warm = asyncio.get_running_loop().create_future()
    pending = {"n": connections}
    running = {"on": False}

    def on_response(conn: Connection, now: float) -> None:
        if not running["on"]:
            pending["n"] -= 1
            if pending["n"] == 0 and not warm.done():
                warm.set_result(None)
            return
        latencies.append(now - conn.sent_at)
        if now < deadline:
            conn.send(now)

    conns = await _open_all(connections, port, lambda: Connection(on_response))
    for conn in conns:  # one request each: every connection is set up in the server
        conn.send(time.perf_counter())
    await asyncio.wait_for(warm, timeout=60)
    running["on"] = True
    start = time.perf_counter()
    deadline = start + duration
    for conn in conns[:active]:
        conn.send(time.perf_counter())
    await asyncio.sleep(duration)
    await asyncio.sleep(0.2)  # the last responses
    elapsed = time.perf_counter() - start
    idle_closed = sum(c.closed for c in conns[active:])
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    return {
        "mode": "mix",
        "connections": connections,
        "active": active,
        "requests": len(latencies),
        "duration_s": elapsed,
        "rps": len(latencies) / elapsed,
        "idle_closed_by_server": idle_closed,
        "non_2xx": sum(c.non_2xx for c in conns),
        "errors": sum(c.closed for c in conns[:active]),
        **_percentiles(latencies),
    }


async def open_loop(port: int, rate: float, connections: int, duration: float) -> dict[str, Any]:
    latencies: list[float] = []
    loop = asyncio.get_running_loop()

    def on_response(conn: Connection, now: float) -> None:
        latencies.append(now - conn.due_at)
        if conn.queue:
            conn.send(conn.queue.popleft())

    conns = await _open_all(connections, port, lambda: Connection(on_response))
    total = int(rate * duration)
    start = time.perf_counter() + 0.05
    issued = 0
    worst_lag = 0.0
    while issued < total:
        now = time.perf_counter()
        due = min(total, int((now - start) * rate) + 1) if now >= start else 0
        while issued < due:
            due_at = start + issued / rate
            worst_lag = max(worst_lag, now - due_at)
            conn = conns[issued % connections]
            if conn.busy:
                conn.queue.append(due_at)
            else:
                conn.send(due_at)
            issued += 1
        await asyncio.sleep(0.0005)
    # The last responses (bounded: a server that stops answering is counted as errors).
    drain_until = time.perf_counter() + 5
    while any(c.busy or c.queue for c in conns) and time.perf_counter() < drain_until:  # noqa: ASYNC110 - polling many connections, bounded
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - start
    unanswered = sum(c.busy + len(c.queue) for c in conns)
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    del loop
    return {
        "mode": "open",
        "target_rps": rate,
        "connections": connections,
        "requests": len(latencies),
        "duration_s": elapsed,
        "rps": len(latencies) / elapsed,
        "errors": unanswered + sum(c.closed for c in conns if c.busy),
        "non_2xx": sum(c.non_2xx for c in conns),
        # How far behind its own schedule the client fell: above a millisecond or two the
        # client, not the server, limited the offered rate and the percentiles are suspect.
        "client_worst_lag_ms": worst_lag * 1000,
        **_percentiles(latencies),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("mix", "open"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--active", type=int, default=50)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 120:
        parser.error("--duration must be in (0, 120] seconds")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.connections + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.connections + 1024), hard))
    Connection.request = f"GET / HTTP/1.1\r\nHost: {HOST}:{args.port}\r\n\r\n".encode()
    import uvloop

    if args.mode == "mix":
        result = uvloop.run(mix(args.port, args.connections, args.active, args.duration))
    else:
        result = uvloop.run(open_loop(args.port, args.rate, args.connections, args.duration))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

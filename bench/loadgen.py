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

``overload``: the open loop of ``open`` against a server that may refuse (bench_overload.py).
Request *i* is due at ``i / rate``; it goes out on an idle keep-alive connection, else on a new
one (up to ``--connections`` open at once), else waits in the client, its latency counted from
the time it was due. A response with ``Connection: close`` (a 503 from overload protection)
closes its connection. Reports the latency of 2xx and of 503 responses apart, the shed
fraction, and the p99 of 2xx responses by due time in windows of ``--window`` seconds (how
latency grows under sustained overload); requests still unanswered ``--drain`` seconds after
the end are counted, at the latency they had reached then.

    python bench/loadgen.py mix --port 8080 --connections 1000 --active 50 --duration 5
    python bench/loadgen.py open --port 8080 --rate 20000 --connections 64 --duration 5
    python bench/loadgen.py overload --port 8080 --path /work --rate 3000 --duration 20
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


def response_frame(buffer: bytes | bytearray) -> tuple[bytes, int] | None:
    """The lower-cased head and the whole size of the response at the front of ``buffer``
    (Content-Length framing), or None while part of it is still to come."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_HEAD:
            raise ProtocolError("response head too long")
        return None
    head = bytes(buffer[:end]).lower()
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        raise ProtocolError(f"no Content-Length in {head[:80]!r}")
    stop = head.find(b"\r\n", at + 2)
    total = end + 4 + int(head[at + 17 : stop if stop >= 0 else len(head)])
    return (head, total) if len(buffer) >= total else None


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
            framed = response_frame(self.buffer)
            if framed is None:
                return
            head, total = framed
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


class Refusable(asyncio.Protocol):
    """A connection of the ``overload`` client: one request at a time, status and close read."""

    request = b""

    def __init__(self, client: OverloadClient) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.due_at = 0.0
        self.sent_at = 0.0
        self.busy = False

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
        framed = response_frame(self.buffer)
        if framed is None:
            return
        head = framed[0]
        status = int(head[9:12])
        closes = b"\r\nconnection: close" in head
        self.buffer = b""
        self.busy = False
        self.client.answered(self, status, closes)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.client.lost(self)


class OverloadClient:
    """The ``overload`` mode's bookkeeping: idle connections, requests waiting, latencies."""

    def __init__(self, port: int, max_connections: int) -> None:
        self.port = port
        self.max_connections = max_connections
        self.idle: list[Refusable] = []
        self.opening = 0
        self.live: set[Refusable] = set()
        self.waiting: collections.deque[float] = collections.deque()
        self.ok: list[tuple[float, float]] = []  # (due time, latency) of 2xx responses
        self.shed: list[float] = []  # latencies of 503 responses, from the due time
        self.shed_wire: list[float] = []  # the same from the moment the request was sent
        self.other = 0
        self.errors = 0
        self.connects = 0

    def dispatch(self, due_at: float) -> None:
        while self.idle:
            conn = self.idle.pop()  # the most recently used: keeps few connections open
            if conn.transport is not None and not conn.transport.is_closing():
                conn.send(due_at)
                return
            self.live.discard(conn)
        if len(self.live) + self.opening < self.max_connections:
            self.opening += 1
            asyncio.get_running_loop().create_task(self._open(due_at))
        else:
            self.waiting.append(due_at)

    async def _open(self, due_at: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: Refusable(self), HOST, self.port)
        except OSError:
            self.opening -= 1
            self.errors += 1
            return
        self.opening -= 1
        self.connects += 1
        self.live.add(conn)
        conn.send(due_at)

    def answered(self, conn: Refusable, status: int, closes: bool) -> None:
        now = time.perf_counter()
        latency = now - conn.due_at
        if 200 <= status < 300:
            self.ok.append((conn.due_at, latency))
        elif status == 503:
            self.shed.append(latency)
            self.shed_wire.append(now - conn.sent_at)
        else:
            self.other += 1
        if closes:
            self.live.discard(conn)
            if conn.transport is not None:
                conn.transport.close()
        else:
            self.idle.append(conn)
        if self.waiting:
            self.dispatch(self.waiting.popleft())

    def lost(self, conn: Refusable) -> None:
        self.live.discard(conn)
        if conn.busy:
            conn.busy = False
            self.errors += 1
            if self.waiting:
                self.dispatch(self.waiting.popleft())

    @property
    def in_flight(self) -> int:
        return sum(c.busy for c in self.live) + self.opening + len(self.waiting)


async def overload(
    port: int, rate: float, connections: int, duration: float, window: float, drain: float
) -> dict[str, Any]:
    client = OverloadClient(port, connections)
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
            client.dispatch(due_at)
            issued += 1
        await asyncio.sleep(0.0005)
    drain_until = time.perf_counter() + drain
    while client.in_flight and time.perf_counter() < drain_until:  # noqa: ASYNC110 - bounded
        await asyncio.sleep(0.01)
    gave_up = time.perf_counter()
    unanswered = [gave_up - c.due_at for c in client.live if c.busy]
    unanswered += [gave_up - due_at for due_at in client.waiting]
    elapsed = gave_up - start
    for conn in list(client.live) + client.idle:
        if conn.transport is not None:
            conn.transport.close()
    ok_latencies = [latency for _, latency in client.ok]
    windows = []
    for index in range(max(1, int(duration / window))):
        low, high = start + index * window, start + (index + 1) * window
        in_window = [lat for due_at, lat in client.ok if low <= due_at < high]
        windows.append(_percentiles(in_window)["p99_ms"])
    answered = len(client.ok) + len(client.shed) + client.other
    return {
        "mode": "overload",
        "target_rps": rate,
        "requests": answered,
        "duration_s": elapsed,
        "rps": answered / elapsed,
        "ok": len(client.ok),
        "ok_rps": len(client.ok) / duration,
        "shed": len(client.shed),
        "shed_fraction": len(client.shed) / total if total else 0.0,
        "non_2xx": len(client.shed) + client.other,
        "other_status": client.other,
        "errors": client.errors,
        "unanswered": len(unanswered),
        "connects": client.connects,
        "client_worst_lag_ms": worst_lag * 1000,
        **_percentiles(ok_latencies),
        # 503s from their due time (with the client's reconnect and queue) and from the moment
        # the request was written (the server's own answer time).
        "shed_p50_ms": _percentiles(client.shed)["p50_ms"],
        "shed_p99_ms": _percentiles(client.shed)["p99_ms"],
        "shed_wire_p99_ms": _percentiles(client.shed_wire)["p99_ms"],
        # Every request the client offered, the unanswered at the latency they had reached.
        "all_p99_ms": _percentiles(ok_latencies + client.shed + unanswered)["p99_ms"],
        "ok_p99_by_window_ms": windows,
        "window_s": window,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("mix", "open", "overload"))
    parser.add_argument("--path", default="/")
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--drain", type=float, default=5.0)
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
    if not args.path.startswith("/") or any(c in args.path for c in " \r\n"):
        parser.error("--path must be an absolute path")
    if not 0 < args.drain <= 30 or not 0 < args.window <= 120:
        parser.error("--drain must be in (0, 30] and --window in (0, 120] seconds")
    request = f"GET {args.path} HTTP/1.1\r\nHost: {HOST}:{args.port}\r\n\r\n".encode()
    Connection.request = Refusable.request = request
    import uvloop

    if args.mode == "mix":
        result = uvloop.run(mix(args.port, args.connections, args.active, args.duration))
    elif args.mode == "overload":
        result = uvloop.run(
            overload(args.port, args.rate, args.connections, args.duration, args.window, args.drain)
        )
    else:
        result = uvloop.run(open_loop(args.port, args.rate, args.connections, args.duration))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""WebSocket echo: forkloop's WebSocketResponse against aiohttp's, in the same run.

Each server runs the same echo app (``from forkloop import web`` or ``from aiohttp import web``,
both on uvloop) in its own process pinned to one CPU; the load is a separate process pinned to
another CPU: 16 connections, each sending 20,000 32-byte text messages and reading each echo
before it sends the next (window 1), then again with 16 in flight per connection (window 16).
A third server, the "ceiling", is a bare uvloop protocol that answers each frame with a canned
echo: the bound for any Python server on uvloop. Reported: messages/s (wall clock), server CPU
microseconds per message (from /proc, robust on a busy machine), and the ratios. Servers
alternate within each round; the best round counts.

    python bench/bench_ws.py                  # full run, prints a table and the ratio
    python bench/bench_ws.py --quick          # fewer messages
    python bench/bench_ws.py --serve forkloop --port 8080    # just the server
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from common import (  # noqa: E402 - bench/ on sys.path first
    HOST,
    ROOT,
    BenchError,
    ServerProcess,
    free_port,
    pinned,
)

PY = sys.executable
SERVERS = ("forkloop", "aiohttp", "ceiling")
CONNECTIONS = 16
MESSAGES = 20_000
SIZE = 32
SERVER_CPU = 0
CLIENT_CPU = 1


# ------------------------------------------------------------------------------ server


class _CeilingEcho(asyncio.Protocol):
    """The ceiling: a uvloop protocol that answers every client frame with a canned echo.

    No framework, no frame parsing beyond counting bytes (the load sends frames of one size):
    what is left is the event loop and the two system calls per message, so no Python
    WebSocket server on uvloop can beat it.
    """

    FRAME_IN = 2 + 4 + SIZE  # header, mask, payload
    FRAME_OUT = bytes((0x81, SIZE)) + b"x" * SIZE

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.upgraded = False
        self.pending = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if self.upgraded:
            count, self.pending = divmod(self.pending + len(data), self.FRAME_IN)
            if count:
                self.transport.write(self.FRAME_OUT if count == 1 else self.FRAME_OUT * count)
            return
        self.head += data
        if b"\r\n\r\n" not in self.head:
            return
        head, _, rest = self.head.partition(b"\r\n\r\n")
        key = b""
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        if not key:  # the readiness probe's plain GET
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            )
            self.transport.close()
            return
        accept = base64.b64encode(
            hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        )
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.upgraded = True
        self.head = b""
        if rest:
            self.data_received(rest)


def serve_ceiling(port: int) -> None:
    import uvloop

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_CeilingEcho, HOST, port)
        async with server:
            await server.serve_forever()

    uvloop.run(main())


def serve(framework: str, port: int) -> None:
    """Run the echo app until SIGTERM."""
    import uvloop

    if framework == "ceiling":
        serve_ceiling(port)
        return

    if framework == "aiohttp":
        from aiohttp import web
    else:
        from forkloop import web  # type: ignore[no-redef]

    async def echo(request: Any) -> Any:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == web.WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == web.WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    async def index(request: Any) -> Any:
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/", index)
        app.router.add_get("/ws", echo)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, port)
        await site.start()
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    uvloop.run(main())


# ------------------------------------------------------------------------------ client


class _EchoClient(asyncio.Protocol):
    """One connection: handshake, then keep ``window`` messages in flight until all echoed."""

    def __init__(self, frame: bytes, echo_size: int, total: int, window: int) -> None:
        self.frame = frame
        self.echo_size = echo_size
        self.total = total
        self.window = window
        self.sent = 0
        self.received_bytes = 0
        self.head = b""
        self.upgraded = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def _send(self, count: int) -> None:
        count = min(count, self.total - self.sent)
        if count > 0 and self.transport is not None:
            self.sent += count
            self.transport.write(self.frame * count)

    def data_received(self, data: bytes) -> None:
        if not self.upgraded:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.head.startswith(b"HTTP/1.1 101"):
                self.done.set_exception(BenchError(f"handshake failed: {self.head[:60]!r}"))
                return
            self.upgraded = True
            data = self.head[end + 4 :]
            self.head = b""
            self._send(self.window)
        before = self.received_bytes // self.echo_size
        self.received_bytes += len(data)
        echoed = self.received_bytes // self.echo_size
        if echoed >= self.total:
            if not self.done.done():
                self.done.set_result(None)
            return
        self._send(echoed - before)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.done.done():
            self.done.set_exception(BenchError(f"connection lost after {self.sent} messages"))


async def _load(port: int, connections: int, messages: int, window: int) -> float:
    loop = asyncio.get_running_loop()
    payload = b"x" * SIZE
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    frame = bytes((0x81, 0x80 | SIZE)) + mask + masked
    clients = []
    for _ in range(connections):
        _, proto = await loop.create_connection(
            lambda: _EchoClient(frame, 2 + SIZE, messages, window), HOST, port
        )
        clients.append(proto)
    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(c.done for c in clients)), timeout=300)
    elapsed = time.perf_counter() - start
    for c in clients:
        if c.transport is not None:
            c.transport.close()
    return elapsed


def client(port: int, connections: int, messages: int, window: int) -> None:
    import uvloop

    elapsed = uvloop.run(_load(port, connections, messages, window))
    print(json.dumps({"elapsed_s": elapsed}))


# ----------------------------------------------------------------------------- harness


def _run_client(port: int, connections: int, messages: int, window: int) -> float:
    argv = [
        PY,
        str(Path(__file__).resolve()),
        "--client",
        "--port",
        str(port),
        "--connections",
        str(connections),
        "--messages",
        str(messages),
        "--window",
        str(window),
    ]
    done = subprocess.run(
        pinned(CLIENT_CPU, argv), capture_output=True, text=True, timeout=360, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"client failed: {done.stderr.strip()[-400:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["elapsed_s"])


def _pinnable() -> tuple[int | None, int | None]:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[SERVER_CPU], cpus[CLIENT_CPU]


def _serve_command(name: str, cpu: int | None, port: int) -> list[str]:
    return pinned(cpu, [PY, str(Path(__file__).resolve()), "--serve", name, "--port", str(port)])


def measure(
    quick: bool = False, windows: tuple[int, ...] = (1, 16), rounds: int | None = None
) -> dict[str, Any]:
    """Run the echo load against both servers; return messages/s, CPU per message, ratios.

    Two scenarios per round: ``window 1`` (strict ping-pong: every message waits for the
    previous echo, so each costs both servers a read and a write system call) and
    ``window 16`` (the client keeps 16 messages in flight per connection, as a chatty
    client does). Rounds alternate the servers; the best round of each counts.
    """
    global SERVER_CPU, CLIENT_CPU
    messages = 2_000 if quick else MESSAGES
    rounds = rounds or (1 if quick else 3)
    server_cpu, client_cpu = _pinnable()
    SERVER_CPU, CLIENT_CPU = (server_cpu or 0), (client_cpu or 0)
    total = CONNECTIONS * messages
    servers: dict[str, ServerProcess] = {}
    results: dict[str, dict[str, dict[str, Any]]] = {f"window {w}": {} for w in windows}
    try:
        for name in SERVERS:
            port = free_port()
            command = functools.partial(_serve_command, name, server_cpu)
            proc = ServerProcess(name, command(port), port, cwd=ROOT, command=command)
            proc.start()
            servers[name] = proc
        for proc in servers.values():
            proc.wait_ready(path="/")
        for _ in range(rounds):
            for window in windows:
                scenario = results[f"window {window}"]
                for name, proc in servers.items():
                    cpu_before = proc.cpu_seconds()
                    elapsed = _run_client(proc.port, CONNECTIONS, messages, window)
                    cpu = proc.cpu_seconds() - cpu_before
                    rate = total / elapsed
                    best = scenario.get(name)
                    if best is None or rate > best["messages_per_s"]:
                        scenario[name] = {
                            "messages_per_s": rate,
                            "elapsed_s": elapsed,
                            "server_cpu_us_per_msg": cpu / total * 1e6,
                        }
    finally:
        for proc in servers.values():
            proc.stop()
    for scenario in results.values():
        if "forkloop" in scenario and "aiohttp" in scenario:
            f, a = scenario["forkloop"], scenario["aiohttp"]
            scenario["ratio"] = {
                "messages_per_s": f["messages_per_s"] / a["messages_per_s"],
                "cpu_per_msg": a["server_cpu_us_per_msg"] / f["server_cpu_us_per_msg"],
            }
    rows = []
    for label, scenario in results.items():
        base = scenario.get("aiohttp")
        for name in SERVERS:
            r = scenario.get(name)
            if r is None:
                continue
            vs = name != "aiohttp" and base is not None
            rows.append(
                {
                    "in flight": label,
                    "server": name,
                    "messages/s": r["messages_per_s"],
                    "server CPU us/msg": r["server_cpu_us_per_msg"],
                    "x aiohttp msg/s": r["messages_per_s"] / base["messages_per_s"] if vs else "",
                    "x less CPU/msg": (
                        base["server_cpu_us_per_msg"] / r["server_cpu_us_per_msg"] if vs else ""
                    ),
                }
            )
    return {
        "title": (
            f"WebSocket echo ({CONNECTIONS} connections x {messages} text messages of {SIZE} B)"
        ),
        "rows": rows,
        "benchmark": "websocket echo",
        "description": (
            f"{CONNECTIONS} connections x {messages} text messages of {SIZE} bytes; "
            f"server pinned to CPU {server_cpu}, client to CPU {client_cpu}; best of {rounds}"
        ),
        "pinned": server_cpu is not None,
        "scenarios": results,
        # The chart run.py draws (report.workload_chart): one panel per figure.
        "chart": {
            "title": f"WebSocket echo, {CONNECTIONS} connections, {SIZE}-byte messages",
            "panels": [
                {
                    "title": title,
                    "unit": unit,
                    "lower_is_better": lower,
                    "groups": {
                        label: {n: r[key] for n, r in scenario.items() if n in SERVERS}
                        for label, scenario in results.items()
                    },
                }
                for key, title, unit, lower in (
                    ("messages_per_s", "messages per second", "msg/s", False),
                    ("server_cpu_us_per_msg", "server CPU per message", "µs", True),
                )
            ],
        },
    }


def _print(result: dict[str, Any]) -> None:
    print(f"WebSocket echo: {result['description']}")
    print(f"{'scenario':<10} {'server':<10} {'messages/s':>12} {'server CPU us/msg':>18}")
    for label, scenario in result["scenarios"].items():
        for name in SERVERS:
            r = scenario.get(name)
            if r is not None:
                print(
                    f"{label:<10} {name:<10} {r['messages_per_s']:>12,.0f} "
                    f"{r['server_cpu_us_per_msg']:>18.2f}"
                )
        base = scenario.get("aiohttp")
        ceiling = scenario.get("ceiling")
        if base is not None and ceiling is not None:
            print(
                f"{label:<10} ceiling/aiohttp: "
                f"{ceiling['messages_per_s'] / base['messages_per_s']:.2f}x messages/s"
            )
        ratio = scenario.get("ratio")
        if ratio is not None:
            print(
                f"{label:<10} forkloop/aiohttp: {ratio['messages_per_s']:.2f}x messages/s, "
                f"{ratio['cpu_per_msg']:.2f}x less server CPU per message"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=SERVERS)
    parser.add_argument("--client", action="store_true")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--messages", type=int, default=MESSAGES)
    parser.add_argument(
        "--window", type=int, action="append", help="messages in flight per connection"
    )
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return
    if args.client:
        client(args.port, args.connections, args.messages, (args.window or [1])[0])
        return
    windows = tuple(args.window) if args.window else (1, 16)
    result = measure(quick=args.quick, windows=windows, rounds=args.rounds)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)


if __name__ == "__main__":
    main()

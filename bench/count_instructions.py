"""Instructions per request, counted by callgrind: a repeatable figure on a busy machine.

Wall-clock benchmarks swing by several percent with whatever else the machine does; an
instruction count does not. This drives the benchmark app (``bench/peers/web_app.py``) in
process, over a socket pair: the server's side is a real transport of the loop, and the other
side, a keep-alive client in the same loop, sends the next request once the whole response has
come. So the loop makes the same passes per request as with a real client, and what is counted
is the server's own work per request (parser, routing, handler, response, observers, the
transport's send and receive) plus the small, fixed cost of the client's two calls.

It runs the driver twice under ``valgrind --tool=callgrind`` (N and 3N requests, same hash seed)
and prints the difference divided by 2N: start-up and import costs cancel out.

    python bench/count_instructions.py                          # forkloop, GET /
    python bench/count_instructions.py --framework aiohttp --path /json
    python bench/count_instructions.py --metrics                # with forkloop.metrics.setup(app)
    python bench/count_instructions.py --drive --requests 2000  # just the driver, no valgrind
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR / "peers"))

REQUEST = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n"


async def _drive(framework: str, path: str, metrics: bool, requests: int) -> int:
    import web_app
    from loadgen import response_frame  # bench/, the script's own directory

    web = web_app.load_web(framework)
    app = web_app.build_app(web)
    if metrics:
        web_app.add_metrics(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    loop = asyncio.get_running_loop()
    server_side, client = socket.socketpair()
    client.setblocking(False)
    await loop.connect_accepted_socket(runner.server, server_side)
    request = REQUEST % path.encode()
    done = loop.create_future()
    received = bytearray()
    answered = 0
    written = 0  # response bytes the server sent

    def on_readable() -> None:
        # A keep-alive client: the next request goes out once the answer has come whole.
        nonlocal answered, written
        data = client.recv(65536)
        if not data:
            if not done.done():
                done.set_exception(ConnectionError("the server closed the connection"))
            return
        received.extend(data)
        written += len(data)
        while True:
            framed = response_frame(received)
            if framed is None:
                return
            head, length = framed
            assert head.startswith(b"http/1.1 200 "), head[:100]
            del received[:length]
            answered += 1
            if answered < requests:
                client.send(request)
            elif not done.done():
                done.set_result(None)

    loop.add_reader(client.fileno(), on_readable)
    client.send(request)
    try:
        await done
    finally:
        loop.remove_reader(client.fileno())
        client.close()
        await runner.cleanup()
    return written


def drive(framework: str, path: str, metrics: bool, requests: int) -> None:
    import uvloop

    written = uvloop.run(_drive(framework, path, metrics, requests))
    print(f"{written / requests:.1f} bytes written per request", file=sys.stderr)


def _count(args: argparse.Namespace, requests: int, tmp: str) -> int:
    out = Path(tmp) / f"callgrind.{requests}"
    argv = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        sys.executable, str(Path(__file__).resolve()), "--drive",
        "--framework", args.framework, "--path", args.path, "--requests", str(requests),
        *(["--metrics"] if args.metrics else []),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"callgrind run failed:\n{done.stderr[-2000:]}")
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction total in callgrind's output:\n{done.stderr[-800:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=("forkloop", "aiohttp"), default="forkloop")
    parser.add_argument("--path", default="/", choices=("/", "/json"))
    parser.add_argument("--metrics", action="store_true")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--drive", action="store_true", help="run the driver only")
    args = parser.parse_args(argv)
    if args.drive:
        drive(args.framework, args.path, args.metrics, args.requests)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is missing (Debian package valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="forkloop-callgrind-") as tmp:
        small = _count(args, args.requests, tmp)
        large = _count(args, 3 * args.requests, tmp)
    per_request = (large - small) / (2 * args.requests)
    label = args.framework + (" + metrics" if args.metrics else "")
    print(f"{label} GET {args.path}: {per_request:,.0f} instructions per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())

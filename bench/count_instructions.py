"""Instructions per request, counted by callgrind: a repeatable figure on a busy machine.

Wall-clock benchmarks swing by several percent with whatever else the machine does; an
instruction count does not. This drives the benchmark app (``bench/peers/web_app.py``) in
process: the server's protocol gets the same request bytes a keep-alive client would send,
through a transport that only counts what is written, so what is counted is the server's own
work per request (parser, routing, handler, response, observers) without sockets or wrk.

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
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR / "peers"))

REQUEST = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n"


class _Transport:
    """The least a protocol needs of a transport; counts the response bytes."""

    def __init__(self, on_response: Any) -> None:
        self.written = 0
        self.responses = 0
        self.closing = False
        self.on_response = on_response

    def write(self, data: bytes) -> None:
        self.written += len(data)
        if data.startswith(b"HTTP/1.1 200 "):
            self.responses += 1
            self.on_response()

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:
        pass


async def _drive(framework: str, path: str, metrics: bool, requests: int) -> int:
    import web_app

    web = web_app.load_web(framework)
    app = web_app.build_app(web)
    if metrics:
        web_app.add_metrics(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    server = runner.server
    protocol = server()
    loop = asyncio.get_running_loop()
    data = REQUEST % path.encode()
    done = loop.create_future()

    def send() -> None:
        protocol.data_received(data)

    def on_response() -> None:
        # A keep-alive client: the next request goes out once the answer has begun to arrive.
        if transport.responses < requests:
            loop.call_soon(send)
        else:
            loop.call_soon(done.set_result, None)

    transport = _Transport(on_response)
    protocol.connection_made(transport)
    loop.call_soon(send)
    await done
    for _ in range(3):
        await asyncio.sleep(0)
    protocol.connection_lost(None)
    await runner.cleanup()
    return transport.written


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

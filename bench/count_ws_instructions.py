"""Instructions per WebSocket echo message, counted by callgrind: repeatable on a busy machine.

Runs ``bench/bench_ws.py``'s echo server (forkloop or aiohttp) under
``valgrind --tool=callgrind`` and loads it from a separate, uninstrumented process with
``bench_ws.py``'s own client (C connections, each sending N 32-byte text messages with W in
flight). Two runs, N and 3N messages per connection; the difference of the server's total
instruction counts divided by 2*N*C is the cost of one message, start-up and import cancelled
out. ``--annotate`` also prints the functions where the difference goes (callgrind_annotate).

    python bench/count_ws_instructions.py                      # forkloop, window 1
    python bench/count_ws_instructions.py --window 16
    python bench/count_ws_instructions.py --framework aiohttp
    python bench/count_ws_instructions.py --annotate 40        # top 40 functions per message
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
BENCH_WS = BENCH_DIR / "bench_ws.py"
HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(port: int, proc: subprocess.Popen[bytes], limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early with status {proc.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=5) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server not ready after {limit:.0f} s")


def _run(framework: str, messages: int, connections: int, window: int, out: Path) -> int:
    """Serve under callgrind, load it, stop it; return the total instructions counted."""
    port = _free_port()
    env = dict(os.environ, PYTHONHASHSEED="0")
    server = subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            str(BENCH_WS),
            "--serve",
            framework,
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        _wait_ready(port, server)
        subprocess.run(
            [
                sys.executable,
                str(BENCH_WS),
                "--client",
                "--port",
                str(port),
                "--connections",
                str(connections),
                "--messages",
                str(messages),
                "--window",
                str(window),
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    text = out.read_text(errors="replace")
    match = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.MULTILINE)
    if match is None:
        raise SystemExit(f"no instruction total in {out}")
    return int(match.group(1))


def _functions(path: Path) -> dict[str, int]:
    done = subprocess.run(
        ["callgrind_annotate", "--threshold=100", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, int] = {}
    for line in done.stdout.splitlines():
        match = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*)", line) or re.match(
            r"\s*([\d,]+)\s+(\S.*)", line
        )
        if match and "=>" not in line:
            name = match.group(2).split(" [")[0]
            found[name] = found.get(name, 0) + int(match.group(1).replace(",", ""))
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=("forkloop", "aiohttp"), default="forkloop")
    parser.add_argument("--messages", type=int, default=1000, help="N, per connection")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--window", type=int, default=1)
    parser.add_argument("--annotate", type=int, default=0, help="print the top K functions")
    parser.add_argument("--keep", metavar="DIR", help="keep the callgrind files in DIR")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.connections < 1 or args.window < 1:
        parser.error("--messages, --connections and --window must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(args.keep) if args.keep else Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        small = where / f"cg_{args.framework}_w{args.window}_1.out"
        large = where / f"cg_{args.framework}_w{args.window}_3.out"
        n = args.messages
        c = args.connections
        one = _run(args.framework, n, c, args.window, small)
        three = _run(args.framework, 3 * n, c, args.window, large)
        per = (three - one) / (2 * n * c)
        print(
            f"{args.framework} window {args.window}: {per:,.0f} instructions per message "
            f"({c} connections x {n} / {3 * n} messages)"
        )
        if args.annotate:
            a = _functions(small)
            b = _functions(large)
            diff = {k: (b.get(k, 0) - a.get(k, 0)) / (2 * n * c) for k in set(a) | set(b)}
            for name, value in sorted(diff.items(), key=lambda kv: -kv[1])[: args.annotate]:
                print(f"{value:8.0f}  {name[:150]}")


if __name__ == "__main__":
    main()

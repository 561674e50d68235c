"""Measure how requests spread over workers: ``python spread.py [--reuse-port] [--netns]``.

Starts ``forkloop serve`` with 4 workers on 127.0.0.1, runs 64 keep-alive connections of
``loadgen.py`` against it, stops the server, prints one JSON object with requests per worker
and ``max_over_mean``. With ``--netns`` it expects to run inside a fresh network namespace
(``unshare -n``): it brings ``lo`` up and sets ``net.ipv4.tcp_migrate_req=1`` there only, so
``--reuse-port`` can be measured without touching the host's settings.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
APP = """\
import os
import sys
from forkloop import web
served = 0
async def pid(request):
    global served
    served += 1
    return web.Response(text=f"{os.getpid()}\\n")
async def report(app):
    # One write(2) call: print() may write the text and the newline separately, and the
    # supervisor's log lines land in the same file between them (SERVED 123 50642 then
    # "2026-..." read as 506422026).
    os.write(2, f"SERVED {os.getpid()} {served}\\n".encode())
app = web.Application()
app.router.add_get("/pid", pid)
app.on_shutdown.append(report)
"""


def wait_for_log(path: Path, text: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text():
        if time.monotonic() > deadline:
            raise SystemExit(f"no {text!r} in the server log:\n{path.read_text()[-3000:]}")
        time.sleep(0.05)


def connections_per_process(port: str) -> list[int]:
    """Established connections on the server port, per owning process (``ss -tnp``)."""
    if shutil.which("ss") is None:
        return []
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    ).stdout
    counts = collections.Counter(re.findall(r"pid=(\d+)", out))
    return sorted(counts.values(), reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reuse-port", action="store_true")
    parser.add_argument("--netns", action="store_true")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--client", choices=("wrk", "python"), default="wrk")
    parser.add_argument("--reloads", type=int, default=0, help="HUPs sent during the load")
    args = parser.parse_args()
    if args.netns:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        Path("/proc/sys/net/ipv4/tcp_migrate_req").write_text("1\n")
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "spreadapp.py").write_text(APP)
        log_path = Path(folder, "serve.log")
        with open(log_path, "wb") as log:
            cmd = [
                sys.executable,
                "-m",
                "forkloop",
                "serve",
                "spreadapp:app",
                "-b",
                "127.0.0.1:0",
                "-w",
                str(args.workers),
                "--no-access-log",
            ]
            if args.reuse_port:
                cmd.append("--reuse-port")
            server = subprocess.Popen(
                cmd,
                cwd=folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        try:
            deadline = time.monotonic() + 20
            while "workers serving" not in log_path.read_text():
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"server did not start:\n{log_path.read_text()}")
                time.sleep(0.05)
            port = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log_path.read_text())
            assert port is not None
            url_port = port.group(1)
            connections: list[int] = []
            if args.client == "wrk":
                wrk = subprocess.Popen(
                    [
                        "wrk",
                        "-t2",
                        f"-c{args.connections}",
                        f"-d{args.duration}s",
                        "--timeout",
                        "10s",
                        f"http://127.0.0.1:{url_port}/pid",
                    ],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                time.sleep(args.duration / 2)
                connections = connections_per_process(url_port)
                for generation in range(2, 2 + args.reloads):  # rolling reloads under load
                    server.send_signal(signal.SIGHUP)
                    wait_for_log(log_path, f"reload complete: generation {generation},")
                out, _ = wrk.communicate(timeout=60)
                errors = re.search(r"Socket errors: .*", out)
                failed = sum(int(n) for n in re.findall(r"\d+", errors.group(0))) if errors else 0
                non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
                failed += int(non2xx.group(1)) if non2xx else 0
            else:
                stats = json.loads(
                    subprocess.run(
                        [
                            sys.executable,
                            str(HERE / "loadgen.py"),
                            "127.0.0.1",
                            url_port,
                            "--connections",
                            str(args.connections),
                            "--duration",
                            str(args.duration),
                        ],
                        capture_output=True,
                        text=True,
                        check=True,
                        timeout=60,
                    ).stdout
                )
                failed = stats["failed"]
                connections = sorted(stats["connections_by_pid"].values(), reverse=True)
        finally:
            server.send_signal(signal.SIGTERM)  # graceful: every worker reports what it served
            server.wait(30)
        text = log_path.read_text()
        served = [int(n) for n in re.findall(r"SERVED \d+ (\d+)", text)]
    counts = sorted(served, reverse=True)
    counts += [0] * (args.workers - len(counts))
    mean = sum(counts) / args.workers
    print(
        json.dumps(
            {
                "reuse_port": args.reuse_port,
                "per_worker": counts,
                "max_over_mean": round(counts[0] / mean, 3) if mean else None,
                "connections": connections,
                "failed": failed,
                "client": args.client,
                "reloads": args.reloads,
            }
        )
    )


if __name__ == "__main__":
    main()

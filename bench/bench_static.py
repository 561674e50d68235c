"""Static file download: forkloop vs aiohttp (and nginx where installed), 1 MB and 100 MB files.

Each server serves one directory through ``app.router.add_static`` (nginx: a minimal config with
``sendfile on``) in its own process pinned to CPU 0; wrk, pinned to CPU 1, downloads a 1 MB file
(16 connections) and a 100 MB file (2 connections). Rounds alternate between the servers; the
best round of each is kept. Reported: requests/s, MB/s and server CPU milliseconds per request
per server and file, and the MB/s ratios to aiohttp. The files are random bytes written to a
temporary directory for the run only.

    python bench/bench_static.py [--quick]

``measure()`` returns the figures as a dict for the bench harness (``bench/run.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    HOST,
    BenchError,
    ServerProcess,
    WrkConfig,
    find_wrk,
    free_port,
    pinned,
    run_wrk,
    write_lua_script,
)

PY = sys.executable
SCRIPT = str(Path(__file__).resolve())
FILES = {"1mb": (1 << 20, 16), "100mb": (100 << 20, 2)}  # name -> (size, wrk connections)

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
    server {{
        listen {host}:{port};
        location = / {{ return 200 "ok"; }}
        location /static/ {{ alias {root}/; }}
    }}
}}
"""


def serve(framework: str, port: int, root: str) -> None:
    """The static app (child process): ``/static`` -> ``root``, ``GET /`` -> ok."""
    if framework == "aiohttp":
        import uvloop
        from aiohttp import web

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        from forkloop import web  # type: ignore[no-redef]

    async def ready(request: Any) -> Any:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ready)
    app.router.add_static("/static", root)
    web.run_app(app, host=HOST, port=port, access_log=None, print=None)


def _cpus() -> tuple[int | None, int | None]:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) >= 2:
        return cpus[0], cpus[1]
    return None, None


def _make_files(root: Path) -> None:
    block = os.urandom(1 << 20)
    for name, (size, _) in FILES.items():
        path = root / f"{name}.bin"
        with path.open("wb") as f:
            for _ in range(size >> 20):
                f.write(block)
        path.chmod(0o644)


def _servers(root: Path, tmp: Path, cpu: int | None) -> dict[str, ServerProcess]:
    servers = {}
    for name in ("forkloop", "aiohttp"):
        port = free_port()
        command = functools.partial(_python_server, name, root, cpu)
        servers[name] = ServerProcess(name, command(port), port, command=command)
    nginx = shutil.which("nginx")
    if nginx is not None:
        port = free_port()
        command = functools.partial(_nginx, nginx, root, tmp, cpu)
        servers["nginx"] = ServerProcess("nginx", command(port), port, command=command)
    return servers


def _python_server(name: str, root: Path, cpu: int | None, port: int) -> list[str]:
    return pinned(cpu, [PY, SCRIPT, "--serve", name, str(port), str(root)])


def _nginx(nginx: str, root: Path, tmp: Path, cpu: int | None, port: int) -> list[str]:
    """nginx's argv for ``port``; its config file (which holds the port) is written here."""
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, host=HOST, port=port, root=root))
    # -e: the error log from the first moment (not /var/log/nginx), so it runs as anyone.
    argv = [nginx, "-e", str(tmp / "error.log"), "-c", str(conf), "-p", str(tmp)]
    return pinned(cpu, argv)


def measure(quick: bool = False) -> dict[str, Any]:
    """Interleaved wrk rounds per file size against each server; best round kept."""
    rounds = 1 if quick else 2
    duration_s = 1 if quick else 5
    server_cpu, client_cpu = _cpus()
    wrk = find_wrk(install=False)
    out: dict[str, Any] = {"rounds": rounds, "duration_s": duration_s}
    with tempfile.TemporaryDirectory(prefix="bench-static-") as tmpdir:
        tmp = Path(tmpdir)
        # nginx's workers drop root privileges: they must be able to read the files.
        tmp.chmod(0o755)
        root = tmp / "root"
        root.mkdir(mode=0o755)
        _make_files(root)
        config = WrkConfig(wrk=wrk, lua_script=write_lua_script(tmp), cpu=client_cpu)
        servers = _servers(root, tmp, server_cpu)
        best: dict[str, dict[str, dict[str, float]]] = {name: {} for name in servers}
        try:
            for server in servers.values():
                server.start()
                server.wait_ready()
            for _ in range(rounds):
                for fname, (_size, conns) in FILES.items():
                    for name, server in servers.items():
                        url = f"http://{HOST}:{server.port}/static/{fname}.bin"
                        cfg = WrkConfig(
                            wrk=config.wrk,
                            lua_script=config.lua_script,
                            connections=conns,
                            cpu=config.cpu,
                            timeout_s=30,
                        )
                        cpu_before = server.cpu_seconds()
                        res = run_wrk(cfg, url, duration_s)
                        cpu_s = server.cpu_seconds() - cpu_before
                        if res.errors or res.non_2xx:
                            raise BenchError(
                                f"{name} {fname}: {res.errors} errors, {res.non_2xx} non-2xx"
                            )
                        row = {
                            "rps": res.rps,
                            "mb_s": res.bytes / 1e6 / res.duration_s,
                            # Server CPU per request: steadier than req/s on a busy machine.
                            "cpu_ms_per_req": 1000 * cpu_s / max(res.requests, 1),
                        }
                        prev = best[name].get(fname)
                        if prev is None or row["mb_s"] > prev["mb_s"]:
                            best[name][fname] = row
        finally:
            for server in servers.values():
                server.stop()
    for name, rows in best.items():
        out[name] = {fname: {k: round(v, 1) for k, v in row.items()} for fname, row in rows.items()}
    out["ratio_to_aiohttp"] = {
        name: {
            fname: round(best[name][fname]["mb_s"] / best["aiohttp"][fname]["mb_s"], 2)
            for fname in FILES
        }
        for name in best
        if name != "aiohttp"
    }
    if "nginx" in best:
        out["ratio_to_nginx"] = {
            name: {
                fname: round(best[name][fname]["mb_s"] / best["nginx"][fname]["mb_s"], 2)
                for fname in FILES
            }
            for name in best
            if name != "nginx"
        }
    out["nginx"] = out.get("nginx", "not installed (apt-get install -y nginx)")
    out["nginx_version"] = _nginx_version()
    out.update(_rows_and_chart(best))
    return out


def _nginx_version() -> str | None:
    nginx = shutil.which("nginx")
    if nginx is None:
        return None
    done = subprocess.run([nginx, "-v"], capture_output=True, text=True, timeout=10, check=False)
    return (done.stderr or done.stdout).strip().removeprefix("nginx version: ") or None


def _rows_and_chart(best: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    """The table and the chart run.py shows: per file and server, MB/s, CPU, both ratios."""
    rows = []
    for fname in FILES:
        base = best.get("aiohttp", {}).get(fname)
        ref = best.get("nginx", {}).get(fname)
        for name, by_file in best.items():
            row = by_file.get(fname)
            if row is None:
                continue
            rows.append(
                {
                    "file": fname,
                    "server": name,
                    "MB/s": row["mb_s"],
                    "req/s": row["rps"],
                    "server CPU µs/req": row["cpu_ms_per_req"] * 1000,
                    "vs aiohttp": row["mb_s"] / base["mb_s"] if base else "n/a",
                    "vs nginx": row["mb_s"] / ref["mb_s"] if ref else "n/a",
                }
            )
    panels = [
        {
            "title": title,
            "unit": unit,
            "lower_is_better": lower,
            "groups": {
                fname: {name: scale * by_file[fname][key] for name, by_file in best.items()}
                for fname in FILES
            },
        }
        for key, title, unit, lower, scale in (
            ("mb_s", "throughput", "MB/s", False, 1),
            ("cpu_ms_per_req", "server CPU per request", "µs", True, 1000),
        )
    ]
    title = "Static files (1 MB: 16 connections; 100 MB: 2 connections)"
    return {"title": title, "rows": rows, "chart": {"title": title, "panels": panels}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--serve", nargs=3, metavar=("FRAMEWORK", "PORT", "ROOT"), help="internal")
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2])
        return
    result = measure(quick=args.quick)
    for name in ("forkloop", "aiohttp", "nginx"):
        rows = result.get(name)
        if not isinstance(rows, dict):
            print(f"{name:9s} {rows}")
            continue
        for fname, row in rows.items():
            print(
                f"{name:9s} {fname:6s} {row['rps']:9.1f} req/s {row['mb_s']:9.1f} MB/s "
                f"{row['cpu_ms_per_req']:9.2f} ms server CPU/req"
            )
    print(f"MB/s ratio to aiohttp: {result['ratio_to_aiohttp']}")


if __name__ == "__main__":
    main()

"""forkloop's side-by-side benchmark: what ``make bench`` runs (``python bench/run.py``).

It starts one process of each server — forkloop, forkloop with metrics (when
``forkloop.metrics.setup`` exists), aiohttp on uvloop, uvicorn with a raw ASGI app, and the
uvloop+httptools "ceiling" — each pinned to CPU 0 with taskset, loads them with wrk pinned to
CPU 1 in interleaved rounds (A B C D, A B C D, ... after a warm-up), and reports req/s (median of
rounds), p99 latency, server CPU per request and the ratio to aiohttp for plaintext (``GET /``)
and JSON (``GET /json``). Then it runs the other ``bench/bench_*.py`` scripts and folds their
``measure()`` results into the same report.

Output: Markdown on stdout, JSON in bench/results/, a PNG chart (docs/benchmarks.png) and, for a
full run, the results block of docs/benchmarks.md. Loopback only; every process it starts is
stopped by its PID (a benchmark script's process group) before it exits.

    python bench/run.py                  # full run: 5 s x 3 rounds, 64 connections
    python bench/run.py --quick          # a fast check that everything runs
    python bench/run.py --help
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report
from common import (
    BENCH_DIR,
    EXIT_UNSUPPORTED,
    HOST,
    PEERS_DIR,
    ROOT,
    BenchError,
    ServerExitedError,
    ServerProcess,
    WrkConfig,
    cpu_busy_seconds,
    find_wrk,
    free_port,
    http_get,
    load_average,
    machine_info,
    pinned,
    run_wrk,
    write_lua_script,
)

PY = sys.executable


# ---------------------------------------------------------------------------- the tests


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    content_type: str
    check: Callable[[bytes], bool]


SCENARIOS = {
    "plaintext": Scenario("plaintext", "/", "text/plain", lambda b: b == b"Hello, World!"),
    "json": Scenario(
        "json", "/json", "application/json", lambda b: json.loads(b) == {"message": "Hello, World!"}
    ),
}


# ---------------------------------------------------------------------------- the peers


@dataclass(frozen=True)
class Peer:
    key: str
    label: str
    scenarios: tuple[str, ...]
    command: Callable[[int], list[str]]


def _web_app(framework: str, *extra: str) -> Callable[[int], list[str]]:
    script = str(PEERS_DIR / "web_app.py")
    return lambda port: [
        PY,
        script,
        "--framework",
        framework,
        "--host",
        HOST,
        "--port",
        str(port),
        *extra,
    ]


def _uvicorn(port: int) -> list[str]:
    return [
        PY,
        "-m",
        "uvicorn",
        "asgi_app:app",
        "--app-dir",
        str(PEERS_DIR),
        "--host",
        HOST,
        "--port",
        str(port),
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        "--no-access-log",
        "--lifespan",
        "off",
        "--log-level",
        "warning",
    ]


def _ceiling(port: int) -> list[str]:
    return [PY, str(PEERS_DIR / "ceiling.py"), "--host", HOST, "--port", str(port)]


# Order = the order of every round. forkloop-metrics sits next to forkloop so the pair is
# measured back to back (its cost is read from per-round ratios).
PEERS: dict[str, Peer] = {
    p.key: p
    for p in (
        Peer("forkloop", "forkloop", ("plaintext", "json"), _web_app("forkloop")),
        Peer(
            "forkloop-metrics",
            "forkloop + metrics",
            ("plaintext",),
            _web_app("forkloop", "--metrics"),
        ),
        Peer("aiohttp", "aiohttp + uvloop", ("plaintext", "json"), _web_app("aiohttp")),
        Peer("uvicorn", "uvicorn (raw ASGI, httptools, uvloop)", ("plaintext", "json"), _uvicorn),
        Peer("ceiling", "ceiling (uvloop + httptools, canned)", ("plaintext", "json"), _ceiling),
    )
}


# ------------------------------------------------------------------------------ options


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Side-by-side HTTP benchmark of forkloop and its peers (make bench).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a fast check: 2 s runs, 1 round, 1 s warm-up; docs untouched",
    )
    parser.add_argument("-c", "--connections", type=int, default=64)
    parser.add_argument("-t", "--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "-d", "--duration", type=int, help="whole seconds per run (default 5; wrk takes integers)"
    )
    parser.add_argument("-r", "--rounds", type=int, help="interleaved rounds (default 3)")
    parser.add_argument("--warmup", type=int, help="warm-up seconds per server and test (2)")
    parser.add_argument(
        "--peers", default=",".join(PEERS), help=f"comma-separated subset of: {', '.join(PEERS)}"
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of: {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--no-pin", action="store_true", help="do not use taskset")
    parser.add_argument("--start-timeout", type=float, default=30.0)
    parser.add_argument(
        "--no-http",
        action="store_true",
        help="skip the plaintext/JSON runs (only the other benchmarks)",
    )
    parser.add_argument(
        "--extras", default="all", help="bench_*.py modules to run: 'all', 'none' or a comma list"
    )
    parser.add_argument(
        "--extra-timeout", type=float, default=900.0, help="seconds allowed to each other benchmark"
    )
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument(
        "--chart",
        type=Path,
        help="PNG path (default docs/benchmarks.png; results dir when --quick)",
    )
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--no-docs",
        action="store_true",
        help="leave docs/benchmarks.md alone (quick runs always do)",
    )
    parser.add_argument(
        "--no-install", action="store_true", help="never apt-get install wrk, only say how"
    )
    args = parser.parse_args(argv)
    args.duration = args.duration or (2 if args.quick else 5)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    args.peer_keys = _subset(parser, "--peers", args.peers, PEERS)
    args.scenario_names = _subset(parser, "--scenarios", args.scenarios, SCENARIOS)
    if min(args.connections, args.threads, args.rounds, args.duration) < 1 or args.warmup < 0:
        parser.error("connections, threads, rounds and duration must be positive")
    return args


def _subset(parser: argparse.ArgumentParser, flag: str, text: str, known: Any) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"{flag}: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    return [k for k in known if k in names]


# ------------------------------------------------------------------------------ running


class HttpBench:
    """Starts the peers, checks their answers, runs the interleaved wrk rounds, stops them."""

    def __init__(self, args: argparse.Namespace, wrk: WrkConfig, notes: list[str]) -> None:
        self.args = args
        self.wrk = wrk
        self.notes = notes
        self.servers: dict[str, ServerProcess] = {}
        self.peer_status: dict[str, dict[str, Any]] = {}
        self.skipped: dict[str, str] = {}
        self.runs: list[dict[str, Any]] = []
        self.server_cpu = None if args.no_pin else args.server_cpu

    def _log(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def _mark(self, key: str, status: str, note: str) -> None:
        self.peer_status[key]["status"] = status
        self.peer_status[key]["note"] = note
        self.skipped[key] = note
        self.notes.append(f"{PEERS[key].label}: {note}")
        self._log(f"  {key}: {status}: {note}")

    def start_all(self) -> None:
        for key in self.args.peer_keys:
            peer = PEERS[key]
            if not any(s in self.args.scenario_names for s in peer.scenarios):
                continue
            port = free_port()
            server = ServerProcess(key, pinned(self.server_cpu, peer.command(port)), port)
            self.peer_status[key] = {"label": peer.label, "argv": peer.command(port)}
            self._log(f"starting {key} on {HOST}:{port}")
            server.start()
            self.servers[key] = server
        for key, server in list(self.servers.items()):
            try:
                server.wait_ready(self.args.start_timeout)
                self._check_answers(key, server)
            except ServerExitedError as exc:
                del self.servers[key]
                server.stop()
                self.peer_status[key]["output"] = exc.output
                last = exc.output.splitlines()[-1].strip() if exc.output else "no output"
                if exc.returncode == EXIT_UNSUPPORTED:
                    self._mark(key, "skipped", last)
                else:
                    self._mark(key, "failed", f"did not start (exit {exc.returncode}): {last}")
            except BenchError as exc:
                del self.servers[key]
                server.stop()
                self._mark(key, "failed", str(exc))
            else:
                self.peer_status[key]["status"] = "ok"

    def _check_answers(self, key: str, server: ServerProcess) -> None:
        for name in PEERS[key].scenarios:
            scenario = SCENARIOS[name]
            status, headers, body = http_get(server.port, scenario.path)
            content_type = headers.get("content-type", "")
            try:
                body_ok = scenario.check(body)
            except ValueError:
                body_ok = False
            if status != 200 or not content_type.startswith(scenario.content_type) or not body_ok:
                raise BenchError(
                    f"wrong answer to GET {scenario.path}: {status} {content_type!r} {body[:60]!r}"
                )

    def _plan(self) -> list[tuple[str, str]]:
        return [
            (scenario, key)
            for scenario in self.args.scenario_names
            for key in PEERS
            if key in self.servers and scenario in PEERS[key].scenarios
        ]

    def _one(self, scenario: str, key: str, duration_s: int) -> dict[str, Any] | None:
        server = self.servers.get(key)
        if server is None:
            return None
        if server.proc is not None and server.proc.poll() is not None:
            del self.servers[key]
            self._mark(key, "failed", f"exited during the benchmark: {server.output_tail(3)}")
            return None
        url = f"http://{HOST}:{server.port}{SCENARIOS[scenario].path}"
        cpu_before = server.cpu_seconds()
        busy_before, total_before = cpu_busy_seconds(self.server_cpu or 0)
        try:
            result = run_wrk(self.wrk, url, duration_s)
        except BenchError as exc:
            del self.servers[key]
            server.stop()
            self._mark(key, "failed", f"{scenario}: {exc}")
            return None
        cpu_s = server.cpu_seconds() - cpu_before
        busy_after, total_after = cpu_busy_seconds(self.server_cpu or 0)
        data = result.as_dict()
        data["server_cpu_s"] = cpu_s
        data["cpu_us_per_req"] = cpu_s / result.requests * 1e6 if result.requests else math.nan
        # Share of the server's CPU that went to anything but the server during this run.
        elapsed = total_after - total_before
        others = (busy_after - busy_before - cpu_s) / elapsed if elapsed > 0 else math.nan
        data["others_on_server_cpu"] = max(0.0, others) if self.server_cpu is not None else None
        return data

    def run(self) -> None:
        args = self.args
        if args.warmup > 0:
            self._log(f"warm-up: {args.warmup:g} s per server and test")
            for scenario, key in self._plan():
                self._one(scenario, key, args.warmup)
        for round_no in range(1, args.rounds + 1):
            for scenario, key in self._plan():
                data = self._one(scenario, key, args.duration)
                if data is None:
                    continue
                data.update(round=round_no, scenario=scenario, peer=key)
                self.runs.append(data)
                self._log(
                    f"round {round_no}/{args.rounds} {scenario:9} {key:16} "
                    f"{data['rps']:>10,.0f} req/s  p99 {data['latency_p99_ms']:.2f} ms  "
                    f"{data['cpu_us_per_req']:.1f} µs CPU/req"
                )

    def stop_all(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()


def discover_extras(selection: str) -> list[str]:
    found = sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))
    if selection == "all":
        return found
    if selection == "none":
        return []
    wanted = [n.strip().removesuffix(".py") for n in selection.split(",") if n.strip()]
    return [n if n.startswith("bench_") else f"bench_{n}" for n in wanted]


def run_extra(
    name: str, quick: bool, timeout_s: float, workdir: Path, bench_dir: Path = BENCH_DIR
) -> dict[str, Any]:
    """One ``bench/bench_*.py`` in a child process with its own process group and a deadline."""
    if not (bench_dir / f"{name}.py").exists():
        return {"status": "missing", "error": f"{bench_dir / name}.py does not exist"}
    out = workdir / f"{name}.json"
    argv = [PY, str(BENCH_DIR / "extra_runner.py"), name, str(out), "--path", str(bench_dir)]
    if quick:
        argv.append("--quick")
    started = time.monotonic()
    with tempfile.TemporaryFile() as log:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group this child leads, nothing else
            proc.wait()
            return {"status": "timeout", "error": f"no result within {timeout_s:g} s"}
        finally:
            # Whatever the benchmark left running in its own group goes with it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
        log.seek(0)
        output = log.read().decode("utf-8", "replace").strip()
    elapsed = round(time.monotonic() - started, 1)
    if proc.returncode != 0 or not out.exists():
        tail = " / ".join(output.splitlines()[-3:])
        return {"status": "failed", "error": f"exit {proc.returncode}: {tail}", "seconds": elapsed}
    try:
        result = json.loads(out.read_text())
    except ValueError as exc:
        return {"status": "failed", "error": f"bad JSON from measure(): {exc}"}
    return {"status": "ok", "seconds": elapsed, "result": result}


# ------------------------------------------------------------------------------- output


def noise_notes(machine: dict[str, Any], runs: list[dict[str, Any]]) -> list[str]:
    """Say when the figures were taken on a busy machine (other work on the server's CPU)."""
    notes = []
    shares = [r["others_on_server_cpu"] for r in runs if r.get("others_on_server_cpu") is not None]
    if shares:
        worst, typical = max(shares), sorted(shares)[len(shares) // 2]
        line = (
            f"other processes took {typical:.0%} (median) and up to {worst:.0%} of the server's "
            "CPU during the runs"
        )
        if worst > 0.05:
            notes.append(f"{line}: the machine was not quiet; treat these figures as provisional")
        else:
            notes.append(f"{line}: a quiet machine")
    load = machine["load_average"][0]
    if load > 0.5:
        notes.append(f"load average was {load:.2f} when the run started")
    return notes


def write_results(results: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = results["started_at"].replace(":", "").replace("-", "")
    path = directory / f"bench-{stamp}{'-quick' if results['settings']['quick'] else ''}.json"
    text = json.dumps(results, indent=2, default=str)
    path.write_text(text)
    (directory / "latest.json").write_text(text)
    return path


def publish(args: argparse.Namespace, results: dict[str, Any], text: str) -> None:
    """Chart and docs: a full run refreshes docs/; a quick run only writes under results/."""
    if not args.no_chart and results["summary"]:
        default = (
            args.results_dir / "benchmarks-quick.png"
            if args.quick
            else ROOT / "docs" / "benchmarks.png"
        )
        path = report.chart(results, args.chart or default)
        shown = path or "skipped (matplotlib is missing: pip install matplotlib)"
        print(f"chart: {shown}", file=sys.stderr)
    if args.quick or args.no_docs:
        return
    if "forkloop" not in results["summary"].get("plaintext", {}):
        print(f"{args.docs}: not updated (forkloop was not measured)", file=sys.stderr)
        return
    if args.docs.exists() and report.update_docs(args.docs, text):
        print(f"{args.docs}: results block updated", file=sys.stderr)
    else:
        print(f"{args.docs}: not updated (no {report.DOCS_BEGIN} block)", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now(dt.UTC).replace(microsecond=0)
    notes: list[str] = []
    machine: dict[str, Any]
    http: HttpBench | None = None
    with tempfile.TemporaryDirectory(prefix="forkloop-bench-") as tmp:
        workdir = Path(tmp)
        if not args.no_http:
            try:
                wrk_path = find_wrk(install=not args.no_install)
            except BenchError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            cpus = os.sched_getaffinity(0)
            if not args.no_pin and not {args.server_cpu, args.client_cpu} <= cpus:
                print(
                    f"error: CPUs {args.server_cpu} and {args.client_cpu} are not both "
                    f"available (have {sorted(cpus)}); use --server-cpu/--client-cpu or --no-pin",
                    file=sys.stderr,
                )
                return 2
            if not args.no_pin and args.server_cpu == args.client_cpu:
                notes.append("server and wrk share one CPU: figures are not comparable with docs")
            wrk = WrkConfig(
                wrk=wrk_path,
                lua_script=write_lua_script(workdir),
                connections=args.connections,
                threads=args.threads,
                cpu=None if args.no_pin else args.client_cpu,
            )
            machine = machine_info(wrk_path)
            http = HttpBench(args, wrk, notes)
            try:
                http.start_all()
                http.run()
            except KeyboardInterrupt:
                print("interrupted: stopping the servers", file=sys.stderr)
                return 130
            finally:
                http.stop_all()
        else:
            machine = machine_info()
        extras: dict[str, Any] = {}
        for name in discover_extras(args.extras):
            print(f"running {name} ...", file=sys.stderr, flush=True)
            extras[name] = run_extra(name, args.quick, args.extra_timeout, workdir)
            print(f"  {name}: {extras[name]['status']}", file=sys.stderr)

    runs = http.runs if http else []
    summary = report.summarize(runs)
    skipped = http.skipped if http else {}
    results: dict[str, Any] = {
        "schema": 1,
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "finished_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "command": shlex.join(
            ["python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "settings": {
            "quick": args.quick,
            "connections": args.connections,
            "threads": args.threads,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "pin": not args.no_pin,
            "server_cpu": args.server_cpu,
            "client_cpu": args.client_cpu,
            "scenarios": args.scenario_names,
        },
        "machine": machine,
        "load_average_end": load_average(),
        "peers": {k: v for k, v in (http.peer_status if http else {}).items()},
        "runs": runs,
        "summary": summary,
        "checks": report.checks(summary, runs, skipped),
        "notes": notes,
        "extras": extras,
    }
    notes.extend(noise_notes(machine, runs))
    text = report.markdown(results)
    path = write_results(results, args.results_dir)
    print(text)
    print(f"results: {path}", file=sys.stderr)
    publish(args, results, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

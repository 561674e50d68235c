"""forkloop's side-by-side benchmark: what ``make bench`` runs (``python bench/run.py``).

It starts one process of each server — forkloop, forkloop with metrics (when
``forkloop.metrics.setup`` exists), aiohttp on uvloop, uvicorn with a raw ASGI app, and the
uvloop+httptools "ceiling" — each pinned to CPU 0 with taskset, loads them with wrk pinned to
CPU 1 in interleaved rounds (A B C D, A B C D, ... after a warm-up), and reports req/s (median of
rounds), p99 latency, server CPU per request and the ratio to aiohttp for plaintext (``GET /``)
and JSON (``GET /json``). Then it runs the other ``bench/bench_*.py`` scripts and folds their
``measure()`` results into the same report: routing, uploads, static files (with nginx),
WebSocket echo and its system calls per message, connection-per-request, TLS keep-alive, the
1,000-connection idle+active mix, latency at a fixed offered rate and multi-worker (issue 17),
overload at 3x capacity with and without protection (issue 18);
``--extras connclose,tls`` picks some, ``--extras none`` none. granian RSGI and ASGI run as peers
here too (skipped with the reason when granian is not installed).

Output: Markdown on stdout, JSON in bench/results/, a PNG chart (docs/benchmarks.png) and, for a
full run, the results block of docs/benchmarks.md. Loopback only; every process it starts is
stopped by its PID (a benchmark script's process group) before it exits.

    python bench/run.py                  # full run: 5 s x 5 rounds, 64 connections
    python bench/run.py --quick          # a fast check that everything runs
    python bench/run.py --help
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import json
import math
import os
import resource
import shlex
import signal
import statistics
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
LOOP_LINE = "bench-peer event loop: "  # printed by peers/web_app.py at startup
# Below this median share of its CPU, a server was not the bottleneck of its run.
UNSATURATED_BUSY = 0.85


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


def _granian(interface: str) -> Callable[[int], list[str]]:
    """granian (Rust HTTP core) on a raw app: one worker, one runtime thread, uvloop."""
    script = str(PEERS_DIR / "granian_peer.py")
    return lambda port: [
        PY, script, "--interface", interface, "--host", HOST, "--port", str(port),
    ]  # fmt: skip


def _ceiling(port: int) -> list[str]:
    return [PY, str(PEERS_DIR / "ceiling.py"), "--host", HOST, "--port", str(port)]


both = ("plaintext", "json")
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
        Peer("granian-rsgi", "granian RSGI (raw app, 1 thread)", both, _granian("rsgi")),
        Peer("granian-asgi", "granian ASGI (raw app, 1 thread)", both, _granian("asgi")),
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
    parser.add_argument(
        "-c", "--connections", type=int, default=64, help="wrk connections (default 64)"
    )
    parser.add_argument("-t", "--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument(
        "-d", "--duration", type=int, help="whole seconds per run (default 5; wrk takes integers)"
    )
    parser.add_argument("-r", "--rounds", type=int, help="interleaved rounds (default 5)")
    parser.add_argument("--warmup", type=int, help="warm-up seconds per server and test (2)")
    parser.add_argument(
        "--peers", default=",".join(PEERS), help=f"comma-separated subset of: {', '.join(PEERS)}"
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of: {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU of the servers (0)")
    parser.add_argument("--client-cpu", type=int, default=1, help="CPU of wrk (1)")
    parser.add_argument("--no-pin", action="store_true", help="do not use taskset")
    parser.add_argument(
        "--start-timeout", type=float, default=30.0, help="seconds a server has to answer (30)"
    )
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
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=BENCH_DIR / "results",
        help="JSON results (bench/results)",
    )
    parser.add_argument(
        "--chart",
        type=Path,
        help="PNG path (default docs/benchmarks.png; results dir when --quick)",
    )
    parser.add_argument("--no-chart", action="store_true", help="write no PNG chart")
    parser.add_argument(
        "--docs",
        type=Path,
        default=ROOT / "docs" / "benchmarks.md",
        help="page whose results block a full run refreshes",
    )
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
    args.rounds = args.rounds or (1 if args.quick else 5)
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


def children_cpu_seconds() -> float:
    """CPU seconds of our waited-for children (each wrk run, once it has ended)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def others_share(before: tuple[float, float], after: tuple[float, float], ours_s: float) -> float:
    """Share of one CPU's time between two /proc/stat readings spent on work that is not ours."""
    elapsed = after[1] - before[1]
    if not elapsed > 0:
        return math.nan
    return min(1.0, max(0.0, (after[0] - before[0] - ours_s) / elapsed))


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
        self.client_cpu = None if args.no_pin else args.client_cpu

    def _log(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def _mark(self, key: str, status: str, note: str) -> None:
        self.peer_status[key]["status"] = status
        self.peer_status[key]["note"] = note
        self.skipped[key] = note
        self.notes.append(f"{PEERS[key].label}: {note}")
        self._log(f"  {key}: {status}: {note}")

    def _start(self, key: str) -> ServerProcess:
        peer = PEERS[key]
        port = free_port()
        command = functools.partial(self._command, peer)
        server = ServerProcess(key, command(port), port, command=command)
        self.peer_status[key] = {"label": peer.label, "argv": peer.command(port)}
        self._log(f"starting {key} on {HOST}:{port}")
        server.start()
        self.servers[key] = server
        return server

    def _command(self, peer: Peer, port: int) -> list[str]:
        return pinned(self.server_cpu, peer.command(port))

    def _wait_ready(self, key: str, server: ServerProcess) -> None:
        """Ready on its port; when another process took the port first, wait_ready started
        the server on a fresh one, and the recorded argv says which."""
        server.wait_ready(self.args.start_timeout)
        self.peer_status[key]["argv"] = PEERS[key].command(server.port)

    def start_all(self) -> None:
        for key in self.args.peer_keys:
            if any(s in self.args.scenario_names for s in PEERS[key].scenarios):
                self._start(key)
        for key, server in list(self.servers.items()):
            try:
                self._wait_ready(key, server)
                self._check_answers(key, server)
            except ServerExitedError as exc:
                self.servers.pop(key, server).stop()
                self.peer_status[key]["output"] = exc.output
                last = exc.output.splitlines()[-1].strip() if exc.output else "no output"
                if exc.returncode == EXIT_UNSUPPORTED:
                    self._mark(key, "skipped", last)
                else:
                    self._mark(key, "failed", f"did not start (exit {exc.returncode}): {last}")
            except (BenchError, OSError, ValueError) as exc:
                self.servers.pop(key, server).stop()
                said = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
                self._mark(key, "failed", said)
            else:
                self.peer_status[key]["status"] = "ok"
                self._check_loop(key, server)

    def _check_loop(self, key: str, server: ServerProcess) -> None:
        """Record the event loop the aiohttp/forkloop app reported; both must be on uvloop."""
        for line in server.output_tail(50).splitlines():
            if line.startswith(LOOP_LINE):
                loop = line[len(LOOP_LINE) :].strip()
                self.peer_status[key]["event_loop"] = loop
                if not loop.startswith("uvloop"):
                    self.notes.append(f"{PEERS[key].label} runs on {loop}, not uvloop")

    def _check_answers(self, key: str, server: ServerProcess) -> None:
        for name in PEERS[key].scenarios:
            scenario = SCENARIOS[name]
            status, headers, body = http_get(server.port, scenario.path)
            # Kept in the results: responses of different sizes are not the same work.
            self.peer_status[key].setdefault("response_headers", {})[name] = headers
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
        url = f"http://{HOST}:{server.port}{SCENARIOS[scenario].path}"
        wrk_before = children_cpu_seconds()
        server_cpu_before = cpu_busy_seconds(self.server_cpu or 0)
        client_cpu_before = cpu_busy_seconds(self.client_cpu or 0)
        try:
            # cpu_seconds: BenchError if the server exited before or during the run.
            cpu_before = server.cpu_seconds()
            result = run_wrk(self.wrk, url, duration_s)
            cpu_s = server.cpu_seconds() - cpu_before
        except BenchError as exc:
            del self.servers[key]
            server.stop()
            self._mark(key, "failed", f"{scenario}: {exc}")
            return None
        wrk_s = children_cpu_seconds() - wrk_before
        data = result.as_dict()
        data["server_cpu_s"] = cpu_s
        data["cpu_us_per_req"] = cpu_s / result.requests * 1e6 if result.requests else math.nan
        data["server_busy"] = cpu_s / result.duration_s if result.duration_s else math.nan
        data["bytes_per_response"] = result.bytes / result.requests if result.requests else None
        data["wrk_cpu_s"] = wrk_s
        data["server_rss_mib"] = server.rss_mib()
        # Shares of the server's and wrk's CPUs that went to other work during this run.
        pinned_cpus = self.server_cpu is not None and self.client_cpu is not None
        data["others_on_server_cpu"] = (
            others_share(server_cpu_before, cpu_busy_seconds(self.server_cpu or 0), cpu_s)
            if pinned_cpus
            else None
        )
        data["others_on_client_cpu"] = (
            others_share(client_cpu_before, cpu_busy_seconds(self.client_cpu or 0), wrk_s)
            if pinned_cpus
            else None
        )
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
    parts = []
    medians = report.noise(runs)
    for field, whose in (
        ("others_on_server_cpu", "the server's"),
        ("others_on_client_cpu", "wrk's"),
    ):
        if field in medians:
            worst = max(r[field] for r in runs if r.get(field) is not None)
            parts.append(f"{medians[field]:.0%} (median; up to {worst:.0%}) of {whose} CPU")
    if parts:
        verdict = (
            "the machine was not quiet: treat req/s as provisional and compare CPU per request"
            if report.is_noisy(runs)
            else "a quiet machine"
        )
        notes.append(f"other processes took {' and '.join(parts)} during the runs: {verdict}")
    busy: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        busy.setdefault((run["scenario"], run["peer"]), []).append(run["server_busy"])
    idle = [
        f"{peer} {scenario} {statistics.median(values):.0%}"
        for (scenario, peer), values in busy.items()
        if statistics.median(values) < UNSATURATED_BUSY
    ]
    if idle:
        notes.append(
            f"servers busy less than {UNSATURATED_BUSY:.0%} of their runs (they waited on wrk or "
            f"for their CPU, so their req/s understates them): {', '.join(idle)}"
        )
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


def workload_charts(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """One chart per other benchmark whose result has a ``chart`` entry (see
    ``report.workload_chart``): docs/benchmarks-<name>.png on a full run, else in results/."""
    directory = args.results_dir if args.quick or args.no_docs else ROOT / "docs"
    for name, entry in results["extras"].items():
        result = entry.get("result")
        if entry.get("status") != "ok" or not isinstance(result, dict):
            continue
        path = directory / f"benchmarks-{name.removeprefix('bench_')}.png"
        if report.workload_chart(result, path) is not None:
            print(f"chart: {path}", file=sys.stderr)


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
    if not args.no_chart:
        workload_charts(args, results)
    if args.quick or args.no_docs:
        return
    if "forkloop" not in results["summary"].get("plaintext", {}):
        print(f"{args.docs}: not updated (forkloop was not measured)", file=sys.stderr)
        return
    if args.docs.exists() and report.update_docs(args.docs, text):
        print(f"{args.docs}: results block updated", file=sys.stderr)
    else:
        print(f"{args.docs}: not updated (no {report.DOCS_BEGIN} block)", file=sys.stderr)


def prepare_wrk(args: argparse.Namespace, workdir: Path, notes: list[str]) -> WrkConfig:
    """Find (or install) wrk and check the CPUs to pin to; BenchError says what is wrong."""
    wrk_path = find_wrk(install=not args.no_install)
    cpus = os.sched_getaffinity(0)
    if not args.no_pin and not {args.server_cpu, args.client_cpu} <= cpus:
        raise BenchError(
            f"CPUs {args.server_cpu} and {args.client_cpu} are not both available "
            f"(have {sorted(cpus)}); use --server-cpu/--client-cpu or --no-pin"
        )
    if not args.no_pin and args.server_cpu == args.client_cpu:
        notes.append("server and wrk share one CPU: figures are not comparable with docs")
    return WrkConfig(
        wrk=wrk_path,
        lua_script=write_lua_script(workdir),
        connections=args.connections,
        threads=args.threads,
        cpu=None if args.no_pin else args.client_cpu,
    )


def assemble(
    args: argparse.Namespace,
    argv: Sequence[str] | None,
    started: dt.datetime,
    machine: dict[str, Any],
    http: HttpBench | None,
    extras: dict[str, Any],
    notes: list[str],
) -> dict[str, Any]:
    """Everything one run found, as the JSON-ready dict the report is made from."""
    runs = http.runs if http else []
    summary = report.summarize(runs)
    notes.extend(noise_notes(machine, runs))
    return {
        "schema": 1,
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "finished_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "command": shlex.join(
            ["python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "settings": {
            "quick": args.quick,
            "http": not args.no_http,
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
        "peers": dict(http.peer_status) if http else {},
        "runs": runs,
        "summary": summary,
        "checks": report.checks(summary, runs, http.skipped if http else {}),
        "notes": notes,
        "extras": extras,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now(dt.UTC).replace(microsecond=0)
    notes: list[str] = []
    http: HttpBench | None = None
    extras: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="forkloop-bench-") as tmp:
        workdir = Path(tmp)
        try:
            if args.no_http:
                machine = machine_info()
            else:
                wrk = prepare_wrk(args, workdir, notes)
                machine = machine_info(wrk.wrk)
                http = HttpBench(args, wrk, notes)
                try:
                    http.start_all()
                    http.run()
                finally:
                    http.stop_all()
            for name in discover_extras(args.extras):
                print(f"running {name} ...", file=sys.stderr, flush=True)
                extras[name] = run_extra(name, args.quick, args.extra_timeout, workdir)
                print(f"  {name}: {extras[name]['status']}", file=sys.stderr)
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted: every process the run started has been stopped", file=sys.stderr)
            return 130
    results = assemble(args, argv, started, machine, http, extras, notes)
    text = report.markdown(results)
    path = write_results(results, args.results_dir)
    print(text)
    print(f"results: {path}", file=sys.stderr)
    publish(args, results, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared helpers of the benchmark harness: pinned server processes, wrk, machine facts.

``bench/run.py`` uses these; the other ``bench/bench_*.py`` scripts may too (import ``common``
with ``bench/`` on ``sys.path``, which is the case when a script under ``bench/`` is run).
Everything here talks to loopback only and stops only the processes it started, by PID.
Standard library only: the harness must start even where forkloop itself is broken.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PEERS_DIR = BENCH_DIR / "peers"
HOST = "127.0.0.1"
PORT_ATTEMPTS = 3  # starts of a server on a fresh port when another process took its port

# Exit status a peer app uses to say "this variant does not exist yet" (e.g. no
# forkloop.metrics.setup): the harness reports a skip with a note instead of a failure.
EXIT_UNSUPPORTED = 3


class BenchError(Exception):
    """A benchmark step failed; the message is one line meant for the person running it."""


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago (the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(cpu: int | None, argv: Sequence[str]) -> list[str]:
    """``argv`` run under ``taskset -c CPU`` (taskset execs, so the PID stays the program's)."""
    if cpu is None:
        return list(argv)
    taskset = shutil.which("taskset")
    if taskset is None:
        raise BenchError("taskset is missing (Debian package util-linux); cannot pin CPUs")
    return [taskset, "-c", str(cpu), *argv]


def client_tls_context() -> ssl.SSLContext:
    """A TLS client context for our own loopback servers and their run-time self-signed cert."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def http_get(
    port: int, path: str, timeout_s: float = 2.0, tls: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 GET over a fresh loopback connection: (status, headers, body).

    A deliberately small client (Content-Length bodies only) so the readiness check depends on
    nothing but the standard library and exercises the server's real socket. ``tls`` speaks
    HTTPS without verifying the certificate (the benchmark's own self-signed one).
    """
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n"
    with socket.create_connection((HOST, port), timeout=timeout_s) as raw_sock:
        sock = client_tls_context().wrap_socket(raw_sock) if tls else raw_sock
        sock.sendall(request.encode("ascii"))
        chunks: list[bytes] = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ssl.SSLEOFError:  # a TLS peer that closes without close_notify
                break
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise BenchError(f"incomplete HTTP response from port {port}: {raw[:80]!r}")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    if length is not None:
        body = body[: int(length)]
    return status, headers, body


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far (from /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    # The command name (field 2) may contain spaces; fields after the last ')' are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of the line)
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_busy_seconds(cpu: int) -> tuple[float, float]:
    """(busy, total) seconds CPU ``cpu`` has spent since boot, from /proc/stat.

    Busy counts everything but idle and iowait, steal included: on a shared or virtual machine
    a run during which other work took the server's CPU is not a clean measurement, and the
    harness reports how much of the CPU others used.
    """
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return (float("nan"), float("nan"))
    prefix = f"cpu{cpu} "
    for line in lines:
        if line.startswith(prefix):
            ticks = [int(v) for v in line.split()[1:9]]
            idle = ticks[3] + ticks[4]
            hz = os.sysconf("SC_CLK_TCK")
            return ((sum(ticks) - idle) / hz, sum(ticks) / hz)
    return (float("nan"), float("nan"))


def descendants(pid: int) -> list[int]:
    """PIDs of every live descendant of ``pid`` (workers of a master), from /proc children."""
    found: list[int] = []
    todo = [pid]
    while todo and len(found) < 4096:  # bounded: a fork bomb is not ours to follow
        parent = todo.pop()
        try:
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            found.extend(kids)
            todo.extend(kids)
    return found


def listener_inodes(port: int, host: str = HOST) -> set[int] | None:
    """Inodes of every TCP socket listening on ``host:port`` or on that port of every address
    (IPv4 or dual-stack IPv6), from /proc/net/tcp and tcp6; None when /proc cannot tell."""
    packed = socket.inet_aton(host)[::-1].hex().upper()  # /proc shows the address little-endian
    tables = {
        "tcp": {f"{packed}:{port:04X}", f"{'0' * 8}:{port:04X}"},
        "tcp6": {f"{'0' * 32}:{port:04X}"},
    }
    inodes: set[int] = set()
    for table, addresses in tables.items():
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            if table == "tcp":
                return None
            continue  # no IPv6 here
        for line in lines:
            fields = line.split()
            # sl, local_address, rem_address, st (0A: LISTEN), ..., inode (the 10th)
            if len(fields) > 9 and fields[3] == "0A" and fields[1] in addresses:
                inodes.add(int(fields[9]))
    return inodes


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets ``pid`` holds open (its /proc/PID/fd links ``socket:[N]``)."""
    found: set[int] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return found
    for fd in fds:
        with contextlib.suppress(OSError):
            link = os.readlink(fd)
            if link.startswith("socket:["):
                found.add(int(link[8:-1]))
    return found


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (tells a PID's reuse apart)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its live descendants (a master and its workers)."""
    total = proc_cpu_seconds(pid)
    for child in descendants(pid):
        used = proc_cpu_seconds(child)
        if used == used:  # a child that just ended reads NaN: skip it
            total += used
    return total


def proc_rss_mib(pid: int) -> float:
    """Resident set size of the process in MiB (VmRSS of /proc/PID/status)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


@dataclass
class ServerProcess:
    """One server started by the harness, known by its PID; stopped by that PID only."""

    name: str
    argv: list[str]
    port: int
    cwd: Path = ROOT
    env: dict[str, str] | None = None
    tls: bool = False  # answers HTTPS: readiness probes speak TLS
    # The argv for a given port. Given, wait_ready starts the server again on a fresh port when
    # another process bound its port first (free_port() only says the port *was* free).
    command: Callable[[int], list[str]] | None = None
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError(f"{self.name} is not running")
        return self.proc.pid

    def start(self) -> None:
        self.log = tempfile.TemporaryFile(prefix=f"bench-{self.name}-")  # noqa: SIM115
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        # Benchmark the working tree's forkloop, whatever else is installed.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output_tail(self, lines: int = 8) -> str:
        if self.log is None:
            return ""
        self.log.flush()
        self.log.seek(0)
        text = self.log.read().decode("utf-8", "replace").strip()
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout_s: float = 20.0, path: str = "/") -> None:
        """Poll until this server answers ``GET path`` with 200 on its port; raise BenchError
        with the server's output if not. With ``command``, a server that exits because its port
        was taken is started again on a fresh one (``port`` and ``argv`` change), up to
        ``PORT_ATTEMPTS`` times in all."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._wait_ready(timeout_s, path)
            except ServerExitedError as exc:
                if self.command is None or not exc.port_taken or attempt == PORT_ATTEMPTS:
                    raise
                self.stop()
                self.port = free_port()
                self.argv = self.command(self.port)
                self.start()
            else:
                return

    def _wait_ready(self, timeout_s: float, path: str) -> None:
        deadline = time.monotonic() + timeout_s
        last_error = "no answer"
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise ServerExitedError(self.name, code, self.output_tail())
            try:
                status, _, _ = http_get(self.port, path, timeout_s=1.0, tls=self.tls)
            except (OSError, BenchError, ValueError, IndexError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if status == 200 and self.listens():
                    return
                # Another process listening on our port (it took the port between
                # free_port() and our bind) answers for us: not ready; ours is about to exit
                # with "address already in use".
                last_error = f"status {status}" if status != 200 else "port held by another process"
            time.sleep(0.05)
        raise BenchError(
            f"{self.name} did not answer GET {path} on port {self.port} within {timeout_s:g} s "
            f"({last_error}); output:\n{self.output_tail()}"
        )

    def listens(self) -> bool:
        """Every socket listening on the port is held by this server or one of its workers
        (taken as so where /proc has no socket table)."""
        listeners = listener_inodes(self.port)
        if listeners is None:
            return True
        if not listeners:
            return False
        held: set[int] = set()
        for pid in (self.pid, *descendants(self.pid)):
            held |= socket_inodes(pid)
        return listeners <= held

    def cpu_seconds(self) -> float:
        """CPU seconds of the server and its workers (granian runs its app in a child).

        BenchError once the server has ended: its count stopped, and whatever may still answer
        on its port is not it, so no figure taken around a load may use it."""
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            last = self.output_tail(1) or "no output"
            raise BenchError(f"{self.name} exited (status {code}) during the benchmark: {last}")
        return tree_cpu_seconds(self.pid)

    def rss_mib(self) -> float:
        """Resident MiB of the server and its workers together."""
        return proc_rss_mib(self.pid) + sum(
            rss for rss in map(proc_rss_mib, descendants(self.pid)) if rss == rss
        )

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``; only this PID, then any of its workers
        (known by PID and start time before the stop) that outlived it."""
        proc = self.proc
        workers = {pid: _start_time(pid) for pid in descendants(proc.pid)} if proc else {}
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout_s)
        for pid, started in workers.items():
            if started is not None and _start_time(pid) == started:  # the same process
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self.log is not None:
            self.log.close()
            self.log = None


class ServerExitedError(BenchError):
    """The server process ended before it became ready."""

    def __init__(self, name: str, returncode: int | None, output: str) -> None:
        self.name = name
        self.returncode = returncode
        self.output = output
        last = output.splitlines()[-1] if output else "no output"
        super().__init__(f"{name} exited with status {returncode} before serving: {last}")

    @property
    def port_taken(self) -> bool:
        """It exited because another process had bound its port (every peer says so in these
        words: Python's OSError, granian's Rust io::Error)."""
        return "address already in use" in self.output.lower()


# --------------------------------------------------------------------------------- wrk

# wrk calls done() once at the end; print one machine-readable line so nothing depends on
# the layout of wrk's human report. Latencies are in microseconds.
WRK_LUA = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\": %d, \\"duration_us\\": %d, \\"bytes\\": %d, " ..
    "\\"errors_connect\\": %d, \\"errors_read\\": %d, \\"errors_write\\": %d, " ..
    "\\"errors_status\\": %d, \\"errors_timeout\\": %d, \\"latency_mean_us\\": %.1f, " ..
    "\\"latency_p50_us\\": %d, \\"latency_p90_us\\": %d, \\"latency_p99_us\\": %d, " ..
    "\\"latency_max_us\\": %d}\\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, latency.mean,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    bytes: int
    errors: int
    non_2xx: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "duration_s": self.duration_s,
            "bytes": self.bytes,
            "errors": self.errors,
            "non_2xx": self.non_2xx,
            "rps": self.rps,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "latency_max_ms": self.latency_max_ms,
        }


def parse_wrk_output(text: str) -> WrkResult:
    """Read the line our Lua ``done()`` printed; BenchError when wrk printed none."""
    for line in text.splitlines():
        if line.startswith("WRKJSON "):
            data = json.loads(line[len("WRKJSON ") :])
            socket_errors = sum(
                int(data[k]) for k in ("errors_connect", "errors_read", "errors_write")
            ) + int(data["errors_timeout"])
            return WrkResult(
                requests=int(data["requests"]),
                duration_s=int(data["duration_us"]) / 1e6,
                bytes=int(data["bytes"]),
                errors=socket_errors,
                non_2xx=int(data["errors_status"]),
                latency_p50_ms=int(data["latency_p50_us"]) / 1000,
                latency_p99_ms=int(data["latency_p99_us"]) / 1000,
                latency_max_ms=int(data["latency_max_us"]) / 1000,
            )
    raise BenchError("wrk printed no result line; its output was:\n" + text.strip()[-600:])


def find_wrk(install: bool = True) -> str:
    """The wrk binary; installed with apt-get when missing and we are root, else a clear error."""
    path = shutil.which("wrk")
    if path:
        return path
    apt = shutil.which("apt-get")
    if install and apt and os.geteuid() == 0:
        print("wrk is not installed; installing it with apt-get (Debian package wrk) ...")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install_wrk = [apt, "install", "-y", "-q", "wrk"]
        # The package lists may be missing on a fresh machine: update once, then retry.
        for argv in (install_wrk, [apt, "update", "-q"], install_wrk):
            subprocess.run(argv, env=env, check=False, timeout=600, stdout=subprocess.DEVNULL)
            path = shutil.which("wrk")
            if path:
                return path
    raise BenchError(
        "wrk is not installed. Install it with `sudo apt-get install -y wrk` "
        "(Debian/Ubuntu; on macOS `brew install wrk`), then rerun `make bench`."
    )


@dataclass(frozen=True)
class WrkConfig:
    wrk: str
    lua_script: Path
    connections: int = 64
    threads: int = 1
    cpu: int | None = 1
    timeout_s: float = 5.0


def write_lua_script(directory: Path) -> Path:
    path = directory / "wrk_report.lua"
    path.write_text(WRK_LUA)
    return path


def run_wrk(config: WrkConfig, url: str, duration_s: int, headers: Sequence[str] = ()) -> WrkResult:
    """One wrk run against ``url`` on loopback, pinned to ``config.cpu``; bounded in time.

    wrk only takes whole seconds for its duration. ``headers`` ("Name: value") are sent with
    every request; ``Connection: close`` makes wrk open a new connection per request.
    """
    if not url.startswith((f"http://{HOST}:", f"https://{HOST}:")):
        raise BenchError(f"refusing to load a non-loopback URL: {url}")
    argv = pinned(
        config.cpu,
        [
            config.wrk,
            "-t",
            str(config.threads),
            "-c",
            str(max(config.connections, config.threads)),
            "-d",
            f"{int(duration_s)}s",
            "--timeout",
            f"{config.timeout_s:g}s",
            "-s",
            str(config.lua_script),
            *(arg for header in headers for arg in ("-H", header)),
            url,
        ],
    )
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration_s + 30, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {duration_s + 30:g} s") from exc
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()[:2]
        raise BenchError(f"wrk exited with {done.returncode}: {' / '.join(said)}")
    return parse_wrk_output(done.stdout)


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 made now with openssl: (cert.pem, key.pem).

    One EC P-256 key (PKCS#8, which granian requires), valid for a day, used by every server of
    a run so that the TLS work is the same for all of them.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise BenchError("openssl is missing (Debian package openssl); cannot make a certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    argv = [
        openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise BenchError(f"openssl could not make a certificate: {done.stderr.strip()[-300:]}")
    return cert, key


# ----------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_revision() -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        rev = subprocess.run(
            [git, "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [git, "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{rev}{'+dirty' if dirty else ''}"


def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def machine_info(wrk: str | None = None) -> dict[str, Any]:
    """Facts that make a run comparable with another: CPU, kernel, versions, load."""
    wrk_version = None
    if wrk:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
            first = (out.stdout or out.stderr).splitlines()[0]
            wrk_version = first.split(" [", 1)[0].strip()  # "wrk 4.2.0", without the banner
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_allowed": sorted(os.sched_getaffinity(0)),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": {
            name: _version(name)
            for name in (
                "forkloop",
                "aiohttp",
                "uvicorn",
                "granian",
                "gunicorn",
                "uvloop",
                "httptools",
                "matplotlib",
            )
        },
        "wrk": wrk_version,
        "git_revision": git_revision(),
        "load_average": load_average(),
        "python_executable": sys.executable,
    }

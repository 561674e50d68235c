"""The container's exact command, run for real on loopback, through a Kubernetes-style stop.

What the kubelet would run (the Dockerfile's ENTRYPOINT + the Deployment's args, WEB_CONCURRENCY
from the CPU request) is started as a subprocess with only the bind addresses moved to
127.0.0.1 and free ports. The test then plays the kubelet: waits for the startup probe, probes
liveness and readiness, runs the image's HEALTHCHECK command, sends SIGTERM and checks the drain
timeline that docs/kubernetes.md describes: readiness 503 at once, the app still served during
--drain-delay, a request in flight across the end of the delay completes, exit 0 before
terminationGracePeriodSeconds, the ports released.

It runs twice: with the image's default APP (the demo) and with a stand-in app from this folder
in its place (everything else unchanged), so the deployment is exercised before the demo exists.

The image itself is built from deploy/Dockerfile with podman and run as the kubelet would run it
(test_image_built_and_run_with_podman, marked ``packaging``: `make test` runs it after the rest).
Its figures (image size, cold start to ready, stop time) go to build/container-e2e.log, which
.ci/run prints.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from deployspec import (
    ROOT,
    Instruction,
    container_argv,
    downward_cpu,
    healthcheck_argv,
    option_value,
    run_healthcheck,
)

HERE = Path(__file__).resolve().parent
STAND_IN_APP = "forkloop_e2e_app:create_app"


def status_of(url: str, timeout_s: float = 3) -> int | None:
    """HTTP status of a GET, or None when the connection is refused/reset."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def wait_for(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def replace_option(argv: list[str], option: str, value: str) -> list[str]:
    out = list(argv)
    out[out.index(option) + 1] = value
    return out


def module_exists(module: str, *roots: Path) -> bool:
    for root in roots:
        path = root / module.replace(".", "/")
        if path.with_suffix(".py").exists() or (path / "__init__.py").exists():
            return True
    return False


REQUESTS = re.compile(r"^http_server_request_duration_seconds_count\{.*\} (\S+)$", re.M)
READY_WORKERS = re.compile(r'^forkloop_supervisor_workers\{state="ready"\} (\S+)$', re.M)


def metrics_text(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return str(response.read().decode())
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        return f"<{exc!r}>"


def metric_sum(url: str, pattern: re.Pattern[str]) -> float:
    return sum(float(value) for value in pattern.findall(metrics_text(url)))


def metrics_wired() -> bool:
    """Whether forkloop.metrics plugs into `forkloop serve` yet (issue 8's extension point)."""
    try:
        import forkloop.metrics as metrics
    except ImportError:
        return False
    return hasattr(metrics, "attach_supervisor")


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    http_port: int
    metrics_port: int
    argv: list[str]
    log: Path
    workers: int

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture(params=["image-default-app", "stand-in-app"])
def served(
    request: pytest.FixtureRequest,
    dockerfile: list[Instruction],
    container: dict[str, Any],
    tmp_path: Path,
) -> Iterator[Served]:
    argv = container_argv(dockerfile, container)
    if request.param == "stand-in-app":
        argv[-1] = STAND_IN_APP
    missing = [p for p in ("forkloop/cli.py", "forkloop/__main__.py") if not (ROOT / p).exists()]
    if not module_exists(argv[-1].split(":", 1)[0], ROOT, HERE):
        missing.append(f"{argv[-1]} (the image's default APP)")
    if missing:
        pytest.skip(f"not written yet: {', '.join(missing)}")

    http_port, metrics_port = free_port(), free_port()
    argv = replace_option(argv, "--bind", f"127.0.0.1:{http_port}")
    argv = replace_option(argv, "--metrics-bind", f"127.0.0.1:{metrics_port}")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(HERE), env.get("PYTHONPATH")]))
    ref = next(e for e in container["env"] if e["name"] == "WEB_CONCURRENCY")
    divisor = ref["valueFrom"]["resourceFieldRef"].get("divisor", "1")
    workers = downward_cpu(container["resources"]["requests"]["cpu"], divisor)
    env["WEB_CONCURRENCY"] = str(workers)
    # The demo reads its own metrics for its live panel; point it at the moved metrics port.
    env["FORKLOOP_DEMO_METRICS_URL"] = f"http://127.0.0.1:{metrics_port}/metrics"

    log = tmp_path / "forkloop.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "forkloop", *argv[1:]],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(proc, http_port, metrics_port, argv, log, workers)
    try:
        yield served
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the process group we started, nothing else
        proc.wait(timeout=10)


@pytest.mark.slow
def test_kubelet_lifecycle(
    served: Served,
    dockerfile: list[Instruction],
    deployment: dict[str, Any],
    container: dict[str, Any],
) -> None:
    proc, base = served.proc, f"http://127.0.0.1:{served.http_port}"

    # Startup probe: ready within the probe's whole budget.
    startup = container["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    ready = wait_for(
        lambda: proc.poll() is not None or status_of(base + "/-/readyz") == 200, budget
    )
    assert proc.poll() is None, served.output()
    assert ready, f"/-/readyz not 200 within the startup probe's {budget} s\n{served.output()}"
    assert status_of(base + "/-/healthz") == 200
    assert status_of(base + "/") == 200
    if metrics_wired():
        # One scrape of the metrics port (what the ServiceMonitor scrapes) covers every worker.
        for _ in range(10):
            assert status_of(base + "/") == 200
        scrape = f"http://127.0.0.1:{served.metrics_port}/metrics"
        assert wait_for(lambda: metric_sum(scrape, REQUESTS) >= 10, 10), metrics_text(scrape)
        # /-/readyz answers once a worker serves; every worker is ready shortly after.
        assert wait_for(lambda: metric_sum(scrape, READY_WORKERS) == served.workers, 10), (
            metrics_text(scrape)
        )
    assert run_healthcheck(healthcheck_argv(dockerfile), served.http_port) == 0

    # The kubelet's stop: SIGTERM to PID 1 (here: the supervisor we started).
    drain = float(option_value(served.argv, "--drain-delay"))
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    stopped_at = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert wait_for(lambda: status_of(base + "/-/readyz") == 503, 3), served.output()
    # Still serving during the drain delay: liveness stays green and the app still answers.
    assert status_of(base + "/-/healthz") == 200
    assert status_of(base + "/") == 200
    assert time.monotonic() - stopped_at < drain, "the checks above ran inside the drain delay"

    in_flight = None
    if served.argv[-1] == STAND_IN_APP:
        # A request that starts inside the delay and ends after it: it must still complete.
        time.sleep(max(0.0, drain - 2 - (time.monotonic() - stopped_at)))
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        in_flight = pool.submit(status_of, base + "/slow?s=4", 30)
        pool.shutdown(wait=False)

    returncode = proc.wait(timeout=grace)
    elapsed = time.monotonic() - stopped_at
    assert returncode == 0, served.output()
    assert elapsed >= drain - 0.5, "workers must keep serving for --drain-delay"
    if in_flight is not None:
        assert in_flight.result(timeout=5) == 200
    for port in (served.http_port, served.metrics_port):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))  # released: nothing of ours still holds it


# --------------------------------------------------------------------------------------------
# PID 1: in a container the supervisor is PID 1 of its PID namespace. It must handle SIGTERM
# (the kernel gives PID 1 no default signal actions) and reap orphans re-parented to it.


def children_of(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def proc_stat(pid: int) -> tuple[str, str, int] | None:
    """(command, state, parent pid) of a process as seen from the host, or None once gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    command = text[text.index("(") + 1 : text.rindex(")")]
    state, ppid = text[text.rindex(")") + 2 :].split()[:2]
    return command, state, int(ppid)


def processes_under(parent: int) -> list[tuple[int, str, str]]:
    """(pid, command, state) of the direct children of `parent` (host pids)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat is not None and stat[2] == parent:
                found.append((int(entry.name), stat[0], stat[1]))
    return found


@pytest.mark.slow
def test_supervisor_as_pid1_reaps_orphans_and_stops_on_term(
    dockerfile: list[Instruction], container: dict[str, Any], tmp_path: Path
) -> None:
    import shutil

    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("needs root and util-linux `unshare` to run the supervisor as PID 1")
    if not (ROOT / "forkloop" / "cli.py").exists():
        pytest.skip("forkloop/cli.py not written yet (issue 6)")
    argv = container_argv(dockerfile, container)
    argv[-1] = STAND_IN_APP
    port = free_port()
    argv = replace_option(argv, "--bind", f"127.0.0.1:{port}")
    argv = replace_option(argv, "--metrics-bind", f"127.0.0.1:{free_port()}")
    env = {**os.environ, "WEB_CONCURRENCY": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE)])
    log = tmp_path / "forkloop.log"
    with log.open("wb") as sink:
        wrapper = subprocess.Popen(
            [
                unshare,
                "--pid",
                "--fork",
                "--mount-proc",
                sys.executable,
                "-m",
                "forkloop",
                *argv[1:],
            ],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: status_of(base + "/-/readyz") == 200, 60), log.read_text()
        (pid1,) = children_of(wrapper.pid)  # the supervisor: PID 1 inside, pid1 outside
        nspid = next(
            line
            for line in Path(f"/proc/{pid1}/status").read_text().splitlines()
            if line.startswith("NSpid:")
        )
        assert nspid.split()[-1] == "1", f"not PID 1 in its namespace: {nspid}"

        # An orphan that lives 2 s: while it runs, its parent is the supervisor ...
        assert status_of(base + "/orphan?s=2") == 200
        assert wait_for(lambda: any(cmd == "sleep" for _, cmd, _ in processes_under(pid1)), 3), (
            "the orphan was not re-parented to PID 1"
        )
        # ... and once it exits it is reaped: no zombie stays behind.
        for _ in range(5):
            assert status_of(base + "/orphan?s=0.1") == 200
        assert wait_for(
            lambda: not any(cmd == "sleep" for _, cmd, _ in processes_under(pid1)), 10
        ), f"zombies under PID 1: {processes_under(pid1)}"

        os.kill(pid1, signal.SIGTERM)  # what the kubelet sends to PID 1
        drain = float(option_value(argv, "--drain-delay"))
        graceful = float(option_value(argv, "--graceful-timeout"))
        assert wrapper.wait(timeout=drain + graceful + 5) == 0, log.read_text()[-3000:]
    finally:
        if wrapper.poll() is None:
            os.killpg(wrapper.pid, signal.SIGKILL)  # the process group we started
            wrapper.wait(timeout=10)


# --------------------------------------------------------------------------------------------
# The image itself: deploy/Dockerfile built with podman and run as the kubelet would run it.
# Where no registry is reachable the base is a local debootstrap image (.ci/container-base);
# FORKLOOP_CONTAINER_BASE names another. Skipped where podman cannot run, never in CI (CI=true).

CI_BASE = "localhost/forkloop-ci-base:bookworm"
IMAGE = "localhost/forkloop-e2e:test"
# How podman must run on this project's machines (runc; the default ulimits are too high).
PODMAN_RUN_OPTS = ["--runtime", "runc", "--ulimit", "nofile=1024:1024"]
PODMAN_RUN_OPTS += ["--ulimit", "nproc=1000:1000"]
REPORT = ROOT / "build" / "container-e2e.log"


def podman(*args: str, timeout: float = 60, check: bool = True) -> str:
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} -> {done.returncode}\n{done.stderr}")
    return done.stdout.strip()


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the container test: .ci/run prepares it)")
    pytest.skip(reason)


def container_base() -> str:
    import shutil

    if shutil.which("podman") is None:
        skip_or_fail("podman is not installed (apt-get install podman runc)")
    if os.geteuid() != 0:
        skip_or_fail("the container test runs podman as root")
    for base in filter(None, (os.environ.get("FORKLOOP_CONTAINER_BASE"), CI_BASE)):
        if subprocess.run(["podman", "image", "exists", base], check=False).returncode == 0:
            return base
    skip_or_fail(f"no local base image: run .ci/container-base (builds {CI_BASE})")
    raise AssertionError("unreachable")


def report(line: str) -> None:
    """The figures CI shows: appended to build/container-e2e.log (.ci/run prints it)."""
    REPORT.parent.mkdir(exist_ok=True)
    with REPORT.open("a") as f:
        f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")


def build_context(dest: Path) -> Path:
    """A clean build context: the files of a fresh clone plus uncommitted work, no .venv,
    build/ or in-place *.so (podman may not read the Dockerfile's .dockerignore)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes((ROOT / name).read_bytes())
    return dest


@pytest.mark.slow
@pytest.mark.packaging
@pytest.mark.timeout(1200)
def test_image_built_and_run_with_podman(
    dockerfile: list[Instruction],
    deployment: dict[str, Any],
    container: dict[str, Any],
    tmp_path: Path,
) -> None:
    base_image = container_base()
    started = time.monotonic()
    build = subprocess.run(
        [
            "podman",
            "build",
            *PODMAN_RUN_OPTS,
            "-v",
            "/etc/ssl/certs:/etc/ssl/certs:ro",
            "--build-arg",
            f"BASE_IMAGE={base_image}",
            "-f",
            str(ROOT / "deploy" / "Dockerfile"),
            "-t",
            IMAGE,
            str(build_context(tmp_path / "context")),
        ],
        capture_output=True,
        text=True,
        timeout=1000,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-6000:] + build.stderr[-3000:]
    size_mb = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE)) / 1e6
    report(
        f"image {IMAGE} on {base_image}: {size_mb:.0f} MB, "
        f"built in {time.monotonic() - started:.0f} s"
    )

    # As the kubelet runs it: the Deployment's args after the image's ENTRYPOINT, the workers
    # from the CPU request; the pod's securityContext as podman options.
    ref = next(e for e in container["env"] if e["name"] == "WEB_CONCURRENCY")
    workers = downward_cpu(
        container["resources"]["requests"]["cpu"],
        ref["valueFrom"]["resourceFieldRef"].get("divisor", "1"),
    )
    http_port, metrics_port = free_port(), free_port()
    name = f"forkloop-e2e-{os.getpid()}-{http_port}"
    args = [str(a) for a in container["args"]]
    cold_start = time.monotonic()
    podman(
        "run",
        "-d",
        *PODMAN_RUN_OPTS,
        "--name",
        name,
        "--read-only",
        "--tmpfs",
        "/tmp",
        "-e",
        f"WEB_CONCURRENCY={workers}",
        "-p",
        f"127.0.0.1:{http_port}:8080",
        "-p",
        f"127.0.0.1:{metrics_port}:9100",
        IMAGE,
        *args,
    )
    try:
        base = f"http://127.0.0.1:{http_port}"

        def running() -> bool:
            return podman("inspect", "--format", "{{.State.Running}}", name) == "true"

        ready = wait_for(lambda: not running() or status_of(base + "/-/readyz") == 200, 60, 0.05)
        ready_s = time.monotonic() - cold_start
        logs = podman("logs", name, check=False)
        assert running(), f"the container stopped\n{logs[-3000:]}"
        assert ready, f"/-/readyz not 200 within 60 s\n{logs[-3000:]}"
        report(f"cold start (podman run -> /-/readyz 200): {ready_s:.2f} s, {workers} workers")

        # The container contract: non-root numeric user, read-only root, /tmp a writable tmpfs.
        assert podman("exec", name, "id", "-u") == "10001"
        assert podman("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", name) == "true"
        probe = "import pathlib; pathlib.Path('{}').write_text('x')"
        assert (
            subprocess.run(
                ["podman", "exec", name, "python", "-c", probe.format("/app/x")],
                capture_output=True,
                check=False,
            ).returncode
            != 0
        ), "the root file system must be read-only"
        podman("exec", name, "python", "-c", probe.format("/tmp/x"))
        mounts = podman("exec", name, "cat", "/proc/mounts").splitlines()
        assert any(line.split()[1:3] == ["/tmp", "tmpfs"] for line in mounts), mounts
        version = podman("exec", name, "forkloop", "--version")
        assert "(compiled: " in version, version

        # The demo page and a metrics scrape covering every worker.
        with urllib.request.urlopen(base + "/", timeout=5) as response:
            assert response.status == 200
            assert b"<html" in response.read().lower()
        scrape = f"http://127.0.0.1:{metrics_port}/metrics"
        assert wait_for(lambda: metric_sum(scrape, READY_WORKERS) == workers, 15), metrics_text(
            scrape
        )
        supervisor = int(podman("inspect", "--format", "{{.State.Pid}}", name))
        worker_pids = children_of(supervisor)
        assert len(worker_pids) == workers, worker_pids

        # `podman stop`: SIGTERM to PID 1, SIGKILL only after the grace period.
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        stopped_at = time.monotonic()
        podman("stop", "-t", str(grace), name, timeout=grace + 30)
        stop_s = time.monotonic() - stopped_at
        exit_code = podman("inspect", "--format", "{{.State.ExitCode}}", name)
        logs = podman("logs", name, check=False)
        assert exit_code == "0", f"exit {exit_code} after {stop_s:.1f} s\n{logs[-3000:]}"
        assert stop_s < grace, f"stopped after {stop_s:.1f} s, grace {grace} s"
        assert [pid for pid in worker_pids if proc_stat(pid) is not None] == []
        report(
            f"podman stop -> exit 0 in {stop_s:.1f} s (drain delay "
            f"{option_value(args, '--drain-delay')} s, grace {grace} s)"
        )
    finally:
        podman("rm", "-f", name, check=False)

"""The control socket end to end: ``forkloop status|reload|scale|stop`` as real commands
against a real ``forkloop serve``, raw clients sending bad input, a client of another uid.

The request grammar, the default path and the table are checked as plain functions first.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forkloop.supervisor import control, policy
from forkloop.supervisor.control import Request, RequestError, parse_request

from .conftest import PYTHON, Served, alive
from .test_e2e import http_get

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Any, timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.05)


def forkloop(
    *args: str, user: bool = False, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    """``forkloop ARGS`` as a real process; ``user``: as uid/gid 65534 (nobody)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("FORKLOOP_CONTROL", None)
    command = [PYTHON, "-m", "forkloop", *args]
    if user:
        # The venv's interpreter lives under /root, which nobody may not enter: the system's
        # python3 runs the same source tree.
        env["FORKLOOP_NO_EXTENSIONS"] = "1"
        setpriv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        command = [*setpriv, "/usr/bin/python3", "-m", "forkloop", *args]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, check=False, cwd="/"
    )


def status(path: Path) -> dict[str, Any]:
    done = forkloop("status", "--control", str(path), "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def raw_exchange(path: Path, data: bytes, *, shut: bool = True) -> list[dict[str, Any]]:
    """Send raw bytes; every answer line until the master closes (or we half-close)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return [json.loads(line) for line in received.splitlines()]


def bound_name(path: Path, master: int) -> str:
    """The name the master bound before renaming the socket into place."""
    return f"{path}.{master}.tmp"


def socket_inode(name: str) -> int:
    """The inode of the listening socket bound as ``name`` (from /proc/net/unix)."""
    with open("/proc/net/unix", encoding="ascii") as file:
        for line in file:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == name and fields[5] == "01":
                return int(fields[6])
    raise AssertionError(f"{name} is not listening")


def holds_socket(pid: int, inode: int) -> bool:
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(f"{fd_dir}/{fd}") == f"socket:[{inode}]":
                return True
        except OSError:
            continue
    return False


@pytest.fixture
def ctl(app_dir: Path) -> Path:
    return app_dir / "ctl" / "forkloop.sock"


@pytest.fixture
def served(serve: Any, ctl: Path) -> Served:
    ctl.parent.mkdir()
    result: Served = serve("-w", "2", "-t", "2", "--no-access-log", "--control", str(ctl))
    return result


# --------------------------------------------------------------------------- plain functions


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"cmd":"status"}', Request("status")),
        (b' {"cmd": "reload"} ', Request("reload")),
        (b'{"cmd":"scale","workers":3}', Request("scale", workers=3)),
        (b'{"cmd":"stop"}', Request("stop")),
        (b'{"cmd":"stop","graceful":true}', Request("stop", graceful=True)),
    ],
)
def test_requests_parse(line: bytes, expected: Request) -> None:
    assert parse_request(line) == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"status", "malformed JSON"),
        (b"{", "malformed JSON"),
        (b"[" * 100_000, "malformed JSON"),  # deep nesting: an error, never a crash
        (b"\xff\xfe", "malformed JSON"),
        (b'["status"]', "must be a JSON object"),
        (b"{}", "unknown command"),
        (b'{"cmd":"restart"}', "unknown command 'restart'"),
        (b'{"cmd":7}', "unknown command '7'"),
        (b'{"cmd":"scale"}', "integer number of workers"),
        (b'{"cmd":"scale","workers":"3"}', "integer number of workers"),
        (b'{"cmd":"scale","workers":true}', "integer number of workers"),
        (b'{"cmd":"scale","workers":0}', "between 1 and 1024"),
        (b'{"cmd":"scale","workers":100000}', "between 1 and 1024"),
        (b'{"cmd":"stop","graceful":"yes"}', "graceful must be true or false"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(line: bytes, reason: str) -> None:
    with pytest.raises(RequestError, match=reason):
        parse_request(line)


def test_default_path(tmp_path: Path) -> None:
    pid = str(tmp_path / "run" / "app.pid")
    assert control.default_path(pid, {"XDG_RUNTIME_DIR": "/run/user/7"}) == str(
        tmp_path / "run" / "forkloop.sock"
    )
    assert control.default_path(None, {"XDG_RUNTIME_DIR": "/run/user/7"}) == (
        "/run/user/7/forkloop.sock"
    )
    assert control.default_path(None, {}, uid=7) == "/tmp/forkloop-7/forkloop.sock"
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp: not beside a pid file there
    assert control.default_path(str(shared / "app.pid"), {}, uid=7) == (
        "/tmp/forkloop-7/forkloop.sock"
    )


def test_a_shared_fallback_directory_is_refused(tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o777)
    loose.chmod(0o777)
    with pytest.raises(control.ControlError, match="not a private directory"):
        control._check_private(str(loose))
    mine = tmp_path / "mine"
    control._check_private(str(mine))
    assert stat.S_IMODE(mine.stat().st_mode) == 0o700


# --------------------------------------------------------------------------- real processes


def workers_by_pid(report: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {w["pid"]: w for w in report["workers"]}


def settled(served: Served, ctl: Path, count: int, generation: int) -> dict[str, Any] | None:
    """The status once it shows ``count`` ready workers of ``generation`` and no others."""
    report = status(ctl)
    states = {(w["state"], w["generation"]) for w in report["workers"]}
    if len(report["workers"]) == count and states == {("ready", generation)}:
        return report
    return None


@pytest.mark.slow
def test_status_matches_the_real_workers_after_ttin_hup_and_kill(served: Served, ctl: Path) -> None:
    report = wait_for(lambda: settled(served, ctl, 2, 1), what="2 ready workers")
    master = report["master"]
    assert master["pid"] == served.pid
    assert master["generation"] == 1
    assert master["mode"] == "running"
    assert master["binds"] == [f"http://127.0.0.1:{served.port}"]
    assert master["control"] == str(ctl)
    assert set(workers_by_pid(report)) == set(served.workers())
    assert sorted(w["slot"] for w in report["workers"]) == [0, 1]
    for worker in report["workers"]:
        assert worker["rss_bytes"] > 1 << 20  # read from /proc by the master
        assert worker["last_beat_s"] < 2.0

    # Requests served and in flight come from the heartbeats (every 0.4 s with -t 2).
    for _ in range(7):
        assert http_get(served.port, "/pid")[0] == 200
    wait_for(lambda: sum(w["requests"] for w in status(ctl)["workers"]) == 7, what="7 requests")

    served.send(signal.SIGTTIN)
    report = wait_for(lambda: settled(served, ctl, 3, 1), what="3 ready workers")
    assert set(workers_by_pid(report)) == set(served.workers())

    before = set(workers_by_pid(report))
    served.send(signal.SIGHUP)  # re-reads the configuration: back to -w 2
    served.wait_log(r"reload complete: generation 2, 2 workers")
    report = wait_for(lambda: settled(served, ctl, 2, 2), what="generation 2")
    assert report["master"]["generation"] == 2
    assert report["restarts"]["reload"] == 3
    assert not before & set(workers_by_pid(report))
    wait_for(lambda: set(served.workers()) == set(workers_by_pid(status(ctl))))

    victim = report["workers"][0]
    survivors = set(workers_by_pid(report)) - {victim["pid"]}
    os.kill(victim["pid"], signal.SIGKILL)
    report = wait_for(
        lambda: (r := settled(served, ctl, 2, 2)) and victim["pid"] not in workers_by_pid(r) and r,
        what="the killed worker replaced",
    )
    assert report["restarts"]["crash"] == 1
    assert set(workers_by_pid(report)) == set(served.workers())
    (replacement,) = (w for w in report["workers"] if w["pid"] not in survivors)
    assert replacement["generation"] == 2
    assert all(replacement["age_s"] < w["age_s"] for w in report["workers"] if w is not replacement)

    table = forkloop("status", "--control", str(ctl))
    assert table.returncode == 0, table.stderr
    assert f"master {served.pid}" in table.stdout
    assert "generation 2" in table.stdout
    assert "crash 1" in table.stdout
    for pid in served.workers():
        assert f" {pid} " in table.stdout


@pytest.mark.slow
def test_reload_scale_and_graceful_stop_through_the_socket(served: Served, ctl: Path) -> None:
    done = forkloop("reload", "--control", str(ctl))
    assert done.returncode == 0, done.stderr
    assert "generation 2" in done.stdout
    served.wait_log(r"control reload \(HUP\): rolling reload to generation 2")
    served.wait_log(r"reload complete: generation 2, 2 workers")

    done = forkloop("scale", "4", "--control", str(ctl))
    assert (done.returncode, done.stdout.strip()) == (0, "scaling: 2 -> 4 workers")
    wait_for(lambda: len(served.workers()) == 4, what="4 workers")
    wait_for(lambda: settled(served, ctl, 4, 2), what="4 ready workers in the status")

    done = forkloop("scale", "1", "--control", str(ctl))
    assert (done.returncode, done.stdout.strip()) == (0, "scaling: 4 -> 1 workers")
    wait_for(lambda: len(served.workers()) == 1, what="1 worker")
    assert status(ctl)["master"]["target"] == 1
    assert http_get(served.port, "/pid")[0] == 200

    done = forkloop("stop", "--graceful", "--control", str(ctl))
    assert (done.returncode, done.stdout.strip()) == (0, "stopping (graceful)"), done.stderr
    assert served.proc.wait(15) == 0
    assert "control stop (SIGTERM): graceful stop" in served.log
    assert "on_shutdown" in served.log
    assert not ctl.exists()  # removed at exit
    done = forkloop("status", "--control", str(ctl))
    assert done.returncode == 1
    assert done.stderr.startswith("forkloop: error: no control socket at")


@pytest.mark.slow
def test_quick_stop_through_the_socket(served: Served, ctl: Path) -> None:
    done = forkloop("stop", "--control", str(ctl))
    assert (done.returncode, done.stdout.strip()) == (0, "stopping"), done.stderr
    assert served.proc.wait(15) == 0
    assert "control stop (SIGQUIT): quick stop" in served.log


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user may traverse (pytest's own tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="forkloop-control-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _system_python_runs_forkloop() -> bool:
    """uid 65534 runs the client with /usr/bin/python3 (the venv lives under /root)."""
    try:
        done = subprocess.run(
            ["/usr/bin/python3", "-c", "import sys; sys.exit(sys.version_info < (3, 11))"],
            timeout=20,
            check=False,
        )
    except OSError:
        return False
    return done.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv") or not _system_python_runs_forkloop(),
    reason="needs root, setpriv and a system python3 >= 3.11",
)
def test_a_client_of_another_uid_is_refused(serve: Any, open_dir: Path) -> None:
    ctl = open_dir / "forkloop.sock"
    served: Served = serve("-w", "2", "-t", "2", "--no-access-log", "--control", str(ctl))
    assert forkloop("status", "--control", str(open_dir / "none"), user=True).stderr.startswith(
        "forkloop: error: no control socket at"  # the directory is open to uid 65534
    )
    assert stat.S_IMODE(ctl.stat().st_mode) == 0o600
    done = forkloop("status", "--control", str(ctl), user=True)
    assert done.returncode == 1
    assert done.stderr.startswith("forkloop: error: permission denied on")

    # A socket file opened up by mistake: the master itself refuses (SO_PEERCRED).
    ctl.chmod(0o666)
    for command in (["status"], ["scale", "5"], ["stop"]):
        done = forkloop(*command, "--control", str(ctl), user=True)
        assert done.returncode == 1, done.stdout
        assert done.stderr.strip() == (
            f"forkloop: error: refused: uid 65534 is not the master's uid {os.geteuid()}"
        )
        assert done.stderr.count("\n") == 1
    assert served.log.count("control socket: refused a client of uid 65534") == 3
    assert served.proc.poll() is None
    report = status(ctl)
    assert report["master"]["target"] == 2
    assert set(workers_by_pid(report)) == set(served.workers())


@pytest.mark.slow
def test_bad_input_gets_one_line_errors_and_the_master_keeps_running(
    served: Served, ctl: Path
) -> None:
    # Errors that keep the framing: one answer per line, the connection stays usable.
    answers = raw_exchange(
        ctl,
        b'{"cmd":"restart"}\nnot json\n\n[1,2]\n{"cmd":"scale","workers":-1}\n{"cmd":"status"}\n',
    )
    assert [a["ok"] for a in answers] == [False, False, False, False, True]
    assert answers[0]["error"].startswith("unknown command 'restart'")
    assert answers[1]["error"].startswith("malformed JSON")
    assert answers[4]["master"]["pid"] == served.pid

    # An oversized line: one error, then the master closes (the framing is unknown).
    answers = raw_exchange(ctl, b'{"cmd":"status","pad":"' + b"x" * 10_000, shut=False)
    assert answers == [{"ok": False, "error": "request line longer than 4096 bytes"}]
    answers = raw_exchange(ctl, b"y" * 5000 + b"\n", shut=False)
    assert answers == [{"ok": False, "error": "request line longer than 4096 bytes"}]

    # Idle clients hold no one up, and connections beyond the limit are told so.
    idle = []
    try:
        for _ in range(control.MAX_CLIENTS):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(ctl))
            sock.sendall(b'{"cmd":"sta')  # half a request, never finished
            idle.append(sock)
        answer = wait_for(
            lambda: (a := control.call(str(ctl), {"cmd": "status"}))["ok"] is False and a,
            what="busy",  # in-process: well inside the idle clients' 10 s
        )
        assert answer["error"] == (
            f"busy: {control.MAX_CLIENTS} control connections are open already"
        )
    finally:
        for sock in idle:
            sock.close()
    wait_for(lambda: forkloop("status", "--control", str(ctl)).returncode == 0, what="served")

    assert served.proc.poll() is None
    assert http_get(served.port, "/pid")[0] == 200
    assert set(workers_by_pid(status(ctl))) == set(served.workers())

    done = forkloop("scale", "many", "--control", str(ctl))
    assert done.returncode == 2
    assert done.stderr.startswith("forkloop: error: scale: argument N: invalid int value")


@pytest.mark.slow
def test_the_socket_is_private_and_not_inherited_by_workers(served: Served, ctl: Path) -> None:
    info = ctl.stat()
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert not list(ctl.parent.glob("*.tmp"))
    inode = socket_inode(bound_name(ctl, served.pid))
    assert holds_socket(served.pid, inode)
    served.send(signal.SIGTTIN)  # a worker forked after clients connected, too
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(ctl))
        wait_for(lambda: len(served.workers()) == 3, what="3 workers")
        # The connection is listed as connected once the supervisor has accepted it, which a
        # busy supervisor (forking the new worker) may do a moment after connect() returns.
        accepted = wait_for(
            lambda: _accepted_inodes(bound_name(ctl, served.pid)),
            what="the supervisor to accept the client's connection",
        )
        peers = {f"socket:[{i}]" for i in accepted}
        for pid in served.workers():
            assert not holds_socket(pid, inode), pid
            links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
            assert not links & peers, pid


def _accepted_inodes(name: str) -> set[int]:
    """The inodes of the accepted (connected, state 03) sockets bound to ``name``."""
    with open("/proc/net/unix", encoding="ascii") as file:
        return {
            int(fields[6])
            for line in file
            if len(fields := line.split()) >= 8 and fields[7] == name and fields[5] == "03"
        }


@pytest.mark.slow
def test_a_live_socket_is_never_stolen_and_a_stale_one_is_replaced(
    served: Served, ctl: Path, app_dir: Path
) -> None:
    other = subprocess.run(
        [PYTHON, "-m", "forkloop", "serve", "app:app", "-b", "127.0.0.1:0", "--control", str(ctl)],
        cwd=app_dir,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert other.returncode == 1
    assert other.stderr.strip().splitlines()[-1] == (
        f"forkloop: error: --control {ctl}: {ctl} is in use by another master (pid {served.pid})"
    )
    assert status(ctl)["master"]["pid"] == served.pid

    stale = app_dir / "stale.sock"
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(stale))
    leftover.close()  # the file stays, nobody listens: what a SIGKILLed master leaves
    second = Served(app_dir, ["app:app", "-w", "1", "-b", "127.0.0.1:0", "--control", str(stale)])
    try:
        second.wait_ready()
        assert status(stale)["master"]["pid"] == second.pid
    finally:
        second.stop()
    assert not stale.exists()


@pytest.mark.slow
def test_usr2_hands_the_socket_to_the_new_master(served: Served, ctl: Path) -> None:
    served.send(signal.SIGUSR2)
    new_master = int(served.wait_log(r"USR2: started a new master (\d+)").group(1))
    try:
        served.wait_log(r"upgrade complete: stopping the previous master", timeout=20)
        assert served.proc.wait(20) == 0
        report = wait_for(lambda: (r := status(ctl))["master"]["pid"] == new_master and r)
        assert len(report["workers"]) == 2
        assert ctl.exists()  # the old master left the new one's socket in place
    finally:
        os.kill(new_master, signal.SIGTERM)
        wait_for(lambda: not alive(new_master), what="the new master gone")
    assert not ctl.exists()


def test_status_report_from_the_policy_state() -> None:
    state = policy.initial_state(policy.Settings(), 3)
    for pid, slot in ((10, 0), (11, 1), (12, 2)):
        state = policy.spawned(state, pid=pid, slot=slot, generation=1, now=100.0)
    state = policy.ready(state, 10, 101.0)
    state = policy.ready(state, 11, 101.0)
    state = policy.beat(state, 10, 104.0, requests=42, inflight=3, connections=5, lag_s=0.0125)
    state = policy.beat(state, 11, 103.0, draining=True)
    report = control.status_report(
        state,
        105.0,
        pid=1,
        started_at=99.0,
        binds=["http://127.0.0.1:8000"],
        control="/run/forkloop.sock",
        rss={10: 50 << 20}.get,
    )
    assert report["master"] == {
        "pid": 1,
        "uptime_s": 6.0,
        "generation": 1,
        "mode": "running",
        "target": 3,
        "reloads": 0,
        "reload_failed": False,
        "binds": ["http://127.0.0.1:8000"],
        "control": "/run/forkloop.sock",
    }
    first, second, third = report["workers"]
    assert first == {
        "slot": 0,
        "pid": 10,
        "generation": 1,
        "state": "ready",
        "phase": "ready",
        "age_s": 5.0,
        "requests": 42,
        "inflight": 3,
        "connections": 5,
        "rss_bytes": 50 << 20,
        "loop_lag_s": 0.0125,
        "last_beat_s": 1.0,
    }
    assert (second["state"], second["last_beat_s"], second["rss_bytes"]) == ("draining", 2.0, 0)
    assert third["state"] == "booting"
    assert report["restarts"]["crash"] == 0
    table = control.format_status(report)
    assert table.splitlines()[0] == "master 1  up 6.0s  generation 1  running  workers 3 (target 3)"
    assert (
        "0     10   1    ready     5.0s  42        3         5      50.0M  12.5ms  1.0s ago"
        in table
    )
    assert table.splitlines()[-1].startswith("restarts: crash 0, timeout 0")


@pytest.mark.slow
def test_status_while_draining_and_requests_refused_once_stopping(serve: Any, ctl: Path) -> None:
    ctl.parent.mkdir()
    # A drain delay far longer than the test: the master stays DRAINING until the QUIT below.
    served: Served = serve("-w", "1", "-t", "2", "--drain-delay", "60", "--control", str(ctl))
    done = forkloop("stop", "--graceful", "--control", str(ctl))
    assert done.returncode == 0, done.stderr
    report = wait_for(
        lambda: (r := status(ctl))["master"]["mode"] == "draining" and r, what="draining"
    )
    assert [w["state"] for w in report["workers"]] == ["draining"]
    for command in (["reload"], ["scale", "3"]):
        done = forkloop(*command, "--control", str(ctl))
        assert done.returncode == 1
        assert done.stderr.strip().endswith(": the master is stopping (draining)")
    assert served.proc.poll() is None
    served.send(signal.SIGQUIT)
    assert served.proc.wait(15) == 0


@pytest.mark.slow
def test_a_pipelining_client_that_reads_late_gets_every_answer(served: Served, ctl: Path) -> None:
    count = 10_000  # about 7 MB of answers: far more than the master queues for one client
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(ctl))
        writer = threading.Thread(target=sock.sendall, args=(b'{"cmd":"status"}\n' * count,))
        writer.start()
        time.sleep(1.0)  # not reading: the master answers others meanwhile
        assert status(ctl)["master"]["pid"] == served.pid
        received = bytearray()
        while received.count(b"\n") < count:
            chunk = sock.recv(1 << 20)
            assert chunk, f"closed after {len(received.splitlines())} answers"
            received += chunk
        writer.join()
    answers = [json.loads(line) for line in received.splitlines()]
    assert len(answers) == count
    assert all(answer["ok"] and answer["master"]["pid"] == served.pid for answer in answers)


@pytest.mark.slow
def test_the_default_socket_beside_the_pid_file_or_in_the_runtime_dir(
    serve: Any, app_dir: Path
) -> None:
    runtime = app_dir / "runtime"
    runtime.mkdir()
    served: Served = serve("-w", "1", env={"XDG_RUNTIME_DIR": str(runtime)})
    assert (runtime / "forkloop.sock").exists()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_RUNTIME_DIR": str(runtime)}
    env.pop("FORKLOOP_CONTROL", None)
    done = subprocess.run(
        [PYTHON, "-m", "forkloop", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["master"]["pid"] == served.pid

    pid_file = app_dir / "run" / "app.pid"
    pid_file.parent.mkdir()
    beside: Served = serve("-w", "1", "--pid", str(pid_file))
    assert (pid_file.parent / "forkloop.sock").exists()
    done = forkloop("status", "--pid", str(pid_file), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["master"]["pid"] == beside.pid

    off: Served = serve("-w", "1", "--control", "off", env={"XDG_RUNTIME_DIR": str(app_dir)})
    assert not (app_dir / "forkloop.sock").exists()
    assert "control socket" not in off.log
    done = forkloop("status", "--control", "off")
    assert (done.returncode, done.stderr) == (
        1,
        "forkloop: error: status: the control socket is off (--control off)\n",
    )


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@given(st.binary(max_size=300) | _JSON.map(lambda v: json.dumps(v).encode()))
def test_any_line_parses_or_is_refused_with_a_reason(line: bytes) -> None:
    reason = ""
    try:
        request = parse_request(line)
    except RequestError as exc:
        reason = str(exc)
    if reason:
        assert "\n" not in reason
    else:
        assert request.command in control.COMMANDS


@given(
    st.sampled_from(control.COMMANDS),
    st.dictionaries(st.sampled_from(["workers", "graceful", "x"]), _JSON, max_size=3),
)
def test_commands_with_any_arguments(command: str, extra: dict[str, Any]) -> None:
    line = json.dumps({**extra, "cmd": command}).encode()
    try:
        request = parse_request(line)
    except RequestError:
        assert command in ("scale", "stop")  # only these take arguments that can be wrong
        return
    assert request.command == command
    if command == "scale":
        assert request.workers == extra["workers"]
        assert 1 <= request.workers <= control.MAX_SCALE


@pytest.mark.slow
def test_status_shows_requests_in_flight_loop_lag_and_byte_by_byte_requests(
    served: Served, ctl: Path
) -> None:
    wait_for(lambda: settled(served, ctl, 2, 1), what="2 ready workers")
    slow = threading.Thread(target=http_get, args=(served.port, "/slow?s=3"))
    slow.start()
    try:
        report = wait_for(
            lambda: (
                (r := control.call(str(ctl), {"cmd": "status"}))
                and sum(w["inflight"] for w in r["workers"]) == 1
                and r
            ),
            what="one request in flight",
        )
        assert sum(w["connections"] for w in report["workers"]) >= 1
    finally:
        slow.join()
    wait_for(
        lambda: (
            sum(w["inflight"] for w in control.call(str(ctl), {"cmd": "status"})["workers"]) == 0
        ),
        what="nothing in flight",
    )

    # A handler that blocks its worker's loop for a second: the next heartbeat says so.
    holder = threading.Thread(target=http_get, args=(served.port, "/hold?s=1"))
    holder.start()
    lags = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and max(lags, default=0.0) < 0.5:
        report = control.call(str(ctl), {"cmd": "status"})
        lags.append(max(w["loop_lag_s"] for w in report["workers"]))
        time.sleep(0.02)
    holder.join()
    assert max(lags) >= 0.5, lags

    # Bytes arriving one at a time make the same request.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(ctl))
        for byte in b'{"cmd": "status"}\n':
            sock.send(bytes([byte]))
            time.sleep(0.002)
        answer = json.loads(sock.makefile("rb").readline())
    assert answer["ok"]
    assert answer["master"]["pid"] == served.pid


def test_the_socket_is_removed_when_the_master_fails_to_start(app_dir: Path, ctl: Path) -> None:
    ctl.parent.mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                *(PYTHON, "-m", "forkloop", "serve", "app:app", "-w", "1", "-b", "127.0.0.1:0"),
                *("--control", str(ctl), "--metrics-bind", f"127.0.0.1:{port}"),
            ],
            cwd=app_dir,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert done.returncode == 1
    assert "--metrics-bind" in done.stderr.strip().splitlines()[-1]
    assert list(ctl.parent.iterdir()) == []

"""Sockets, the heartbeat pipe protocol, the signal queue, the scoreboard, the app loader."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from forkloop.supervisor import heartbeat
from forkloop.supervisor.scoreboard import Scoreboard
from forkloop.supervisor.signals import SignalQueue
from forkloop.supervisor.sockets import (
    BindError,
    ReusePortRefusedError,
    bind_all,
    check_reuse_port,
    open_worker_socket,
    parse_bind,
)
from forkloop.workers import loader

# --------------------------------------------------------------------------- sockets


def test_bind_tcp_v4_v6_and_unix_once(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    specs = [parse_bind("127.0.0.1:0"), parse_bind("[::1]:0"), parse_bind(f"unix:{path}")]
    try:
        listeners = bind_all(specs, backlog=16, environ={})
    except BindError as exc:  # pragma: no cover - no IPv6 on this host
        pytest.skip(str(exc))
    try:
        v4, v6, unix = listeners
        assert v4.address.startswith("127.0.0.1:")
        assert v4.url().startswith("http://127.0.0.1:")
        assert v6.address.startswith("[::1]:")
        assert unix.address == f"unix:{path}"
        assert unix.owned_path == path
        for listener in (v4, v6):
            client = socket.create_connection(listener.sock.getsockname()[:2], timeout=2)
            conn, _ = listener.sock.accept()
            conn.close()
            client.close()
    finally:
        for listener in listeners:
            listener.sock.close()
    # A stale unix socket file (nobody listening) is replaced, a live one is refused.
    again = bind_all([parse_bind(f"unix:{path}")], backlog=4, environ={})
    with pytest.raises(BindError, match="another server is listening"):
        bind_all([parse_bind(f"unix:{path}")], backlog=4, environ={})
    again[0].sock.close()


def test_bind_errors_are_one_line(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(BindError, match=f"cannot bind 127.0.0.1:{port}: Address already"):
            bind_all([parse_bind(f"127.0.0.1:{port}")], backlog=4, environ={})
    finally:
        taken.close()
    (tmp_path / "file").write_text("x")
    with pytest.raises(BindError, match="exists and is not a socket"):
        bind_all([parse_bind(f"unix:{tmp_path / 'file'}")], backlog=4, environ={})


def test_fd_bind_and_systemd_socket_activation() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    listeners = bind_all([parse_bind(f"fd://{sock.fileno()}")], backlog=8, environ={})
    assert listeners[0].sock.fileno() == sock.fileno()
    assert listeners[0].sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
    listeners[0].sock.detach()
    sock.close()
    # LISTEN_FDS for another pid is ignored, and consumed either way.
    env = {"LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDNAMES": "web"}
    listeners = bind_all([parse_bind("127.0.0.1:0")], backlog=4, environ=env)
    assert "LISTEN_FDS" not in env
    assert listeners[0].spec.kind == "tcp"
    listeners[0].sock.close()


def test_systemd_fds_in_a_child(tmp_path: Path) -> None:
    """LISTEN_FDS=1 with fd 3 in a fresh interpreter, as systemd would start us."""
    import subprocess

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    code = (
        "import os, socket\n"
        "os.dup2(int(os.environ['SRC_FD']), 3)\n"
        "os.environ['LISTEN_PID'] = str(os.getpid())\n"
        "from forkloop.supervisor.sockets import bind_all\n"
        "ls = bind_all([], backlog=8)\n"
        "print(len(ls), ls[0].address, ls[0].name, 'LISTEN_FDS' in os.environ)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        pass_fds=(sock.fileno(),),
        env={
            **os.environ,
            "LISTEN_FDS": "1",
            "LISTEN_FDNAMES": "http",
            "SRC_FD": str(sock.fileno()),
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    sock.close()
    assert proc.stdout.split() == ["1", f"127.0.0.1:{port}", "http", "False"], proc.stderr


def test_reuse_port_check(tmp_path: Path) -> None:
    flag = tmp_path / "migrate"
    flag.write_text("0\n")
    with pytest.raises(ReusePortRefusedError, match="tcp_migrate_req is 0"):
        check_reuse_port(str(flag))
    flag.write_text("1\n")
    check_reuse_port(str(flag))
    with pytest.raises(ReusePortRefusedError, match="unavailable"):
        check_reuse_port(str(tmp_path / "missing"))


def test_worker_socket_in_reuse_port_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("forkloop.supervisor.sockets.check_reuse_port", lambda: None)
    (master,) = bind_all([parse_bind("127.0.0.1:0")], backlog=4, reuse_port=True, environ={})
    try:
        assert master.reuse_port
        assert master.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0
        own = open_worker_socket(master, 16)
        assert own is not master.sock
        assert own.getsockname() == master.sock.getsockname()
        assert own.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        own.close()
    finally:
        master.sock.close()


# --------------------------------------------------------------------------- heartbeat


def test_heartbeat_messages_round_trip_split_anywhere() -> None:
    data = (
        heartbeat.encode("ready", pid=7)
        + heartbeat.encode("beat", requests=3, inflight=1, lag_s=0.25, future="kept")
        + b"not json\n"
        + b'{"k": "no version"}\n'
        + heartbeat.encode("boot_error", error="x" * 10_000)
    )
    for split in range(len(data)):
        decoder = heartbeat.Decoder()
        messages = decoder.feed(data[:split]) + decoder.feed(data[split:])
        assert [m.kind for m in messages] == ["ready", "beat", "boot_error"]
        assert decoder.bad_lines == 2
    beat = messages[1]
    assert beat.get_int("requests") == 3
    assert beat.get_float("lag_s") == 0.25
    assert beat.fields["future"] == "kept"
    assert beat.version == heartbeat.VERSION
    assert beat.get_int("missing", 9) == 9
    assert len(heartbeat.encode("boot_error", error="é" * 10_000)) <= heartbeat.MAX_MESSAGE_BYTES


def test_heartbeat_writer_never_blocks_and_notices_a_dead_master() -> None:
    read_fd, write_fd = os.pipe()
    writer = heartbeat.HeartbeatWriter(write_fd)
    sent = 0
    while writer.send("beat", requests=sent, padding="x" * 1000):
        sent += 1
    assert writer.dropped == 1
    assert not writer.broken
    os.close(read_fd)
    assert not writer.send("beat")
    assert writer.broken
    writer.close()


# --------------------------------------------------------------------------- signals


def test_signal_queue_only_enqueues_and_wakes_select() -> None:
    import select

    queue = SignalQueue([signal.SIGUSR1, signal.SIGUSR2])
    queue.install()
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR2)
        readable, _, _ = select.select([queue.fileno()], [], [], 2)
        assert readable
        assert queue.drain() == [signal.SIGUSR1, signal.SIGUSR2]
        assert queue.drain() == []
        queue.push(signal.SIGHUP)
        assert queue.drain() == [signal.SIGHUP]
    finally:
        queue.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_a_stop_sent_the_moment_a_worker_exists_is_never_lost() -> None:
    """SIGTTOU right after SIGTTIN stops a worker that was forked an instant ago: the SIGHUP
    may reach the child before it dropped the master's handlers. It must still stop it (a
    clean exit 0: nothing to drain yet) instead of vanishing into the master's queue copy."""
    import time

    from forkloop.supervisor.process import fork_worker

    def linger(ctx: object) -> int:
        time.sleep(5)  # a lost signal shows as exit code 7 after this
        return 7

    queue = SignalQueue()
    queue.install()
    try:
        for _ in range(30):
            pid, read_fd = fork_worker(lambda fd: fd, linger, queue.fds)  # type: ignore[arg-type,return-value]
            os.kill(pid, signal.SIGHUP)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.01)
            else:  # still lingering: the signal was lost
                os.kill(pid, signal.SIGKILL)
                status = os.waitpid(pid, 0)[1]
            os.close(read_fd)
            assert os.waitstatus_to_exitcode(status) == 0  # not -9 (lingered), not 7
        assert signal.SIGHUP not in queue.drain()  # the child's signal is not the master's
    finally:
        queue.close()


# --------------------------------------------------------------------------- scoreboard


def test_scoreboard_is_shared_across_fork() -> None:
    board = Scoreboard(8)
    board.publish(2, 1234, 5, stamp=100.0)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        board.set_connections(3, 0)
        board.publish(3, 4321, 9, stamp=100.5)
        os._exit(0)
    os.waitpid(pid, 0)
    assert board.live(1.0, now=101.0) == [(2, 1234, 5), (3, 4321, 9)]
    assert board.live(1.0, now=101.2) == [(3, 4321, 9)]  # slot 2's stamp is stale
    board.clear(3, 9999)  # not its pid: kept
    board.clear(3, 4321)
    assert board.read(3) == (0, 0, 0.0)
    board.close()


# --------------------------------------------------------------------------- loader


APP_MODULE = """\
from forkloop import web
app = web.Application()
N = web.AppKey("n", int)
NAME = web.AppKey("name", str)
def make(n=1, name="x"):
    a = web.Application()
    a[N], a[NAME] = n, name
    return a
async def amake():
    return web.Application()
def not_app():
    return 42
value = 3
"""


@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"loadme_{os.getpid()}_{abs(hash(str(tmp_path))) % 10_000}"
    (tmp_path / f"{name}.py").write_text(APP_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


async def test_loader_forms(app_module: str) -> None:
    from forkloop.web import Application

    assert isinstance(loader.load(f"{app_module}:app"), Application)
    made = loader.load(f"{app_module}:make(7, name='seven')")
    keys = sys.modules[app_module]
    assert made[keys.N] == 7
    assert made[keys.NAME] == "seven"
    assert loader.load(f"{app_module}:make")[keys.N] == 1
    pending = loader.load(f"{app_module}:amake")
    assert isinstance(loader.check_app(await pending, "amake"), Application)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("missing_module_xyz:app", "cannot import 'missing_module_xyz': ModuleNotFoundError"),
        ("{m}:nope", "has no attribute 'nope'"),
        ("{m}:value", "is a int, not an Application"),
        ("{m}:not_app", "returned a int, expected a forkloop.web.Application"),
        ("{m}:make(__import__('os'))", "must be Python literals"),
        ("{m}:make(1", "unbalanced parentheses"),
        ("{m}:make(bogus=1)", "factory {m}:make(bogus=1) failed: TypeError"),
    ],
)
def test_loader_errors_are_one_line(app_module: str, expr: str, message: str) -> None:
    with pytest.raises(loader.AppLoadError) as info:
        loader.load(expr.format(m=app_module))
    assert message.format(m=app_module) in str(info.value)
    assert "\n" not in str(info.value)

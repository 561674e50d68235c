"""Each peer of `make bench` starts pinned to CPU 0 and gives the right answers over a socket."""

from __future__ import annotations

import importlib.util
import json
import socket
from collections.abc import Callable
from pathlib import Path

import common
import pytest
import run

PLAIN = b"Hello, World!"
StartPeer = Callable[..., common.ServerProcess]  # the start_peer fixture of conftest.py


def metrics_setup_exists() -> bool:
    try:
        import forkloop.metrics as metrics
    except ImportError:
        return False
    return hasattr(metrics, "setup")


def assert_serves_both(server: common.ServerProcess) -> None:
    status, headers, body = common.http_get(server.port, "/")
    assert (status, body) == (200, PLAIN)
    assert headers["content-type"].startswith("text/plain")
    status, headers, body = common.http_get(server.port, "/json")
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body) == {"message": "Hello, World!"}


def cpus_allowed(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("no Cpus_allowed_list")


@pytest.mark.parametrize("key", ["aiohttp", "uvicorn", "ceiling"])
def test_peer_serves_plaintext_and_json_pinned(start_peer: StartPeer, key: str) -> None:
    server = start_peer(key)
    assert_serves_both(server)
    assert cpus_allowed(server.pid) == "0"
    status, _, _ = common.http_get(server.port, "/missing")
    assert status == 404
    if key == "aiohttp":
        assert f"{run.LOOP_LINE}uvloop.Loop" in server.output_tail()


def test_forkloop_peer_serves_the_same_app(start_peer: StartPeer) -> None:
    server = start_peer("forkloop")
    assert_serves_both(server)
    assert cpus_allowed(server.pid) == "0"
    assert f"{run.LOOP_LINE}uvloop.Loop" in server.output_tail()


def test_forkloop_metrics_variant_serves_or_says_unsupported(start_peer: StartPeer) -> None:
    if metrics_setup_exists():
        assert_serves_both(start_peer("forkloop-metrics"))
        return
    server = start_peer("forkloop-metrics", wait=False)
    assert server.proc is not None
    assert server.proc.wait(timeout=30) == common.EXIT_UNSUPPORTED
    assert "forkloop.metrics" in server.output_tail()


def test_ceiling_keeps_alive_and_answers_pipelined_requests(start_peer: StartPeer) -> None:
    server = start_peer("ceiling")
    batch = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3 + b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection((common.HOST, server.port), timeout=5) as sock:
        sock.sendall(batch)
        data = b""
        while data.count(b"HTTP/1.1 200 OK") < 4 or not data.endswith(b'World!"}'):
            chunk = sock.recv(65536)
            assert chunk, f"connection closed early: {data!r}"
            data += chunk
    assert data.count(PLAIN) == 4  # three plaintext bodies and the one inside the JSON


def test_stop_ends_the_process_by_pid(start_peer: StartPeer) -> None:
    server = start_peer("ceiling")
    proc = server.proc
    assert proc is not None
    server.stop()
    assert proc.returncode is not None
    with pytest.raises(ConnectionRefusedError):
        common.http_get(server.port, "/")


@pytest.mark.parametrize("key", ["granian-rsgi", "granian-asgi"])
def test_granian_peer_serves_plaintext_and_json_pinned(start_peer: StartPeer, key: str) -> None:
    if importlib.util.find_spec("granian") is None:
        server = start_peer(key, wait=False)
        assert server.proc is not None
        assert server.proc.wait(timeout=30) == common.EXIT_UNSUPPORTED
        assert "granian is not installed" in server.output_tail()
        pytest.skip("granian is not installed (pip install granian: the bench extra)")
    server = start_peer(key)
    assert_serves_both(server)
    # granian serves from a worker process: pinned too (inherited), and counted in its CPU.
    workers = common.descendants(server.pid)
    assert workers
    assert {cpus_allowed(pid) for pid in [server.pid, *workers]} == {"0"}
    status, _, _ = common.http_get(server.port, "/missing")
    assert status == 404


def test_stop_ends_the_workers_of_a_multi_process_server(start_peer: StartPeer) -> None:
    if importlib.util.find_spec("granian") is None:
        pytest.skip("granian is not installed (pip install granian: the bench extra)")
    server = start_peer("granian-rsgi")
    workers = common.descendants(server.pid)
    assert workers
    server.stop()
    for pid in workers:  # gone, or a zombie waiting for init to reap it
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        assert state == "Z", (pid, state)


def _forkloop(port: int) -> list[str]:
    return common.pinned(0, run.PEERS["forkloop"].command(port))


def test_another_process_answering_on_the_port_is_not_readiness(start_peer: StartPeer) -> None:
    """The port free_port() gave was bound by someone else first: their answers do not make
    our server ready (it exits, and its figures would be theirs)."""
    holder = start_peer("ceiling")
    server = common.ServerProcess("forkloop", _forkloop(holder.port), holder.port)
    server.start()
    try:
        assert not server.listens()
        with pytest.raises(common.ServerExitedError) as caught:
            server.wait_ready(timeout_s=30)
        assert caught.value.port_taken, caught.value.output
    finally:
        server.stop()
    assert holder.listens()


def test_a_server_whose_port_was_taken_starts_again_on_a_fresh_port(
    start_peer: StartPeer,
) -> None:
    holder = start_peer("ceiling")
    server = common.ServerProcess(
        "forkloop", _forkloop(holder.port), holder.port, command=_forkloop
    )
    server.start()
    try:
        server.wait_ready(timeout_s=30)
        assert server.port != holder.port
        assert str(server.port) in server.argv
        assert server.listens()
        status, _, body = common.http_get(server.port, "/")
        assert (status, body) == (200, b"Hello, World!")
    finally:
        server.stop()

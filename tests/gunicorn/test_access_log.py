"""gunicorn's --access-logformat rendered by forkloop, compared with gunicorn's sync worker."""

from __future__ import annotations

import re
import socket
import time
from datetime import datetime

import pytest
from gunicorn_harness import Gunicorn

pytestmark = pytest.mark.timeout(60)

DEFAULT_FIELDS = re.compile(
    r'^(?P<h>\S+) (?P<l>\S+) (?P<u>\S+) \[(?P<t>[^\]]+)\] "(?P<r>.*)" (?P<s>\d{3}) (?P<b>\S+) '
    r'"(?P<f>.*)" "(?P<a>.*)"$'
)
ALL_ATOMS = "|".join(
    [
        "%(h)s",
        "%(l)s",
        "%(u)s",
        "%(r)s",
        "%(s)s",
        "%(m)s",
        "%(U)s",
        "%(q)s",
        "%(H)s",
        "%(b)s",
        "%(B)s",
        "%(f)s",
        "%(a)s",
        "%(T)s",
        "%(p)s",
        "%(D)s",
        "%(M)s",
        "%(L)s",
        "%({x-custom}i)s",
        "%({X-Missing}i)s",
        "%({content-type}o)s",
        "%({remote_addr}e)s",
        "%({QUERY_STRING}e)s",
        "%({http_x_custom}e)s",
        "%(t)s",
    ]
)
#: Fields that legitimately differ between two servers: pid, durations, the clock.
VARYING = {"p": r"<\d+>", "T": r"\d+", "D": r"\d+", "M": r"\d+", "L": r"\d+\.\d{6}"}

REQUESTS = [
    b"GET /hello?x=1&y=%20z HTTP/1.1\r\nHost: example.test\r\nReferer: http://ref.test/a\r\n"
    b'User-Agent: agent "quoted" 1.0\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\n'
    b"X-Custom: one\r\nX-Custom: two\r\nConnection: close\r\n\r\n",
    b"GET /stream HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n",
    b"GET /teapot HTTP/1.0\r\n\r\n",
    b"HEAD /hello HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n",
    b"GET /caf%C3%A9?q=%22x%22&r HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n",
]


def _send(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _wait_lines(server: Gunicorn, count: int) -> list[str]:
    deadline = time.monotonic() + 10
    while len(lines := server.access_lines()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(lines) == count, lines
    return lines


def _run_both(gunicorn, worker_class: str, *args: str) -> tuple[list[str], list[str]]:
    ours: Gunicorn = gunicorn(*args, worker=worker_class, subdir="forkloop")
    theirs: Gunicorn = gunicorn(*args, app="wsgi_app:app", worker="sync", subdir="sync")
    ours.wait_booted()
    theirs.wait_for("Booting worker")
    for raw in REQUESTS:
        for server in (ours, theirs):
            assert _send(server.port, raw).startswith(b"HTTP/1.")
    return _wait_lines(ours, len(REQUESTS)), _wait_lines(theirs, len(REQUESTS))


def _close_in_time(a: str, b: str) -> None:
    fmt = "%d/%b/%Y:%H:%M:%S %z"
    assert abs((datetime.strptime(a, fmt) - datetime.strptime(b, fmt)).total_seconds()) < 30


def test_default_format_matches_sync_worker_field_for_field(gunicorn, worker_class) -> None:
    ours, theirs = _run_both(gunicorn, worker_class)
    for mine, reference in zip(ours, theirs, strict=True):
        m, r = DEFAULT_FIELDS.match(mine), DEFAULT_FIELDS.match(reference)
        assert m, mine
        assert r, reference
        _close_in_time(m["t"], r["t"])
        assert {**m.groupdict(), "t": ""} == {**r.groupdict(), "t": ""}, (mine, reference)
    assert ours[0].startswith("127.0.0.1 - alice [")
    assert '"agent \\"quoted\\" 1.0"' in ours[0]


def test_every_atom_matches_sync_worker(gunicorn) -> None:
    ours, theirs = _run_both(
        gunicorn, "forkloop.workers.GunicornWebWorker", "--access-logformat", ALL_ATOMS
    )
    names = re.findall(r"%\(([^)]*)\)s", ALL_ATOMS)
    for mine, reference in zip(ours, theirs, strict=True):
        mine_fields, reference_fields = mine.split("|"), reference.split("|")
        assert len(mine_fields) == len(reference_fields) == len(names), (mine, reference)
        for name, a, b in zip(names, mine_fields, reference_fields, strict=True):
            if name in VARYING:
                assert re.fullmatch(VARYING[name], a), (name, a)
                assert re.fullmatch(VARYING[name], b), (name, b)
            elif name == "t":
                _close_in_time(a[1:-1], b[1:-1])
            else:
                assert a == b, (name, mine, reference)


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ('%(h)s "%(r)s" %(zz)s', "access log atom %(zz)s is not one of gunicorn's atoms"),
        ("%(h)s %({wsgi.input}e)s", "WSGI environ key 'WSGI.INPUT' has no forkloop equivalent"),
        ("%(h)s %(r)", "is malformed"),
    ],
)
def test_untranslatable_format_is_a_startup_error(gunicorn, fmt: str, message: str) -> None:
    server: Gunicorn = gunicorn("--access-logformat", fmt)
    assert server.wait_exit(20) == 3  # gunicorn's WORKER_BOOT_ERROR: the master halts
    log = server.log()
    assert "[ERROR] forkloop: --access-logformat: " in log
    assert message in log
    assert "Traceback" not in log  # one clear line, not a stack
    assert len(server.worker_pids()) == 1  # no respawn loop

"""AppRunner, sites and run_app with an Application: routing reaches the handler, the signals
run in order around the server's life, TCP/Unix/socket sites serve, access logs use aiohttp's
format atoms, and run_app serves until SIGINT in a real process."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from rawhttp import RawClient, request_bytes

from forkloop.core.web.app import AppKey, Application
from forkloop.core.web.response import Response
from forkloop.core.web.runner import AppRunner, SockSite, TCPSite, UnixSite

SETTING = AppKey("setting", int)


async def _start(app: Application, **kwargs: Any) -> tuple[AppRunner, int]:
    runner = AppRunner(app, **kwargs)
    await runner.setup()
    site = TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


async def test_app_runner_routes_and_signal_order() -> None:
    order: list[str] = []
    release = asyncio.Event()
    in_flight = asyncio.Event()

    async def hello(request: Any) -> Response:
        order.append(f"handler {request.match_info['name']}")
        assert request.app is app
        assert request.config_dict[SETTING] == 42
        if request.match_info["name"] == "slow":
            in_flight.set()
            await release.wait()
        return Response(text=f"hello {request.match_info['name']}")

    async def on_startup(app: Application) -> None:
        order.append("startup")

    async def on_shutdown(app: Application) -> None:
        order.append("shutdown")
        release.set()

    async def on_cleanup(app: Application) -> None:
        order.append("cleanup")

    app = Application()
    app[SETTING] = 42
    app.router.add_get("/hello/{name}", hello)
    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)

    runner, port = await _start(app, shutdown_timeout=10)
    assert runner.app is app
    assert order == ["startup"]
    client = await RawClient.connect("127.0.0.1", port)
    await client.send(request_bytes("/hello/world") + request_bytes("/missing"))
    response = await client.response()
    assert response.text() == "hello world"
    assert (await client.response()).status == 404
    busy = await RawClient.connect("127.0.0.1", port)
    await busy.send(request_bytes("/hello/slow"))
    await asyncio.wait_for(in_flight.wait(), 5)
    cleanup = asyncio.create_task(runner.cleanup())
    # The idle keep-alive connection closes; the in-flight request finishes with close.
    assert await client.read_until_closed(timeout_s=5) == b""
    slow = await busy.response()
    assert slow.text() == "hello slow"
    assert slow.closes
    await asyncio.wait_for(cleanup, 10)
    assert order == ["startup", "handler world", "handler slow", "shutdown", "cleanup"]
    with pytest.raises(OSError):  # noqa: PT011 - refused
        await RawClient.connect("127.0.0.1", port)
    await client.close()
    await busy.close()


async def test_app_client_max_size() -> None:
    async def upload(request: Any) -> Response:
        return Response(text=str(len(await request.read())))

    app = Application(client_max_size=100)
    app.router.add_post("/up", upload)
    runner, port = await _start(app)
    try:
        client = await RawClient.connect("127.0.0.1", port)
        await client.send(request_bytes("/up", "POST", body=b"x" * 100))
        assert (await client.response()).text() == "100"
        await client.send(request_bytes("/up", "POST", body=b"x" * 101))
        assert (await client.response()).status == 413
        await client.close()
    finally:
        await runner.cleanup()


async def test_app_exceptions_and_debug() -> None:
    async def boom(request: Any) -> Response:
        raise ValueError("hidden detail")

    for debug in (False, True):
        with pytest.warns(DeprecationWarning, match="debug argument is deprecated"):
            app = Application(debug=debug)
        app.router.add_get("/boom", boom)
        runner, port = await _start(app)
        try:
            client = await RawClient.connect("127.0.0.1", port)
            await client.send(request_bytes("/boom"))
            response = await client.response()
            assert response.status == 500
            assert (b"hidden detail" in response.body) is debug
            await client.close()
        finally:
            await runner.cleanup()


async def test_on_response_prepare_signal() -> None:
    async def handler(request: Any) -> Response:
        return Response(text="x")

    async def add_header(request: Any, response: Any) -> None:
        response.headers["X-Prepared"] = request.path

    app = Application()
    app.router.add_get("/p", handler)
    app.on_response_prepare.append(add_header)
    runner, port = await _start(app)
    try:
        client = await RawClient.connect("127.0.0.1", port)
        await client.send(request_bytes("/p"))
        assert (await client.response()).headers["X-Prepared"] == "/p"
        await client.close()
    finally:
        await runner.cleanup()


async def test_unix_and_sock_sites(tmp_path: Path) -> None:
    async def handler(request: Any) -> Response:
        return Response(text=f"remote={request.remote!r}")

    app = Application()
    app.router.add_get("/", handler)
    runner = AppRunner(app)
    await runner.setup()
    path = str(tmp_path / "s.sock")
    unix = UnixSite(runner, path)
    await unix.start()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock_site = SockSite(runner, sock)
    await sock_site.start()
    tcp = TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    try:
        assert unix.name == f"http://unix:{path}:"
        port = sock.getsockname()[1]
        assert sock_site.name == f"http://127.0.0.1:{port}"
        assert tcp.name.startswith("http://127.0.0.1:")
        assert runner.sites == {unix, sock_site, tcp}
        assert len(runner.addresses) == 3
        reader, writer = await asyncio.open_unix_connection(path)
        client = RawClient(reader, writer)
        await client.send(request_bytes("/"))
        assert (await client.response()).text() == "remote=''"
        await client.close()
        client = await RawClient.connect("127.0.0.1", port)
        await client.send(request_bytes("/"))
        assert (await client.response()).text() == "remote='127.0.0.1'"
        await client.close()
    finally:
        await runner.cleanup()
    assert runner.sites == set()


async def test_site_needs_setup() -> None:
    runner = AppRunner(Application())
    with pytest.raises(RuntimeError):
        TCPSite(runner, "127.0.0.1", 0)
    with pytest.raises(TypeError):
        AppRunner(object())


async def test_access_log_with_aiohttp_atoms(caplog: pytest.LogCaptureFixture) -> None:
    async def handler(request: Any) -> Response:
        return Response(text="12345")

    app = Application()
    app.router.add_get("/logged", handler)
    logger = logging.getLogger("test.access")
    runner, port = await _start(
        app,
        access_log=logger,
        access_log_format='%a "%r" %s %b "%{User-Agent}i" %{X-Out}o %Tf',
    )
    try:
        with caplog.at_level(logging.INFO, logger="test.access"):
            client = await RawClient.connect("127.0.0.1", port)
            await client.send(request_bytes("/logged?q=1", headers={"User-Agent": "probe/1"}))
            await client.response()
            await client.close()
            await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
    lines = [r.getMessage() for r in caplog.records if r.name == "test.access"]
    assert len(lines) == 1
    line = lines[0]
    assert line.startswith('127.0.0.1 "GET /logged?q=1 HTTP/1.1" 200 ')
    assert '"probe/1"' in line
    assert " - " in line or "-" in line.split('"')[-1]  # missing %{X-Out}o renders as "-"


RUN_APP_SCRIPT = textwrap.dedent(
    """
    import sys
    from forkloop.core.web.app import Application
    from forkloop.core.web.response import Response
    from forkloop.core.web.run_app import run_app

    async def hello(request):
        return Response(text="from run_app")

    async def on_cleanup(app):
        print("CLEANUP DONE", flush=True)

    app = Application()
    app.router.add_get("/", hello)
    app.on_cleanup.append(on_cleanup)
    run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=lambda *a: print(*a, flush=True))
    print("RUN_APP RETURNED", flush=True)
    """
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def run_app_script(tmp_path: Path) -> Path:
    script = tmp_path / "serve.py"
    script.write_text(RUN_APP_SCRIPT)
    return script


REPO = str(Path(__file__).resolve().parents[2])


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_run_app_serves_until_signal(run_app_script: Path, signum: int) -> None:
    script = run_app_script
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=REPO)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    try:
        assert process.stdout is not None
        banner = await asyncio.wait_for(process.stdout.readline(), 20)
        assert f"Running on http://127.0.0.1:{port}".encode() in banner
        client = await RawClient.connect("127.0.0.1", port)
        await client.send(request_bytes("/"))
        assert (await client.response()).text() == "from run_app"
        await client.close()
        process.send_signal(signum)
        output = await asyncio.wait_for(process.stdout.read(), 20)
        code = await asyncio.wait_for(process.wait(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert b"CLEANUP DONE" in output, output
    assert b"Traceback" not in output, output
    assert code == 0, output


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    result = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {result.stderr[-200:]!r}")
    return cert, key


async def test_tls_site_scheme_and_secure(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))

    async def handler(request: Any) -> Response:
        return Response(text=f"{request.scheme} {request.secure} {request.url}")

    app = Application()
    app.router.add_get("/tls", handler)
    runner = AppRunner(app)
    await runner.setup()
    site = TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    try:
        port = runner.addresses[0][1]
        assert site.name == f"https://127.0.0.1:{port}"
        client = await RawClient.connect("127.0.0.1", port, ssl=client_ctx)
        await client.send(request_bytes("/tls"))
        assert (await client.response()).text() == "https True https://test/tls"
        await client.close()
    finally:
        await runner.cleanup()

"""Every program in examples/ served by a real process (``python -m forkloop.web``) over a
real socket, checked against the output its docstring documents, then stopped with SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from forkloop.test_utils import unused_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.py"))
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0


@dataclass
class Served:
    base: str
    stdout: str = ""
    stderr: str = ""
    returncode: int | None = None

    def lines(self) -> list[str]:
        """What the app printed, without run_app's banner."""
        return [
            line
            for line in self.stdout.splitlines()
            if not line.startswith("======== Running on") and line != "(Press CTRL+C to quit)"
        ]


async def _wait_listening(proc: asyncio.subprocess.Process, port: int) -> None:
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
    while True:
        if proc.returncode is not None:
            raise RuntimeError(f"example exited early with {proc.returncode}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"example did not listen on {port} within {START_TIMEOUT_S}s")
        await asyncio.sleep(0.05)


async def _start(name: str) -> tuple[asyncio.subprocess.Process, int]:
    """Start the example on a free port; retry if another process took the port meanwhile."""
    for _ in range(3):
        port = unused_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-u",
            "-m",
            "forkloop.web",
            "-H",
            "127.0.0.1",
            "-P",
            str(port),
            f"examples.{name}:init_func",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await _wait_listening(proc, port)
        except RuntimeError:
            _, err = await proc.communicate()
            if b"address already in use" in err.lower():
                continue
            raise RuntimeError(f"example {name} exited early:\n{err.decode()[-2000:]}") from None
        except BaseException:
            proc.kill()
            await proc.communicate()
            raise
        return proc, port
    raise RuntimeError(f"no free port for example {name} after 3 attempts")


@contextlib.asynccontextmanager
async def serve(name: str) -> AsyncIterator[Served]:
    proc, port = await _start(name)
    served = Served(base=f"http://127.0.0.1:{port}")
    try:
        yield served
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), STOP_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            out, err = await proc.communicate()
        served.stdout = out.decode()
        served.stderr = err.decode()
        served.returncode = proc.returncode


Check = Callable[[aiohttp.ClientSession, str], Awaitable[None]]


async def text_of(session: aiohttp.ClientSession, url: str, **kwargs: object) -> str:
    async with session.get(url, **kwargs) as resp:  # type: ignore[arg-type]
        assert resp.status == 200, (url, resp.status)
        return await resp.text()


async def check_hello(s: aiohttp.ClientSession, base: str) -> None:
    assert await text_of(s, base + "/") == "Hello, world"


async def check_route_table(s: aiohttp.ClientSession, base: str) -> None:
    assert await text_of(s, base + "/") == "Hello, world"
    async with s.post(base + "/echo", data=b"ping") as resp:
        assert await resp.text() == "echo: ping"
    assert await text_of(s, base + "/users/42") == "user 42"


async def check_handler_class(s: aiohttp.ClientSession, base: str) -> None:
    assert await text_of(s, base + "/intro") == "Hello, world"
    assert await text_of(s, base + "/greet/Alice") == "Hello, Alice"


async def check_class_view(s: aiohttp.ClientSession, base: str) -> None:
    assert await text_of(s, base + "/path/to") == "GET /path/to"
    async with s.post(base + "/path/to") as resp:
        assert await resp.text() == "POST /path/to"
    async with s.delete(base + "/path/to") as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET,POST"


async def check_named_route(s: aiohttp.ClientSession, base: str) -> None:
    assert await text_of(s, base + "/root") == "/root?a=b&c=d"


async def check_url_building(s: aiohttp.ClientSession, base: str) -> None:
    assert await text_of(s, base + "/alice/info") == "user alice, see /john_doe/info?a=b"


async def check_middleware_order(s: aiohttp.ClientSession, base: str) -> None:
    assert await text_of(s, base + "/") == "Hello"


async def check_error_middleware(s: aiohttp.ClientSession, base: str) -> None:
    assert await text_of(s, base + "/") == "Hello"
    async with s.get(base + "/nowhere") as resp:
        assert resp.status == 404
        assert await resp.json() == {"error": "Not Found"}
    async with s.get(base + "/gone") as resp:
        assert resp.status == 404
        assert await resp.json() == {"error": "no such thing"}


async def check_middleware_factory(s: aiohttp.ClientSession, base: str) -> None:
    assert await text_of(s, base + "/") == "Hello wink"


async def check_response_prepare(s: aiohttp.ClientSession, base: str) -> None:
    for path, status in (("/", 200), ("/stream", 200), ("/missing", 404)):
        async with s.get(base + path) as resp:
            assert resp.status == status
            assert resp.headers["My-Header"] == "value"
            body = await resp.text()
    assert body == "404: Not Found"
    assert await text_of(s, base + "/stream") == "part 0\npart 1\npart 2\n"


async def check_cleanup_ctx(s: aiohttp.ClientSession, base: str) -> None:
    assert await text_of(s, base + "/") == "3 rows, pool open"


async def check_background_task(s: aiohttp.ClientSession, base: str) -> None:
    first = int((await text_of(s, base + "/")).removeprefix("ticks: "))
    for _ in range(100):
        await asyncio.sleep(0.1)
        if int((await text_of(s, base + "/")).removeprefix("ticks: ")) > first:
            return
    raise AssertionError("the background task did not tick")


async def check_storage(s: aiohttp.ClientSession, base: str) -> None:
    async with s.get(base + "/", headers={"X-User": "ann"}) as resp:
        assert await resp.text() == "Welcome to Demo, ann"
        assert resp.headers["X-Handled-By"] == "greet"
    assert await text_of(s, base + "/") == "Welcome to Demo, guest"


async def check_redirect_login(s: aiohttp.ClientSession, base: str) -> None:
    async with s.get(base + "/private", allow_redirects=False) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == "/login"
    assert await text_of(s, base + "/private") == "Please log in"


async def check_accept_chooser(s: aiohttp.ClientSession, base: str) -> None:
    async with s.get(base + "/", headers={"Accept": "application/json"}) as resp:
        assert await resp.json() == {"hello": "world"}
    async with s.get(base + "/", headers={"Accept": "application/xml"}) as resp:
        assert resp.content_type == "application/xml"
        assert await resp.text() == "<hello>world</hello>"
    async with s.get(base + "/", headers={"Accept": "text/csv"}) as resp:
        assert resp.status == 406


async def check_form_login(s: aiohttp.ClientSession, base: str) -> None:
    assert '<form method="post"' in await text_of(s, base + "/login")
    async with s.post(base + "/login", data={"login": "admin", "password": "wrong"}) as resp:
        assert resp.status == 403
    async with s.post(
        base + "/login", data={"login": "admin", "password": "secret"}, allow_redirects=False
    ) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == "/"
    assert await text_of(s, base + "/") == "Hello, admin"  # the session kept the cookie


CHECKS: dict[str, Check] = {
    name.removeprefix("check_"): fn
    for name, fn in list(globals().items())
    if name.startswith("check_") and callable(fn)
}

PRINTED = {
    "middleware_order": [
        "Middleware 1 called",
        "Middleware 2 called",
        "Handler",
        "Middleware 2 finished",
        "Middleware 1 finished",
    ],
    "cleanup_ctx": ["pool opened", "pool closed"],
    "background_task": ["background task stopped"],
}


def test_every_example_has_a_check() -> None:
    assert EXAMPLES, "no examples found"
    assert set(EXAMPLES) == set(CHECKS)


@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLES)
async def test_example(name: str) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with serve(name) as served, aiohttp.ClientSession(cookie_jar=jar) as session:
        await CHECKS[name](session, served.base)
    assert served.returncode == 0, served.stderr[-2000:]
    assert "Traceback" not in served.stderr, served.stderr[-2000:]
    assert served.lines() == PRINTED.get(name, []), served.stdout


@pytest.mark.slow
async def test_cli_serves_a_unix_socket(tmp_path: Path) -> None:
    sock_path = tmp_path / "app.sock"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "forkloop.web",
        "-U",
        str(sock_path),
        "examples.hello:init_func",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        for _ in range(int(START_TIMEOUT_S / 0.05)):
            if sock_path.exists():
                break
            await asyncio.sleep(0.05)
        connector = aiohttp.UnixConnector(path=str(sock_path))
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(100):
                try:
                    async with session.get("http://localhost/") as resp:
                        assert await resp.text() == "Hello, world"
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("the unix socket never answered")
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.communicate(), STOP_TIMEOUT_S)
    assert proc.returncode == 0

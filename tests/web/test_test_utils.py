"""forkloop.test_utils and the pytest plugin: servers, client, mocked requests, fixtures."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path
from typing import Any

import pytest

from forkloop import web
from forkloop.test_utils import (
    AioHTTPTestCase,
    RawTestServer,
    TestClient,
    TestServer,
    make_mocked_request,
    unused_port,
)

ROOT = Path(__file__).resolve().parents[2]


async def hello(request: web.Request) -> web.Response:
    return web.Response(text=f"hello {request.match_info.get('name', 'world')}")


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/{name}", hello)
    return app


async def test_client_verbs_and_context_managers() -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=f"{request.method} {await request.text()}")

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    async with TestClient(TestServer(app)) as client:
        assert client.app is app
        assert client.host == "127.0.0.1"
        assert isinstance(client.port, int)
        assert client.make_url("/x") == client.server.make_url("/x")
        assert str(client.make_url("/x")).startswith(f"http://127.0.0.1:{client.port}/")
        for verb in ("get", "post", "put", "patch", "delete", "options"):
            resp = await getattr(client, verb)("/echo", data="b" if verb != "get" else None)
            assert resp.status == 200
        async with client.post("/echo", data="body") as resp:
            assert await resp.text() == "POST body"
        resp = await client.head("/echo")
        assert resp.status == 200
        assert client.session is not None
        server = client.server
        assert server.started
    assert server.closed
    assert client.session.closed


async def test_raw_server_and_server_fixtures(aiohttp_raw_server, aiohttp_server, aiohttp_client):
    async def raw(request: web.BaseRequest) -> web.Response:
        return web.Response(text=f"raw {request.path}")

    raw_server = await aiohttp_raw_server(raw)
    assert isinstance(raw_server, RawTestServer)
    client = await aiohttp_client(raw_server)
    assert await (await client.get("/p")).text() == "raw /p"
    assert client.app is None

    server = await aiohttp_server(make_app())
    client2 = await aiohttp_client(server)
    assert await (await client2.get("/ann")).text() == "hello ann"


async def test_server_on_a_chosen_port(aiohttp_server, aiohttp_unused_port) -> None:
    port = aiohttp_unused_port()
    server = await aiohttp_server(make_app(), port=port)
    assert server.port == port
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


async def test_client_fixture_rejects_other_objects(aiohttp_client) -> None:
    with pytest.raises(TypeError, match="Application or a test server"):
        await aiohttp_client(object())


async def test_make_url_before_start_is_an_error() -> None:
    server = TestServer(make_app())
    with pytest.raises(RuntimeError, match="not started"):
        server.make_url("/")
    with pytest.raises(TypeError, match="Application"):
        TestServer(object())  # type: ignore[arg-type]


def test_unused_port_is_bindable() -> None:
    port = unused_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


async def test_make_mocked_request_with_match_info_and_app() -> None:
    app = web.Application()
    db = web.AppKey("db", str)
    app[db] = "database"
    request = make_mocked_request(
        "GET", "/users/7?x=1", headers={"X-Token": "t"}, match_info={"id": "7"}, app=app
    )
    assert request.method == "GET"
    assert request.path == "/users/7"
    assert request.query["x"] == "1"
    assert request.headers["X-Token"] == "t"
    assert request.match_info["id"] == "7"
    assert request.match_info.current_app is app
    assert request.app[db] == "database"
    assert request.config_dict[db] == "database"


async def test_mocked_request_drives_a_handler_and_body() -> None:
    async def handler(request: web.Request) -> web.Response:
        data = await request.json()
        return web.json_response({"got": data, "user": request.match_info["user"]})

    request = make_mocked_request(
        "POST",
        "/u/ann",
        headers={"Content-Type": "application/json", "Content-Length": "8"},
        match_info={"user": "ann"},
        payload=b'{"a": 1}',
    )
    resp = await handler(request)
    assert resp.status == 200
    assert resp.text == '{"got": {"a": 1}, "user": "ann"}'
    await resp.prepare(request)
    await resp.write_eof()
    assert request.transport.written.startswith(b"HTTP/1.1 200 OK\r\n")


def test_mocked_request_without_a_loop() -> None:
    request = make_mocked_request("GET", "/", match_info={})
    assert request.match_info == {}
    assert isinstance(request.app, web.Application)


class TestAioHTTPTestCase(AioHTTPTestCase):
    async def get_application(self) -> web.Application:
        return make_app()

    async def test_get(self) -> None:
        resp = await self.client.get("/bob")
        assert await resp.text() == "hello bob"


@pytest.mark.slow
def test_an_aiohttp_style_test_module_runs_unchanged(tmp_path: Path, run_pytest: Any) -> None:
    """The aiohttp docs' testing example, with only the import changed, in its own pytest run:
    the fixtures come from the ``forkloop`` pytest11 entry point, no conftest."""
    test_file = tmp_path / "test_hello.py"
    test_file.write_text(
        textwrap.dedent(
            """
            from forkloop import web

            async def hello(request):
                return web.Response(text="Hello, world")

            async def test_hello(aiohttp_client):
                app = web.Application()
                app.router.add_get("/", hello)
                client = await aiohttp_client(app)
                resp = await client.get("/")
                assert resp.status == 200
                text = await resp.text()
                assert "Hello, world" in text
            """
        )
    )
    result = run_pytest(test_file, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert "1 passed" in result.stdout, result.stdout + result.stderr


def test_loop_helpers_and_mocked_coro() -> None:
    from forkloop.test_utils import loop_context, make_mocked_coro, unittest_run_loop

    with loop_context(fast=True) as loop:
        coro = make_mocked_coro(5)
        assert loop.run_until_complete(coro(1, x=2)) == 5
        coro.assert_called_once_with(1, x=2)
        failing = make_mocked_coro(raise_exception=ValueError("no"))
        with pytest.raises(ValueError, match="no"):
            loop.run_until_complete(failing())
    assert loop.is_closed()

    def f() -> int:
        return 1

    assert unittest_run_loop(f) is f

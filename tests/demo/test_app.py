"""The demo app in one process: a real forkloop server on loopback, aiohttp as the client.

Page and versioned static assets, the chat's protocol (round trip, rooms, bad input), the
streaming upload (sizes and SHA-256 of real multipart bodies, limits, bad bodies), the stats
endpoint against a real metrics server, and how a worker's identity is found.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import re
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from forkloop import web
from forkloop.demo import app as demo_factory
from forkloop.demo import rooms as rooms_module
from forkloop.demo import upload as upload_module
from forkloop.demo.application import METRICS_URL_ENV, STATIC_DIR, create_app
from forkloop.demo.identity import SLOT_ENV, WorkerIdentity, find_identity
from forkloop.demo.state import STATE

Client = Any
MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
async def client(aiohttp_client: MakeClient) -> Client:
    app = create_app(
        identity=WorkerIdentity(slot=3, pid=4242), metrics_url="http://127.0.0.1:9/metrics"
    )
    return await aiohttp_client(app)


# ---------------------------------------------------------------- page and static


async def test_page_links_versioned_assets_that_resolve(client: Client) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    page = await resp.text()
    assert 'id="served-by" data-slot="3" data-pid="4242"' in page
    assert "page served by worker slot 3 (pid 4242)" in page
    assert "http://127.0.0.1:9/metrics" in page
    links = re.findall(r'(?:href|src)="(/static/[^"]+)"', page)
    assert {link.split("?")[0] for link in links} == {
        "/static/demo.css",
        "/static/demo.js",
        "/static/logo.svg",
    }
    for link in links:
        assert "?v=" in link
        asset = await client.get(link)
        assert asset.status == 200
        name = link.split("?")[0].rsplit("/", 1)[1]
        assert await asset.read() == (STATIC_DIR / name).read_bytes()


def test_no_external_resources_in_the_package() -> None:
    for path in STATIC_DIR.rglob("*"):
        text = path.read_text(encoding="utf-8")
        # The SVG namespace is an identifier, not a fetch.
        text = text.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert not re.search(r"https?://", text), path
    page = (Path(__file__).parents[2] / "forkloop" / "demo" / "page.py").read_text()
    assert not re.search(r"(src|href)=\"https?:", page)


async def test_asset_version_follows_content(aiohttp_client: MakeClient) -> None:
    first = await (await aiohttp_client(create_app())).get("/")
    versions = re.findall(r"demo\.js\?v=([^\"]+)", await first.text())
    digest = hashlib.sha256((STATIC_DIR / "demo.js").read_bytes()).digest()
    expected = base64.urlsafe_b64encode(digest).decode().replace("=", "%3D")
    assert versions == [expected]


# ---------------------------------------------------------------- chat


async def receive(ws: Any, kind: str, **fields: Any) -> dict[str, Any]:
    """The next message of type ``kind`` (with ``fields``), skipping others."""
    while True:
        msg = await ws.receive_json(timeout=5)
        if msg["type"] == kind and all(msg.get(k) == v for k, v in fields.items()):
            return dict(msg)


async def test_chat_round_trip_and_rooms(client: Client) -> None:
    alice = await client.ws_connect("/ws/chat?room=lobby&name=alice")
    hello = await receive(alice, "hello")
    assert hello == {
        "type": "hello",
        "room": "lobby",
        "name": "alice",
        "members": 1,
        "worker": {"slot": 3, "pid": 4242},
    }
    bob = await client.ws_connect("/ws/chat?room=lobby&name=bob")
    assert (await receive(bob, "hello"))["members"] == 2
    joined = await receive(alice, "presence", joined="bob")
    assert joined["members"] == 2
    elsewhere = await client.ws_connect("/ws/chat?room=other&name=carol")
    await receive(elsewhere, "hello")

    await alice.send_str(json.dumps({"text": "  hi bob  "}))
    for ws in (alice, bob):
        msg = await receive(ws, "message")
        assert (msg["from"], msg["text"], msg["room"]) == ("alice", "hi bob", "lobby")
        assert msg["worker"] == {"slot": 3, "pid": 4242}
    await bob.send_str("plain text works too")
    assert (await receive(alice, "message"))["text"] == "plain text works too"
    # The other room heard nothing of it.
    await elsewhere.send_str("anyone?")
    assert (await receive(elsewhere, "message"))["text"] == "anyone?"

    await bob.close()
    left = await receive(alice, "presence", left="bob")
    assert left["members"] == 1
    for ws in (alice, elsewhere):
        await ws.close()
    state = client.server.app[STATE]
    assert state.rooms.members == {}


async def test_a_member_that_stops_reading_is_closed_not_waited_for(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rooms_module, "SEND_TIMEOUT_S", 0.3)
    monkeypatch.setattr(rooms_module, "CLOSE_TIMEOUT_S", 0.3)
    alice = await client.ws_connect("/ws/chat?room=busy&name=alice")
    await receive(alice, "hello")
    # "slow" completes the handshake with a tiny receive buffer, then never reads again.
    loop = asyncio.get_running_loop()
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.setblocking(False)
    await loop.sock_connect(slow, (client.host, client.port))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(
        slow,
        (
            "GET /ws/chat?room=busy&name=slow HTTP/1.1\r\n"
            f"Host: {client.host}:{client.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode(),
    )
    assert await asyncio.wait_for(loop.sock_recv(slow, 12), 5) == b"HTTP/1.1 101"
    await receive(alice, "presence", joined="slow")
    text = "x" * 1900
    left: dict[str, Any] | None = None
    try:
        for _ in range(5_000):  # bounded: a few MB fill the slow peer's buffers
            await alice.send_str(text)
            while True:  # until alice's own echo, noting the departure if it comes
                msg = await alice.receive_json(timeout=5)
                if msg.get("left") == "slow":
                    left = msg
                if msg["type"] == "message":
                    break
            if left is not None:
                break
    finally:
        slow.close()
    assert left is not None, "the slow member was never dropped"
    assert left["members"] == 1
    # The room still works for the member that reads.
    await alice.send_str("still flowing")
    assert (await receive(alice, "message", text="still flowing"))["from"] == "alice"
    await alice.close()


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ('{"text": 5}', 'expected {"text": "..."}'),
        ("{not json", "not valid JSON"),
        ("   ", "empty message"),
        ("x" * 2001, "message longer than 2000 characters"),
    ],
)
async def test_chat_refuses_bad_messages_and_stays_open(
    client: Client, frame: str, error: str
) -> None:
    ws = await client.ws_connect("/ws/chat?name=" + "n" * 50)
    hello = await receive(ws, "hello")
    assert hello["name"] == "n" * 32
    assert hello["room"] == "lobby"
    await ws.send_str(frame)
    assert (await receive(ws, "error"))["error"] == error
    await ws.send_str("still here")
    assert (await receive(ws, "message"))["text"] == "still here"
    await ws.close()


async def test_chat_refuses_binary_frames(client: Client) -> None:
    ws = await client.ws_connect("/ws/chat")
    await ws.send_bytes(b"\x00\x01")
    assert (await receive(ws, "error"))["error"] == "text frames only"
    await ws.close()


@pytest.mark.parametrize("room", ["", "has space", "x" * 33, "../etc"])
async def test_chat_refuses_a_bad_room_before_upgrading(client: Client, room: str) -> None:
    resp = await client.get("/ws/chat", params={"room": room})
    assert resp.status == 400
    assert "room:" in await resp.text()


async def test_shutdown_closes_chat_sockets_with_1001(aiohttp_client: MakeClient) -> None:
    cli = await aiohttp_client(create_app())
    ws = await cli.ws_connect("/ws/chat")
    await receive(ws, "hello")
    await cli.server.app.shutdown()
    msg = await ws.receive(timeout=5)
    while msg.type == aiohttp.WSMsgType.TEXT:  # the presence notice may come first
        msg = await ws.receive(timeout=5)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.close_code == 1001


# ---------------------------------------------------------------- upload


async def test_upload_streams_files_and_reports_sha256(client: Client) -> None:
    big = os.urandom(3 * 1024 * 1024 + 17)
    small = b"hello\r\n--not-a-boundary\r\n"
    form = aiohttp.FormData()
    form.add_field("comment", "a plain field")
    form.add_field(
        "file", io.BytesIO(big), filename="big.bin", content_type="application/octet-stream"
    )
    form.add_field("second", io.BytesIO(small), filename="small.txt", content_type="text/plain")
    resp = await client.post("/api/upload", data=form)
    assert resp.status == 200
    body = await resp.json()
    assert body["files"] == [
        {
            "field": "file",
            "filename": "big.bin",
            "size": len(big),
            "sha256": hashlib.sha256(big).hexdigest(),
        },
        {
            "field": "second",
            "filename": "small.txt",
            "size": len(small),
            "sha256": hashlib.sha256(small).hexdigest(),
        },
    ]
    assert body["bytes"] == len(big) + len(small) + len("a plain field")
    assert body["worker"] == {"slot": 3, "pid": 4242}


async def test_upload_of_an_empty_file(client: Client) -> None:
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(b""), filename="empty")
    body = await (await client.post("/api/upload", data=form)).json()
    assert body["files"][0]["size"] == 0
    assert body["files"][0]["sha256"] == hashlib.sha256(b"").hexdigest()


async def test_upload_refuses_what_is_not_multipart(client: Client) -> None:
    resp = await client.post("/api/upload", data=b"raw", headers={"Content-Type": "text/plain"})
    assert resp.status == 400
    assert "multipart" in await resp.text()


async def test_upload_refuses_a_truncated_body(client: Client) -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="f"; filename="x"\r\n\r\nabc'
    resp = await client.post(
        "/api/upload", data=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert resp.status == 400


async def test_upload_limits(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upload_module, "MAX_UPLOAD_BYTES", 1000)
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(b"x" * 5000), filename="too-big")
    resp = await client.post("/api/upload", data=form)
    assert resp.status == 413
    monkeypatch.setattr(upload_module, "MAX_PARTS", 2)
    form = aiohttp.FormData()
    for i in range(3):
        form.add_field(f"f{i}", io.BytesIO(b"x"), filename=f"f{i}")
    resp = await client.post("/api/upload", data=form)
    assert resp.status == 400
    assert "more than 2 parts" in await resp.text()


# ---------------------------------------------------------------- stats


async def test_stats_endpoint_reads_a_real_metrics_server(
    aiohttp_client: MakeClient, aiohttp_server: Callable[..., Awaitable[Any]]
) -> None:
    count = {"n": 0}

    async def metrics(request: web.Request) -> web.Response:
        count["n"] += 7
        n = count["n"]
        name = "http_server_request_duration_seconds"
        text = (
            f"# TYPE {name} histogram\n"
            f'{name}_bucket{{le="0.001",worker="0"}} {n}\n'
            f'{name}_bucket{{le="+Inf",worker="0"}} {n}\n'
            f'{name}_count{{worker="0"}} {n}\n'
            f'{name}_sum{{worker="0"}} {n * 0.0005}\n'
        )
        return web.Response(text=text)

    source = web.Application()
    source.router.add_get("/metrics", metrics)
    server = await aiohttp_server(source)
    app = create_app(metrics_url=str(server.make_url("/metrics")))
    app[STATE].stats.min_interval_s = 0.0  # every poll scrapes: no waiting in the test
    cli = await aiohttp_client(app)
    first = await (await cli.get("/api/stats")).json()
    assert first["available"] is False
    assert first["worker"]["pid"] == os.getpid()
    second = await (await cli.get("/api/stats")).json()
    assert second["available"] is True
    assert second["rate_rps"] > 0
    assert second["requests"] == 7
    assert second["p50_ms"] == pytest.approx(0.5)


async def test_stats_endpoint_without_metrics_says_why(client: Client) -> None:
    resp = await client.get("/api/stats")
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    data = await resp.json()
    assert data["available"] is False
    assert data["error"].startswith("http://127.0.0.1:9/metrics: ")


def test_metrics_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(METRICS_URL_ENV, "http://127.0.0.1:1234/m")
    assert create_app()[STATE].stats.url == "http://127.0.0.1:1234/m"
    monkeypatch.setenv(METRICS_URL_ENV, "ftp://nope")
    with pytest.raises(ValueError, match="metrics URL must be"):
        create_app()


# ---------------------------------------------------------------- identity


async def test_whoami(client: Client) -> None:
    assert await (await client.get("/api/whoami")).json() == {"slot": 3, "pid": 4242}


def test_identity_outside_a_worker_is_the_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SLOT_ENV, raising=False)
    who = find_identity()
    assert who == WorkerIdentity(slot=None, pid=os.getpid())
    assert who.label == f"pid {os.getpid()}"
    assert demo_factory()[STATE].identity.slot is None


def test_identity_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SLOT_ENV, "5")
    assert find_identity().slot == 5
    monkeypatch.setenv(SLOT_ENV, "five")
    assert find_identity().slot is None


def test_identity_from_the_worker_on_the_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SLOT_ENV, raising=False)

    class FakeWorker:
        def __init__(self, master_pid: int) -> None:
            self.ctx = SimpleNamespace(slot=7, master_pid=master_pid)

        def load(self) -> WorkerIdentity:
            return find_identity()

    assert FakeWorker(os.getppid()).load() == WorkerIdentity(slot=7, pid=os.getpid())
    # A context from some other master is not ours.
    assert FakeWorker(os.getppid() + 1).load().slot is None


def test_identity_search_survives_odd_objects_on_the_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SLOT_ENV, raising=False)

    class Touchy:
        @property
        def ctx(self) -> object:
            raise RuntimeError("not here")

        def load(self) -> WorkerIdentity:
            return find_identity()

    assert Touchy().load().slot is None

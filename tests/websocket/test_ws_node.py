"""Interop with the npm ``ws`` client (Node.js), run as a real separate process.

``npm install`` runs in tests/websocket/node/ on first use; without node/npm, or when the
package cannot be installed (no network), the test is skipped with the reason.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from test_ws_server import make_app
from ws_helpers import Serve

from forkloop import web

NODE_DIR = Path(__file__).resolve().parent / "node"


def _node_ready() -> str:
    """Path of ``node`` once the ``ws`` package is installed; skip when impossible."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node/npm are not installed: the npm ws interop test needs them")
    if not (NODE_DIR / "node_modules" / "ws" / "package.json").exists():
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"npm install of ws failed (offline?): {done.stderr.strip()[-300:]}")
    return node


async def server_closes(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.receive_str()
    await ws.close(code=4001, message=b"server says bye")
    return ws


@pytest.mark.slow
async def test_npm_ws_client(serve: Serve) -> None:
    node = _node_ready()
    base = await serve(make_app(server=server_closes))
    proc = await asyncio.create_subprocess_exec(
        node,
        str(NODE_DIR / "client.mjs"),
        base.replace("http://", "ws://"),
        cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    results = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    failed = [r for r in results if not r["ok"]]
    assert not failed, failed
    names = {r["name"] for r in results}
    for tag in ("plain", "deflate"):
        for check in ("negotiation", "text", "binary 1048576", "binary 16777216", "fragmented"):
            assert f"{tag}: {check}" in names, (names, err.decode()[-500:])
        assert f"{tag}: ping/pong" in names
        assert f"{tag}: client close code" in names
    assert "server close code" in names
    assert "invalid utf-8 gets 1007" in names
    assert proc.returncode == 0, err.decode()[-500:]

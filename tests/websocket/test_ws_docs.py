"""The chat example of docs/websockets.md works as the page says."""

from __future__ import annotations

import asyncio
import re
import types
from pathlib import Path

from websockets.asyncio.client import connect
from ws_helpers import Serve

PAGE = Path(__file__).resolve().parents[2] / "docs" / "websockets.md"


def chat_module() -> types.ModuleType:
    blocks = re.findall(r"^```python\n(.*?)^```", PAGE.read_text(), re.M | re.S)
    assert blocks, "docs/websockets.md has no python example"
    module = types.ModuleType("docs_chat")
    exec(compile(blocks[0], str(PAGE), "exec"), module.__dict__)
    return module


async def test_chat_example_broadcasts(serve: Serve) -> None:
    base = await serve(chat_module().make_app())
    url = base.replace("http://", "ws://") + "/chat"
    async with connect(url + "?name=ann") as ann, connect(url + "?name=bob") as bob:
        await asyncio.sleep(0.05)  # both are in the room
        await ann.send("hello")
        assert await asyncio.wait_for(ann.recv(), 5) == "ann: hello"
        assert await asyncio.wait_for(bob.recv(), 5) == "ann: hello"
        await bob.send("hi ann")
        assert await asyncio.wait_for(ann.recv(), 5) == "bob: hi ann"

"""``from forkloop import web`` offers every public name of ``aiohttp.web``."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web as aio_web

from forkloop import web


def test_every_aiohttp_web_name_exists() -> None:
    missing = sorted(name for name in aio_web.__all__ if not hasattr(web, name))
    assert missing == []


def test_json_bytes_response() -> None:
    response = web.json_bytes_response({"a": 1}, dumps=lambda data: json.dumps(data).encode())
    assert response.body == b'{"a": 1}'
    assert response.content_type == "application/json"
    with pytest.raises(ValueError, match="only one"):
        web.json_bytes_response({"a": 1}, dumps=lambda d: b"", body=b"x")


async def test_named_pipe_site_is_windows_only() -> None:
    app = web.Application()
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        with pytest.raises(RuntimeError, match="windows"):
            web.NamedPipeSite(runner, r"\\.\pipe\forkloop")
    finally:
        await runner.cleanup()
    await asyncio.sleep(0)


def test_payload_errors_are_exceptions() -> None:
    assert issubclass(web.RequestPayloadError, Exception)
    assert issubclass(web.PayloadAccessError, Exception)

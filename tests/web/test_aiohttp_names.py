"""``from forkloop import web`` offers every public name of ``aiohttp.web``."""

from __future__ import annotations

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


def test_request_payload_error_answers_400_when_it_escapes() -> None:
    # A handler that lets it escape answers with the error's own status (lowlevel.Server).
    exc = web.RequestPayloadError("malformed request body: bad chunk")
    assert exc.status == 400
    assert str(exc) == "malformed request body: bad chunk"


def test_star_import_binds_aiohttp_web_names() -> None:
    # ``from forkloop.web import *`` must bind what ``from aiohttp.web import *`` binds.
    assert sorted(web.__all__) == sorted(aio_web.__all__)
    assert len(set(web.__all__)) == len(web.__all__)
    fl_names: dict[str, object] = {}
    aio_names: dict[str, object] = {}
    exec("from forkloop.web import *", fl_names)
    exec("from aiohttp.web import *", aio_names)
    assert set(fl_names) - {"__builtins__"} == set(aio_names) - {"__builtins__"}

"""Differential test of request body limits (issue 16, group 2): ``client_max_size`` (a number,
0, None) and ``client_max_fields`` on ``Application``, on ``request.read()``, ``post()``
(urlencoded and multipart) and a multipart part's ``read()``/``text()``/``json()``/``form()``,
and on ``make_mocked_request``/``clone``; the same handlers on ``aiohttp.web`` and
``forkloop.web``, driven by aiohttp's client, must answer alike.

Deliberate differences (docs/migrating-from-aiohttp.md), left out here: with
``client_max_size=None`` aiohttp fails a multipart ``post()`` or part read with a 500
(``TypeError``) where forkloop reads without limit, and with ``client_max_size=0`` (no limit
for ``read()`` in both) aiohttp refuses every non-empty part read with 413 where forkloop reads
it. The 413 texts differ after their first clause (forkloop adds the size received)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp import test_utils as aio_test_utils
from aiohttp import web as aio_web

from forkloop import test_utils as fl_test_utils
from forkloop import web as fl_web

CONFIGS: list[dict[str, Any]] = [
    {},
    {"client_max_size": None},
    {"client_max_size": 0},
    {"client_max_size": 100, "client_max_fields": 3},
    {"client_max_fields": 0},
    {"client_max_fields": 5},
]
PART_READS = ("read", "text", "json", "form", "decode")


def build_app(web: ModuleType, config: dict[str, Any]) -> Any:
    def refused(exc: Any) -> Any:
        first = exc.text.split(",")[0].rstrip(".")
        return web.Response(text=f"refused {type(exc).__name__} {exc.status} {first}")

    async def read(request: Any) -> Any:
        try:
            body = await request.read()
        except web.HTTPException as exc:
            return refused(exc)
        return web.Response(text=f"read {len(body)} {request.client_max_size}")

    async def post(request: Any) -> Any:
        try:
            data = await request.post()
        except web.HTTPException as exc:
            return refused(exc)
        return web.Response(text=f"post {len(data)} {request.client_max_fields}")

    async def part(request: Any) -> Any:
        reader = await request.multipart()
        field = await reader.next()
        how = request.match_info["how"]
        try:
            if how == "read":
                value: Any = len(await field.read())
            elif how == "text":
                value = len(await field.text())
            elif how == "json":
                value = len(await field.json())
            elif how == "form":
                value = await field.form()
            else:
                value = len(await field.read(decode=True))
        except web.HTTPException as exc:
            return refused(exc)
        return web.Response(text=f"part {value}")

    app = web.Application(**config)
    app.router.add_post("/read", read)
    app.router.add_post("/post", post)
    app.router.add_post("/part/{how}", part)
    return app


def urlencoded(n: int) -> str:
    return "&".join(f"a{i}=1" for i in range(n))


def part_body(how: str, size: int) -> bytes:
    if how == "json":
        return b'"' + b"x" * size + b'"'
    if how == "form":
        return b"a=" + b"x" * size
    return b"y" * size


async def answers(client: Any, config: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    cases: list[tuple[str, Any]] = [
        ("/read", b"x" * 50),
        ("/read", b"x" * 2_000_000),
        ("/post", urlencoded(3)),
        ("/post", urlencoded(4)),
        ("/post", urlencoded(5)),
        ("/post", urlencoded(6)),
        ("/post", urlencoded(1500)),
    ]
    for path, data in cases:
        async with client.post(path, data=data, headers=form_type) as resp:
            out.append((config, path, len(data), resp.status, await resp.text()))
    lenient = config.get("client_max_size", 1) in (None, 0)  # the deliberate differences
    if config.get("client_max_size", 1) is not None:
        for fields in (3, 4, 6):
            form = aiohttp.FormData(default_to_multipart=True)
            for i in range(fields):
                form.add_field(f"f{i}", "v")
            async with client.post("/post", data=form) as resp:
                out.append((config, "multipart", fields, resp.status, await resp.text()))
    if not lenient:
        for how in PART_READS:
            for size in (10, 150, 2_000_000):
                writer = aiohttp.MultipartWriter("form-data")
                part = writer.append(part_body(how, size), {"Content-Type": "text/plain"})
                part.set_content_disposition("form-data", name="f")
                async with client.post(f"/part/{how}", data=writer) as resp:
                    out.append((config, "part", how, size, resp.status, await resp.text()))
    return out


@pytest.mark.filterwarnings("ignore:Sending a large body:ResourceWarning")  # the client's
@pytest.mark.parametrize("config", CONFIGS, ids=repr)
async def test_body_limits_like_aiohttp(config: dict[str, Any]) -> None:
    aio_server = aio_test_utils.TestServer(build_app(aio_web, config))
    async with aio_test_utils.TestClient(aio_server) as client:
        expected = await answers(client, config)
    fl_server = fl_test_utils.TestServer(build_app(fl_web, config))
    async with fl_test_utils.TestClient(fl_server) as client:
        got = await answers(client, config)
    mismatches = [(e, g) for e, g in zip(expected, got, strict=True) if e != g]
    assert not mismatches, "\n".join(f"aiohttp : {e}\nforkloop: {g}" for e, g in mismatches)


@pytest.mark.parametrize("config", CONFIGS, ids=repr)
async def test_application_and_request_carry_limits_like_aiohttp(config: dict[str, Any]) -> None:
    def read(web: ModuleType, test_utils: ModuleType) -> Any:
        web.Application(**config)  # accepted, as by aiohttp
        request = test_utils.make_mocked_request("POST", "/", **config)
        clone = request.clone()
        other = request.clone(client_max_size=7, client_max_fields=9)
        return (
            (request.client_max_size, request.client_max_fields),
            (clone.client_max_size, clone.client_max_fields),
            (other.client_max_size, other.client_max_fields),
        )

    assert read(fl_web, fl_test_utils) == read(aio_web, aio_test_utils)

"""Property test over a real socket: random pipelines of valid requests (Content-Length and
chunked bodies, HTTP/1.0 and 1.1), sent in random pieces, get one correct response each, in
order."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rawhttp import RawClient, serving

from forkloop.core.web.response import Response


async def _echo(request: Any) -> Response:
    body = await request.read()
    return Response(text=f"{request.method} {request.path_qs} {hashlib.sha256(body).hexdigest()}")


@st.composite
def pipelines(draw: st.DrawFn) -> tuple[bytes, list[str], list[str]]:
    """Bytes of a pipeline, the expected response texts, and the methods (for HEAD)."""
    count = draw(st.integers(1, 12))
    data = b""
    texts: list[str] = []
    methods: list[str] = []
    for index in range(count):
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]))
        path = f"/r{index}" + draw(st.sampled_from(["", "?a=1", "?x=y&y=z"]))
        body = draw(st.binary(max_size=300)) if method in ("POST", "PUT") else b""
        framing = draw(st.sampled_from(["length", "chunked"])) if body else "none"
        version = draw(st.sampled_from(["1.1", "1.1", "1.0"]))
        if framing == "chunked" and version == "1.0":
            framing = "length"
        lines = [f"{method} {path} HTTP/{version}", "Host: prop"]
        if version == "1.0":
            lines.append("Connection: keep-alive")
        payload = b""
        if framing == "length":
            lines.append(f"Content-Length: {len(body)}")
            payload = body
        elif framing == "chunked":
            lines.append("Transfer-Encoding: chunked")
            step = draw(st.integers(1, 64))
            for start in range(0, len(body), step):
                piece = body[start : start + step]
                payload += b"%x\r\n%s\r\n" % (len(piece), piece)
            payload += b"0\r\n\r\n"
        data += ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
        texts.append(f"{method} {path} {hashlib.sha256(body).hexdigest()}")
        methods.append(method)
    return data, texts, methods


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pipeline=pipelines(), cuts=st.lists(st.integers(0, 10_000), max_size=6))
def test_random_pipelines_over_a_socket(
    pipeline: tuple[bytes, list[str], list[str]], cuts: list[int]
) -> None:
    data, texts, methods = pipeline

    async def scenario() -> list[str]:
        async with serving(_echo) as served:
            client = await RawClient.connect(served.host, served.port)
            points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
            for start, end in itertools.pairwise(points):
                await client.send(data[start:end])
                await asyncio.sleep(0.001)
            got = []
            for method in methods:
                response = await client.response(method, timeout_s=5)
                assert response.status == 200
                assert not response.closes
                got.append(response.text() if method != "HEAD" else "")
            await client.close()
            return got

    expected = [
        text if method != "HEAD" else "" for text, method in zip(texts, methods, strict=True)
    ]
    assert asyncio.run(scenario()) == expected

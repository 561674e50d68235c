"""``on_response_prepare``: add a header to every response, streamed ones and errors too.

Try:   curl -i http://localhost:8080/          -> My-Header: value
       curl -i http://localhost:8080/stream    -> My-Header: value (a streamed body)
       curl -i http://localhost:8080/missing   -> 404 with My-Header: value
"""

from __future__ import annotations

from forkloop import web


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["My-Header"] = "value"


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="Hello")


async def stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    for i in range(3):
        await response.write(f"part {i}\n".encode())
    await response.write_eof()
    return response


def init_func(argv: list[str] | None = None) -> web.Application:
    app = web.Application()
    app.on_response_prepare.append(on_prepare)
    app.add_routes([web.get("/", hello), web.get("/stream", stream)])
    return app


if __name__ == "__main__":
    web.run_app(init_func())

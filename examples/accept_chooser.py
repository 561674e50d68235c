"""Custom routing inside a handler: choose the handler by the Accept header.

Try:   curl -H 'Accept: application/json' http://localhost:8080/   -> {"hello": "world"}
       curl -H 'Accept: application/xml' http://localhost:8080/    -> <hello>world</hello>
       curl -i -H 'Accept: text/csv' http://localhost:8080/        -> 406 Not Acceptable
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from forkloop import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AcceptChooser:
    def __init__(self) -> None:
        self._accepts: dict[str, Handler] = {}

    async def do_route(self, request: web.Request) -> web.StreamResponse:
        for accept in request.headers.getall("ACCEPT", []):
            acceptor = self._accepts.get(accept)
            if acceptor is not None:
                return await acceptor(request)
        raise web.HTTPNotAcceptable()

    def reg_acceptor(self, accept: str, handler: Handler) -> None:
        self._accepts[accept] = handler


async def handle_json(request: web.Request) -> web.StreamResponse:
    return web.json_response({"hello": "world"})


async def handle_xml(request: web.Request) -> web.StreamResponse:
    return web.Response(text="<hello>world</hello>", content_type="application/xml")


def init_func(argv: list[str] | None = None) -> web.Application:
    chooser = AcceptChooser()
    app = web.Application()
    app.add_routes([web.get("/", chooser.do_route)])
    chooser.reg_acceptor("application/json", handle_json)
    chooser.reg_acceptor("application/xml", handle_xml)
    return app


if __name__ == "__main__":
    web.run_app(init_func())

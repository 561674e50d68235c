"""Routing: resources, routes, resolution order, URL building and misuse errors.

Resolution is tested through the router with ``make_mocked_request`` (a real Request), and
end to end over a real socket with aiohttp's client.
"""

from __future__ import annotations

import re

import pytest
from yarl import URL

from forkloop import web
from forkloop.core.web.urldispatcher import MatchInfoError, SystemRoute
from forkloop.test_utils import make_mocked_request


async def handler(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def other(request: web.Request) -> web.Response:
    return web.Response(text="other")


async def resolve(router: web.UrlDispatcher, method: str, path: str) -> web.UrlMappingMatchInfo:
    return await router.resolve(make_mocked_request(method, path))


# --- resolution -----------------------------------------------------------------------------


async def test_plain_and_dynamic_resolution() -> None:
    router = web.UrlDispatcher()
    router.add_get("/", handler)
    router.add_get("/users/{id}", handler)
    router.add_get("/files/{path:.*}", other)
    router.add_get(r"/num/{n:\d+}", handler)

    info = await resolve(router, "GET", "/")
    assert info == {}
    assert info.handler is handler
    assert (await resolve(router, "GET", "/users/42")) == {"id": "42"}
    assert (await resolve(router, "GET", "/files/a/b/c.txt")) == {"path": "a/b/c.txt"}
    assert (await resolve(router, "GET", "/num/17")) == {"n": "17"}
    miss = await resolve(router, "GET", "/num/x")
    assert isinstance(miss, MatchInfoError)
    assert miss.http_exception.status == 404
    assert isinstance(miss.route, SystemRoute)


async def test_default_variable_stops_at_slash() -> None:
    router = web.UrlDispatcher()
    router.add_get("/users/{id}", handler)
    assert (await resolve(router, "GET", "/users/1/extra")).http_exception.status == 404


async def test_percent_encoded_path_is_decoded_and_slash_stays_in_one_part() -> None:
    router = web.UrlDispatcher()
    router.add_get("/files/{name}", handler)
    router.add_get("/caf\u00e9", other)
    assert (await resolve(router, "GET", "/files/a%20b")) == {"name": "a b"}
    assert (await resolve(router, "GET", "/files/a%2Fb")) == {"name": "a/b"}
    assert (await resolve(router, "GET", "/caf%C3%A9")).handler is other


async def test_query_string_is_not_part_of_the_path() -> None:
    router = web.UrlDispatcher()
    router.add_get("/search", handler)
    assert (await resolve(router, "GET", "/search?q=1&x=/y")).handler is handler


async def test_405_lists_allowed_methods() -> None:
    router = web.UrlDispatcher()
    router.add_get("/item", handler)
    router.add_post("/item", handler)
    info = await resolve(router, "DELETE", "/item")
    exc = info.http_exception
    assert isinstance(exc, web.HTTPMethodNotAllowed)
    assert exc.allowed_methods == {"GET", "HEAD", "POST"}
    assert exc.headers["Allow"] == "GET,HEAD,POST"
    assert exc.method == "DELETE"


async def test_two_methods_on_one_path_share_a_resource() -> None:
    router = web.UrlDispatcher()
    get_route = router.add_get("/x", handler)
    post_route = router.add_post("/x", other)
    assert get_route.resource is post_route.resource
    assert len(router.resources()) == 1
    assert len(router.routes()) == 3  # HEAD, GET, POST
    assert (await resolve(router, "POST", "/x")).handler is other


async def test_wildcard_method_route() -> None:
    router = web.UrlDispatcher()
    router.add_route("*", "/any", handler)
    for method in ("GET", "POST", "PATCH", "PURGE"):
        assert (await resolve(router, method, "/any")).handler is handler


async def test_method_specific_route_wins_over_later_wildcard() -> None:
    router = web.UrlDispatcher()
    router.add_get("/r", handler, allow_head=False)
    router.add_route("*", "/r", other)
    assert (await resolve(router, "GET", "/r")).handler is handler
    assert (await resolve(router, "PUT", "/r")).handler is other


async def test_registration_order_within_a_prefix() -> None:
    router = web.UrlDispatcher()
    router.add_get("/a/{x}", handler)
    router.add_get("/a/{y:.*}", other)
    assert (await resolve(router, "GET", "/a/1")).handler is handler
    assert (await resolve(router, "GET", "/a/1/2")).handler is other


async def test_deeper_static_prefix_wins_like_aiohttp() -> None:
    router = web.UrlDispatcher()
    router.add_get("/{tail:.*}", other)
    router.add_get("/api/status", handler)
    assert (await resolve(router, "GET", "/api/status")).handler is handler
    assert (await resolve(router, "GET", "/elsewhere")).handler is other


async def test_405_collected_across_resources_then_later_match_wins() -> None:
    router = web.UrlDispatcher()
    router.add_get("/p/{a}", handler)
    router.add_post("/p/{b}", other)
    assert (await resolve(router, "POST", "/p/1")).handler is other
    info = await resolve(router, "PUT", "/p/1")
    assert info.http_exception.allowed_methods == {"GET", "HEAD", "POST"}


async def test_get_without_head() -> None:
    router = web.UrlDispatcher()
    router.add_get("/g", handler, allow_head=False)
    assert (await resolve(router, "HEAD", "/g")).http_exception.status == 405


async def test_handler_kinds_plain_function_bound_method_and_view() -> None:
    class Handlers:
        async def method(self, request: web.Request) -> web.Response:
            return web.Response(text="bound")

    def plain(request: web.Request) -> web.Response:
        return web.Response(text="plain")

    class MyView(web.View):
        async def get(self) -> web.Response:
            return web.Response(text="view")

    router = web.UrlDispatcher()
    with pytest.warns(DeprecationWarning, match="Bare functions are deprecated"):
        router.add_get("/plain", plain)
    router.add_get("/bound", Handlers().method)
    router.add_view("/view", MyView)
    for path, text in (("/plain", "plain"), ("/bound", "bound"), ("/view", "view")):
        request = make_mocked_request("GET", path)
        info = await router.resolve(request)
        request._match_info = info
        resp = await info.handler(request)
        assert resp.text == text


def test_handler_must_be_callable_or_view() -> None:
    router = web.UrlDispatcher()
    with pytest.raises(TypeError, match="callable"):
        router.add_get("/x", "not a handler")
    with pytest.raises(TypeError, match="View"):
        router.add_get("/y", int)


# --- introspection ---------------------------------------------------------------------------


def test_named_resources_and_views() -> None:
    router = web.UrlDispatcher()
    router.add_get("/", handler, name="index")
    router.add_get("/users/{id}", handler, name="user")
    assert router["index"].canonical == "/"
    assert router["user"].canonical == "/users/{id}"
    assert "user" in router
    assert set(router) == {"index", "user"}
    assert len(router) == 2
    assert dict(router.named_resources()) == {"index": router["index"], "user": router["user"]}
    assert [r.canonical for r in router.resources()] == ["/", "/users/{id}"]
    assert router["user"].get_info()["formatter"] == "/users/{id}"
    route = next(iter(router["user"]))
    assert route.name == "user"
    assert route.method == "HEAD"
    assert route in router.routes()


def test_canonical_strips_custom_regex() -> None:
    router = web.UrlDispatcher()
    resource = router.add_resource(r"/n/{id:\d{1,3}}/x")
    assert resource.canonical == "/n/{id}/x"


# --- url building ----------------------------------------------------------------------------


def test_url_for_plain_and_dynamic_with_query() -> None:
    router = web.UrlDispatcher()
    router.add_get("/root", handler, name="root")
    router.add_resource("/{user}/info", name="user-info")
    assert router["root"].url_for() == URL("/root")
    url = router["root"].url_for().with_query({"a": "b", "c": "d"})
    assert url == URL("/root?a=b&c=d")
    assert str(router["user-info"].url_for(user="john_doe").with_query("a=b")) == (
        "/john_doe/info?a=b"
    )


def test_url_for_quotes_parts() -> None:
    router = web.UrlDispatcher()
    router.add_resource("/files/{name}", name="file")
    assert str(router["file"].url_for(name="a b/c\u00e9")) == "/files/a%20b/c%C3%A9"


def test_url_for_missing_part_is_a_clear_error() -> None:
    router = web.UrlDispatcher()
    router.add_resource("/users/{id}/posts/{post}", name="post")
    with pytest.raises(KeyError, match=r"missing the part.*post"):
        router["post"].url_for(id="1")


def test_unknown_route_name() -> None:
    router = web.UrlDispatcher()
    router.add_get("/", handler, name="index")
    with pytest.raises(KeyError, match=r"No route named 'login'.*index"):
        router["login"]


# --- misuse --------------------------------------------------------------------------------


def test_registering_on_a_frozen_router_raises() -> None:
    router = web.UrlDispatcher()
    resource = router.add_resource("/x")
    router.freeze()
    with pytest.raises(RuntimeError, match="Cannot register a resource into frozen router"):
        router.add_get("/y", handler)
    with pytest.raises(RuntimeError, match="frozen"):
        resource.add_route("GET", handler)


def test_frozen_app_refuses_routes() -> None:
    app = web.Application()
    app.freeze()
    with pytest.raises(RuntimeError, match="frozen router"):
        app.router.add_get("/", handler)


def test_duplicate_route_name_raises() -> None:
    router = web.UrlDispatcher()
    router.add_get("/a", handler, name="dup")
    with pytest.raises(ValueError, match="Duplicate 'dup', already handled by"):
        router.add_get("/b", handler, name="dup")


def test_duplicate_method_on_one_resource_raises() -> None:
    router = web.UrlDispatcher()
    router.add_post("/a", handler)
    with pytest.raises(RuntimeError, match="method POST is already registered for '/a'"):
        router.add_post("/a", other)


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/x/{id:[}", "Bad pattern '/x/{id:[}'"),
        ("/x/{1bad}", "bad variable {1bad}"),
        ("/x/{id", "unmatched '{'"),
        ("/x/id}", "unmatched '}'"),
        ("/x/{a}/{a}", "Bad pattern '/x/{a}/{a}'"),
        ("/x/{a:}", "empty regex"),
        ("no-slash", "path should be started with / or be empty: 'no-slash'"),
    ],
)
def test_invalid_paths_name_the_offending_text(path: str, fragment: str) -> None:
    router = web.UrlDispatcher()
    with pytest.raises(ValueError, match=re.escape(fragment)):
        router.add_get(path, handler)


@pytest.mark.parametrize("name", ["1abc", "a b", "class", "a..b", ""])
def test_invalid_route_names(name: str) -> None:
    router = web.UrlDispatcher()
    with pytest.raises(ValueError, match="Incorrect route name"):
        router.add_get("/x", handler, name=name)


def test_valid_route_names() -> None:
    router = web.UrlDispatcher()
    router.add_get("/a", handler, name="user-info")
    router.add_get("/b", handler, name="api.v1:users")


def test_invalid_method_raises() -> None:
    router = web.UrlDispatcher()
    with pytest.raises(ValueError, match="not an allowed HTTP method"):
        router.add_route("GE T", "/x", handler)


# --- sub-applications and domains -------------------------------------------------------------


async def test_subapp_routes_are_prefixed_and_claim_their_subtree() -> None:
    app = web.Application()
    admin = web.Application()
    admin.router.add_get("/users", handler, name="users")
    app.router.add_get("/{tail:.*}", other)
    resource = app.add_subapp("/admin/", admin)
    assert resource.canonical == "/admin"
    assert str(admin.router["users"].url_for()) == "/admin/users"
    app.freeze()
    info = await app.router.resolve(make_mocked_request("GET", "/admin/users"))
    assert info.handler is handler
    assert info.apps == (admin,)  # the root app is added by Application._handle
    # A path under the prefix that the sub-app lacks is the sub-app's 404.
    assert (await app.router.resolve(make_mocked_request("GET", "/admin/x"))).http_exception
    assert (await app.router.resolve(make_mocked_request("GET", "/other"))).handler is other


def test_subapp_cannot_be_added_twice_or_to_a_frozen_app() -> None:
    app = web.Application()
    sub = web.Application()
    app.add_subapp("/s", sub)
    with pytest.raises(RuntimeError, match="Cannot add frozen application"):
        web.Application().add_subapp("/t", sub)
    with pytest.raises(RuntimeError, match="frozen router"):
        sub.router.add_get("/late", handler)
    app.freeze()
    with pytest.raises(RuntimeError, match="frozen application"):
        app.add_subapp("/u", web.Application())
    with pytest.raises(ValueError, match="Prefix cannot be empty"):
        web.Application().add_subapp("/", web.Application())


async def test_subapp_over_socket_with_config_dict(aiohttp_client) -> None:
    key = web.AppKey("key", str)
    outer_only = web.AppKey("outer_only", str)

    async def show(request: web.Request) -> web.Response:
        return web.Response(
            text=f"{request.config_dict[key]} {request.config_dict[outer_only]} "
            f"{request.app is request.match_info.current_app}"
        )

    app = web.Application()
    app[key] = "outer"
    app[outer_only] = "o"
    sub = web.Application()
    sub[key] = "inner"
    sub.router.add_get("/show", show)
    app.router.add_get("/show", show)
    app.add_subapp("/sub", sub)
    client = await aiohttp_client(app)
    assert await (await client.get("/sub/show")).text() == "inner o True"
    assert await (await client.get("/show")).text() == "outer o True"
    resp = await client.post("/sub/show")
    assert resp.status == 405
    assert resp.headers["Allow"] == "GET,HEAD"


async def test_add_domain_and_masks(aiohttp_client) -> None:
    async def main(request: web.Request) -> web.Response:
        return web.Response(text="main")

    async def api(request: web.Request) -> web.Response:
        return web.Response(text="api")

    async def wild(request: web.Request) -> web.Response:
        return web.Response(text="wild")

    app = web.Application()
    api_app = web.Application()
    api_app.router.add_get("/", api)
    wild_app = web.Application()
    wild_app.router.add_get("/", wild)
    app.add_domain("api.example.com", api_app)
    app.add_domain("*.example.org", wild_app)
    app.router.add_get("/", main)
    client = await aiohttp_client(app)
    for host, text in (
        ("api.example.com", "api"),
        ("API.example.com", "api"),
        ("x.y.example.org", "wild"),
        ("example.org", "main"),
        ("other.com", "main"),
    ):
        resp = await client.get("/", headers={"Host": host})
        assert await resp.text() == text, host


@pytest.mark.parametrize("domain", ["", "http://x.com", "-bad-.com", "a/b"])
def test_invalid_domains(domain: str) -> None:
    with pytest.raises(ValueError, match=r"Domain"):
        web.Application().add_domain(domain, web.Application())


# --- over the wire ----------------------------------------------------------------------------


async def test_404_405_over_socket(aiohttp_client) -> None:
    app = web.Application()
    app.router.add_get("/only-get", handler)
    client = await aiohttp_client(app)
    resp = await client.get("/missing")
    assert resp.status == 404
    assert await resp.text() == "404: Not Found"
    resp = await client.put("/only-get")
    assert resp.status == 405
    assert resp.headers["Allow"] == "GET,HEAD"
    resp = await client.head("/only-get")
    assert resp.status == 200


async def test_match_info_over_socket(aiohttp_client) -> None:
    async def show(request: web.Request) -> web.Response:
        info = request.match_info
        return web.json_response(
            {
                "vars": dict(info),
                "canonical": info.route.resource.canonical,
                "name": info.route.name,
                "is_handler": info.handler is show,
                "no_exc": info.http_exception is None,
                "apps": len(info.apps),
                "current": info.current_app is request.app,
                "info": info.get_info()["formatter"],
            }
        )

    app = web.Application()
    app.router.add_get("/u/{user}/p/{post:\\d+}", show, name="post")
    client = await aiohttp_client(app)
    data = await (await client.get("/u/ann/p/7")).json()
    assert data == {
        "vars": {"user": "ann", "post": "7"},
        "canonical": "/u/{user}/p/{post}",
        "name": "post",
        "is_handler": True,
        "no_exc": True,
        "apps": 1,
        "current": True,
        "info": "/u/{user}/p/{post}",
    }


async def test_expect_continue_default_and_custom_handler(aiohttp_client) -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def refuse(request: web.Request) -> None:
        if request.headers.get("X-Allowed") != "yes":
            raise web.HTTPForbidden()

    app = web.Application()
    app.router.add_post("/echo", echo)
    app.router.add_post("/guarded", echo, expect_handler=refuse)
    client = await aiohttp_client(app)
    resp = await client.post("/echo", data=b"payload", expect100=True)
    assert resp.status == 200
    assert await resp.read() == b"payload"
    resp = await client.post("/guarded", data=b"payload", expect100=True)
    assert resp.status == 403
    resp = await client.post(
        "/guarded", data=b"payload", expect100=True, headers={"X-Allowed": "yes"}
    )
    assert await resp.read() == b"payload"


async def test_repeated_resolution_of_a_frozen_router_gives_the_same_answers() -> None:
    # A frozen router remembers plain-path answers; every answer must stay what a router that
    # never froze (so never remembers) gives, per method, and each match info is fresh.
    def build() -> web.UrlDispatcher:
        router = web.UrlDispatcher()
        router.add_get("/x", handler)
        router.add_get("/y", handler)
        router.add_post("/x", other)  # a second resource for /x
        router.add_get("/{name}", other)
        router.add_get("/about", handler)
        router.add_get("/users/{id}", handler)
        router.add_get("/users/me", other)
        return router

    frozen, reference = build(), build()
    frozen.freeze()

    def answer(router: web.UrlDispatcher, info: web.UrlMappingMatchInfo) -> object:
        if isinstance(info, MatchInfoError):
            exc = info.http_exception
            return exc.status, sorted(getattr(exc, "allowed_methods", ()))
        return list(router.routes()).index(info.route), dict(info)

    requests = [
        (m, p) for m in ("GET", "POST", "PUT") for p in ("/x", "/y", "/about", "/users/me", "/z")
    ]
    for _ in range(3):
        for method, path in requests:
            got = await resolve(frozen, method, path)
            want = await resolve(reference, method, path)
            assert answer(frozen, got) == answer(reference, want), (method, path)
    first = await resolve(frozen, "GET", "/x")
    again = await resolve(frozen, "GET", "/x")
    assert again is not first  # a fresh match info per request
    assert again.route is first.route
    assert frozen._plain_hits  # the remembered answers were used above
    for i in range(200):  # distinct paths that no plain route answers: nothing remembered
        await resolve(frozen, "GET", f"/p{i}")
    assert sum(len(by_method) for by_method in frozen._plain_hits.values()) <= 5

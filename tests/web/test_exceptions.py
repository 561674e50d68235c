"""The HTTPException hierarchy: classes, attributes, and raised/returned over a socket."""

from __future__ import annotations

import pytest
from yarl import URL

from forkloop import web

STATUSES = {
    web.HTTPOk: 200,
    web.HTTPCreated: 201,
    web.HTTPAccepted: 202,
    web.HTTPNonAuthoritativeInformation: 203,
    web.HTTPNoContent: 204,
    web.HTTPResetContent: 205,
    web.HTTPPartialContent: 206,
    web.HTTPMultipleChoices: 300,
    web.HTTPMovedPermanently: 301,
    web.HTTPFound: 302,
    web.HTTPSeeOther: 303,
    web.HTTPNotModified: 304,
    web.HTTPUseProxy: 305,
    web.HTTPTemporaryRedirect: 307,
    web.HTTPPermanentRedirect: 308,
    web.HTTPBadRequest: 400,
    web.HTTPUnauthorized: 401,
    web.HTTPPaymentRequired: 402,
    web.HTTPForbidden: 403,
    web.HTTPNotFound: 404,
    web.HTTPMethodNotAllowed: 405,
    web.HTTPNotAcceptable: 406,
    web.HTTPProxyAuthenticationRequired: 407,
    web.HTTPRequestTimeout: 408,
    web.HTTPConflict: 409,
    web.HTTPGone: 410,
    web.HTTPLengthRequired: 411,
    web.HTTPPreconditionFailed: 412,
    web.HTTPRequestEntityTooLarge: 413,
    web.HTTPRequestURITooLong: 414,
    web.HTTPUnsupportedMediaType: 415,
    web.HTTPRequestRangeNotSatisfiable: 416,
    web.HTTPExpectationFailed: 417,
    web.HTTPMisdirectedRequest: 421,
    web.HTTPUnprocessableEntity: 422,
    web.HTTPFailedDependency: 424,
    web.HTTPUpgradeRequired: 426,
    web.HTTPPreconditionRequired: 428,
    web.HTTPTooManyRequests: 429,
    web.HTTPRequestHeaderFieldsTooLarge: 431,
    web.HTTPUnavailableForLegalReasons: 451,
    web.HTTPInternalServerError: 500,
    web.HTTPNotImplemented: 501,
    web.HTTPBadGateway: 502,
    web.HTTPServiceUnavailable: 503,
    web.HTTPGatewayTimeout: 504,
    web.HTTPVersionNotSupported: 505,
    web.HTTPVariantAlsoNegotiates: 506,
    web.HTTPInsufficientStorage: 507,
    web.HTTPNotExtended: 510,
    web.HTTPNetworkAuthenticationRequired: 511,
}


def make(cls: type[web.HTTPException]) -> web.HTTPException:
    if issubclass(cls, web.HTTPMove):
        return cls("/elsewhere")
    if cls is web.HTTPMethodNotAllowed:
        return cls("PUT", ["GET"])
    if cls is web.HTTPRequestEntityTooLarge:
        return cls(max_size=1, actual_size=2)
    if cls is web.HTTPUnavailableForLegalReasons:
        return cls("https://authority.example")
    return cls()


@pytest.mark.parametrize(("cls", "status"), list(STATUSES.items()))
def test_every_class(cls: type[web.HTTPException], status: int) -> None:
    exc = make(cls)
    assert exc.status == status == cls.status_code
    assert isinstance(exc, web.Response)
    assert isinstance(exc, Exception)
    family = {2: web.HTTPSuccessful, 3: web.HTTPRedirection, 4: web.HTTPClientError}
    assert isinstance(exc, family.get(status // 100, web.HTTPServerError))
    if status >= 400:
        assert isinstance(exc, web.HTTPError)
    if status in (204, 205, 304):
        assert exc.body is None
    elif cls is not web.HTTPRequestEntityTooLarge:
        assert exc.text == f"{status}: {exc.reason}"
    assert str(exc) == exc.reason


def test_redirect_needs_location_and_accepts_url() -> None:
    with pytest.raises(ValueError, match="location"):
        web.HTTPFound("")
    exc = web.HTTPFound(URL("/login").with_query(next="/x"))
    assert exc.headers["Location"] == "/login?next=/x"
    assert exc.location == URL("/login").with_query(next="/x")


def test_custom_text_headers_and_reason() -> None:
    exc = web.HTTPBadRequest(text="no", headers={"X-A": "1"}, reason="Nope")
    assert exc.text == "no"
    assert exc.headers["X-A"] == "1"
    assert exc.reason == "Nope"
    assert exc.content_type == "text/plain"


def test_base_class_can_be_built_without_a_status() -> None:
    exc = web.HTTPException()  # as in aiohttp: status -1, for isinstance checks and tests
    assert (exc.status, exc.reason, exc.text) == (-1, "", "-1: ")
    assert isinstance(exc, Exception)


def test_special_attributes() -> None:
    exc = web.HTTPMethodNotAllowed("post", {"GET", "HEAD"})
    assert exc.method == "POST"
    assert exc.allowed_methods == {"GET", "HEAD"}
    assert exc.headers["Allow"] == "GET,HEAD"
    big = web.HTTPRequestEntityTooLarge(max_size=10, actual_size=20)
    assert (big.max_size, big.actual_size) == (10, 20)
    assert "10" in big.text
    assert "20" in big.text
    legal = web.HTTPUnavailableForLegalReasons("https://a.example/why")
    assert legal.link == URL("https://a.example/why")
    assert legal.headers["Link"] == '<https://a.example/why>; rel="blocked-by"'


async def test_raised_and_returned_over_socket(aiohttp_client) -> None:
    async def login(request: web.Request) -> web.Response:
        return web.Response(text="login page")

    async def raised(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.app.router["login"].url_for())

    async def returned(request: web.Request) -> web.Response:
        return web.HTTPConflict(text="already there")

    async def no_content(request: web.Request) -> web.Response:
        raise web.HTTPNoContent()

    async def teapot(request: web.Request) -> web.Response:
        raise web.HTTPTooManyRequests(headers={"Retry-After": "3"})

    app = web.Application()
    app.router.add_get("/login", login, name="login")
    app.router.add_get("/raised", raised)
    app.router.add_get("/returned", returned)
    app.router.add_get("/nc", no_content)
    app.router.add_get("/429", teapot)
    client = await aiohttp_client(app)

    resp = await client.get("/raised", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/login"
    resp = await client.get("/raised")
    assert await resp.text() == "login page"
    with pytest.warns(DeprecationWarning, match="returning HTTPException object is deprecated"):
        resp = await client.get("/returned")
    assert resp.status == 409
    assert await resp.text() == "already there"
    resp = await client.get("/nc")
    assert resp.status == 204
    assert await resp.read() == b""
    resp = await client.get("/429")
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "3"
    assert await resp.text() == "429: Too Many Requests"


def test_location_with_cr_or_lf_left_in_is_refused() -> None:
    from yarl import URL

    # A str location loses CR/LF in yarl, as in aiohttp; an already-encoded URL keeps them.
    assert web.HTTPFound("/a\r\nX-Evil: 1").headers["Location"] == "/aX-Evil:%201"
    with pytest.raises(ValueError, match="CR or LF"):
        web.HTTPFound(URL.build(path="/a\r\nX-Evil: 1", encoded=True))

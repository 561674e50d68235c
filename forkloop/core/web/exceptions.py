"""The HTTP exception hierarchy of aiohttp.web: exceptions that are also responses.

Owns every ``HTTP*`` class. Each is a :class:`~forkloop.core.web.response.Response` *and* an
``Exception`` (aiohttp 3.x): a handler may ``raise`` one or ``return`` one, and the server sends
it as the response. The body defaults to ``"<status>: <reason>"`` as text/plain; statuses that
carry no body (204, 205, 304) leave it empty.

Imports: ``forkloop.core.web.response`` only.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any, ClassVar

from yarl import URL

from .response import LooseHeaders, Response

__all__ = [
    "HTTPAccepted",
    "HTTPBadGateway",
    "HTTPBadRequest",
    "HTTPClientError",
    "HTTPConflict",
    "HTTPCreated",
    "HTTPError",
    "HTTPException",
    "HTTPExpectationFailed",
    "HTTPFailedDependency",
    "HTTPForbidden",
    "HTTPFound",
    "HTTPGatewayTimeout",
    "HTTPGone",
    "HTTPInsufficientStorage",
    "HTTPInternalServerError",
    "HTTPLengthRequired",
    "HTTPMethodNotAllowed",
    "HTTPMisdirectedRequest",
    "HTTPMove",
    "HTTPMovedPermanently",
    "HTTPMultipleChoices",
    "HTTPNetworkAuthenticationRequired",
    "HTTPNoContent",
    "HTTPNonAuthoritativeInformation",
    "HTTPNotAcceptable",
    "HTTPNotExtended",
    "HTTPNotFound",
    "HTTPNotImplemented",
    "HTTPNotModified",
    "HTTPOk",
    "HTTPPartialContent",
    "HTTPPaymentRequired",
    "HTTPPermanentRedirect",
    "HTTPPreconditionFailed",
    "HTTPPreconditionRequired",
    "HTTPProxyAuthenticationRequired",
    "HTTPRedirection",
    "HTTPRequestEntityTooLarge",
    "HTTPRequestHeaderFieldsTooLarge",
    "HTTPRequestRangeNotSatisfiable",
    "HTTPRequestTimeout",
    "HTTPRequestURITooLong",
    "HTTPResetContent",
    "HTTPSeeOther",
    "HTTPServerError",
    "HTTPServiceUnavailable",
    "HTTPSuccessful",
    "HTTPTemporaryRedirect",
    "HTTPTooManyRequests",
    "HTTPUnauthorized",
    "HTTPUnavailableForLegalReasons",
    "HTTPUnprocessableEntity",
    "HTTPUnsupportedMediaType",
    "HTTPUpgradeRequired",
    "HTTPUseProxy",
    "HTTPVariantAlsoNegotiates",
    "HTTPVersionNotSupported",
]


class HTTPException(Response, Exception):
    """Base of every HTTP exception; a complete response you can raise or return.

    ``status_code`` is the class's status. Keyword arguments are those of ``Response``
    (``headers``, ``reason``, ``body``, ``text``, ``content_type``).
    """

    status_code: ClassVar[int] = -1
    empty_body: ClassVar[bool] = False

    __http_exception__ = True

    def __init__(
        self,
        *,
        headers: LooseHeaders = None,
        reason: str | None = None,
        body: Any = None,
        text: str | None = None,
        content_type: str | None = None,
    ) -> None:
        if body is not None:
            warnings.warn(
                "body argument is deprecated for http web exceptions",
                DeprecationWarning,
                stacklevel=2,
            )
        status = type(self).status_code
        abstract = status < 0
        Response.__init__(
            self,
            # The base classes have no status (-1, as in aiohttp) and may still be built, for
            # isinstance checks and tests; the response machinery gets a valid placeholder.
            status=500 if abstract else status,
            headers=headers,
            reason=reason,
            body=body,
            text=text,
            content_type=content_type,
        )
        if abstract:
            self._status = status
            self._reason = reason or ""
        Exception.__init__(self, self.reason)
        if self.body is None and not self.empty_body:
            self.text = f"{self.status}: {self.reason}"

    def __str__(self) -> str:
        return self.reason

    def __bool__(self) -> bool:
        return True

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other


class HTTPError(HTTPException):
    """Base class for the 4xx and 5xx exceptions."""


class HTTPRedirection(HTTPException):
    """Base class for the 3xx exceptions."""


class HTTPSuccessful(HTTPException):
    """Base class for the 2xx exceptions."""


class HTTPOk(HTTPSuccessful):
    status_code = 200


class HTTPCreated(HTTPSuccessful):
    status_code = 201


class HTTPAccepted(HTTPSuccessful):
    status_code = 202


class HTTPNonAuthoritativeInformation(HTTPSuccessful):
    status_code = 203


class HTTPNoContent(HTTPSuccessful):
    status_code = 204
    empty_body = True


class HTTPResetContent(HTTPSuccessful):
    status_code = 205
    empty_body = True


class HTTPPartialContent(HTTPSuccessful):
    status_code = 206


class HTTPMultipleChoices(HTTPRedirection):
    status_code = 300


class HTTPMove(HTTPRedirection):
    """A redirect: ``location`` (a ``str`` or a yarl ``URL``) goes into the Location header."""

    def __init__(
        self,
        location: str | URL,
        *,
        headers: LooseHeaders = None,
        reason: str | None = None,
        body: Any = None,
        text: str | None = None,
        content_type: str | None = None,
    ) -> None:
        if not location:
            raise ValueError("HTTP redirects need a location to redirect to.")
        super().__init__(
            headers=headers, reason=reason, body=body, text=text, content_type=content_type
        )
        # As aiohttp: the location goes through yarl, which percent-encodes it and drops
        # ASCII tab, CR and LF (WHATWG URL parsing). A URL built with encoded=True keeps them:
        # refuse it here rather than send a header that would end the head early.
        value = str(URL(location))
        if "\r" in value or "\n" in value:
            raise ValueError("a redirect location cannot contain CR or LF")
        self.headers["Location"] = value
        self.location = location


class HTTPMovedPermanently(HTTPMove):
    status_code = 301


class HTTPFound(HTTPMove):
    status_code = 302


class HTTPSeeOther(HTTPMove):
    status_code = 303


class HTTPNotModified(HTTPRedirection):
    status_code = 304
    empty_body = True


class HTTPUseProxy(HTTPMove):
    status_code = 305


class HTTPTemporaryRedirect(HTTPMove):
    status_code = 307


class HTTPPermanentRedirect(HTTPMove):
    status_code = 308


class HTTPClientError(HTTPError):
    """Base class for the 4xx exceptions."""


class HTTPBadRequest(HTTPClientError):
    status_code = 400


class HTTPUnauthorized(HTTPClientError):
    status_code = 401


class HTTPPaymentRequired(HTTPClientError):
    status_code = 402


class HTTPForbidden(HTTPClientError):
    status_code = 403


class HTTPNotFound(HTTPClientError):
    status_code = 404


class HTTPMethodNotAllowed(HTTPClientError):
    """405: carries ``method`` and ``allowed_methods``; the Allow header lists the latter."""

    status_code = 405

    def __init__(
        self,
        method: str,
        allowed_methods: Iterable[str],
        *,
        headers: LooseHeaders = None,
        reason: str | None = None,
        body: Any = None,
        text: str | None = None,
        content_type: str | None = None,
    ) -> None:
        allowed = set(allowed_methods)
        super().__init__(
            headers=headers, reason=reason, body=body, text=text, content_type=content_type
        )
        self.headers["Allow"] = ",".join(sorted(allowed))
        self.method = method.upper()
        self.allowed_methods = allowed


class HTTPNotAcceptable(HTTPClientError):
    status_code = 406


class HTTPProxyAuthenticationRequired(HTTPClientError):
    status_code = 407


class HTTPRequestTimeout(HTTPClientError):
    status_code = 408


class HTTPConflict(HTTPClientError):
    status_code = 409


class HTTPGone(HTTPClientError):
    status_code = 410


class HTTPLengthRequired(HTTPClientError):
    status_code = 411


class HTTPPreconditionFailed(HTTPClientError):
    status_code = 412


class HTTPRequestEntityTooLarge(HTTPClientError):
    """413: ``max_size`` and ``actual_size`` (bytes) go into the default text."""

    status_code = 413

    def __init__(self, max_size: float, actual_size: float, **kwargs: Any) -> None:
        kwargs.setdefault(
            "text",
            f"Maximum request body size {max_size} exceeded, actual body size {actual_size}",
        )
        super().__init__(**kwargs)
        self.max_size = max_size
        self.actual_size = actual_size


class HTTPRequestURITooLong(HTTPClientError):
    status_code = 414


class HTTPUnsupportedMediaType(HTTPClientError):
    status_code = 415


class HTTPRequestRangeNotSatisfiable(HTTPClientError):
    status_code = 416


class HTTPExpectationFailed(HTTPClientError):
    status_code = 417


class HTTPMisdirectedRequest(HTTPClientError):
    status_code = 421


class HTTPUnprocessableEntity(HTTPClientError):
    status_code = 422


class HTTPFailedDependency(HTTPClientError):
    status_code = 424


class HTTPUpgradeRequired(HTTPClientError):
    status_code = 426


class HTTPPreconditionRequired(HTTPClientError):
    status_code = 428


class HTTPTooManyRequests(HTTPClientError):
    status_code = 429


class HTTPRequestHeaderFieldsTooLarge(HTTPClientError):
    status_code = 431


class HTTPUnavailableForLegalReasons(HTTPClientError):
    """451: ``link`` names the blocking authority (RFC 7725), sent as ``Link: <..>; rel=...``."""

    status_code = 451

    def __init__(
        self,
        link: str | URL | None,
        *,
        headers: LooseHeaders = None,
        reason: str | None = None,
        body: Any = None,
        text: str | None = None,
        content_type: str | None = None,
    ) -> None:
        super().__init__(
            headers=headers, reason=reason, body=body, text=text, content_type=content_type
        )
        # As aiohttp: an empty link is no link.
        self._link = URL(link) if link else None
        if self._link is not None:
            self.headers["Link"] = f'<{self._link}>; rel="blocked-by"'

    @property
    def link(self) -> URL | None:
        return self._link


class HTTPServerError(HTTPError):
    """Base class for the 5xx exceptions."""


class HTTPInternalServerError(HTTPServerError):
    status_code = 500


class HTTPNotImplemented(HTTPServerError):
    status_code = 501


class HTTPBadGateway(HTTPServerError):
    status_code = 502


class HTTPServiceUnavailable(HTTPServerError):
    status_code = 503


class HTTPGatewayTimeout(HTTPServerError):
    status_code = 504


class HTTPVersionNotSupported(HTTPServerError):
    status_code = 505


class HTTPVariantAlsoNegotiates(HTTPServerError):
    status_code = 506


class HTTPInsufficientStorage(HTTPServerError):
    status_code = 507


class HTTPNotExtended(HTTPServerError):
    status_code = 510


class HTTPNetworkAuthenticationRequired(HTTPServerError):
    status_code = 511

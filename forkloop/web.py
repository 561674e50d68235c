"""The public facade: ``from forkloop import web`` exposes aiohttp.web's names.

Each ``forkloop.core.web`` module lists its public names in ``__all__``; this module only
re-exports them, so ``from aiohttp import web`` -> ``from forkloop import web`` is the whole port.
``__all__`` lists exactly aiohttp.web's ``__all__`` (3.14), so ``from forkloop.web import *``
binds the same names as ``from aiohttp.web import *``; forkloop's own additions (such as
``json_bytes_response``) are reached as attributes.
``python -m forkloop.web`` runs aiohttp's ``python -m aiohttp.web`` command line.
"""

# ruff: noqa: F405 - __all__ names what the star imports below bring in
from __future__ import annotations

from .core.web.app import *
from .core.web.exceptions import *
from .core.web.fileresponse import *
from .core.web.forms import *
from .core.web.helpers import *
from .core.web.log import *
from .core.web.lowlevel import *
from .core.web.middlewares import *
from .core.web.multipart import *
from .core.web.request import *
from .core.web.response import *
from .core.web.routedef import *
from .core.web.run_app import *
from .core.web.runner import *
from .core.web.static import *
from .core.web.streams import *
from .core.web.urldispatcher import *
from .core.web.ws import *

__all__ = (
    "AbstractResource",
    "AbstractRoute",
    "AbstractRouteDef",
    "AppKey",
    "AppRunner",
    "Application",
    "BaseRequest",
    "BaseRunner",
    "BaseSite",
    "CleanupError",
    "ContentCoding",
    "DynamicResource",
    "FileField",
    "FileResponse",
    "GracefulExit",
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
    "NamedPipeSite",
    "NotAppKeyWarning",
    "PayloadAccessError",
    "PlainResource",
    "PrefixedSubAppResource",
    "Request",
    "RequestHandler",
    "RequestKey",
    "RequestPayloadError",
    "Resource",
    "ResourceRoute",
    "Response",
    "ResponseKey",
    "RouteDef",
    "RouteTableDef",
    "Server",
    "ServerRunner",
    "SockSite",
    "StaticDef",
    "StaticResource",
    "StreamResponse",
    "TCPSite",
    "UnixSite",
    "UrlDispatcher",
    "UrlMappingMatchInfo",
    "View",
    "WSMsgType",
    "WebSocketReady",
    "WebSocketResponse",
    "delete",
    "get",
    "head",
    "json_bytes_response",
    "json_response",
    "middleware",
    "normalize_path_middleware",
    "options",
    "patch",
    "post",
    "put",
    "route",
    "run_app",
    "static",
    "view",
)

if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess test
    from .core.web.cli import main

    main()

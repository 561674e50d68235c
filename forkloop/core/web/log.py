"""Access logging with aiohttp's format atoms, and the framework's loggers.

Owns ``AbstractAccessLogger`` and ``AccessLogger``: a format such as
``%a %t "%r" %s %b "%{Referer}i" "%{User-Agent}i"`` is compiled once into a list of small
functions, so logging a request is a join. Imports nothing of ours at run time.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .request import BaseRequest
    from .response import StreamResponse

__all__ = ["AbstractAccessLogger", "AccessLogger", "access_logger", "server_logger", "web_logger"]

access_logger: Final = logging.getLogger("forkloop.access")
server_logger: Final = logging.getLogger("forkloop.server")
web_logger: Final = logging.getLogger("forkloop.web")


class AbstractAccessLogger(ABC):
    """Base for access loggers: ``log(request, response, time)`` is called after each request."""

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        self.logger = logger
        self.log_format = log_format

    @abstractmethod
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        """Emit one line for a finished request; ``time`` is its duration in seconds."""

    @property
    def enabled(self) -> bool:
        """Whether ``log()`` is called: always, unless a subclass says otherwise (as in
        aiohttp; ``AccessLogger`` asks its logger)."""
        return True


Atom = Callable[["BaseRequest", "StreamResponse", float], str]
_ATOM: Final = re.compile(r"%(\{([A-Za-z0-9\-_]+)\}([ioe])|[atPrsbOD]|Tf?)")


def _start_time(_req: BaseRequest, _resp: StreamResponse, duration: float) -> str:
    now = datetime.datetime.now(datetime.UTC).astimezone()
    start = now - datetime.timedelta(seconds=duration)
    return start.strftime("[%d/%b/%Y:%H:%M:%S %z]")


def _first_line(request: BaseRequest, _resp: StreamResponse, _d: float) -> str:
    major, minor = request.version
    return f"{request.method} {request.raw_path} HTTP/{major}.{minor}"


def _remote(request: BaseRequest, _resp: StreamResponse, _d: float) -> str:
    return request.remote or "-"


_SIMPLE: Final[dict[str, Atom]] = {
    "a": _remote,
    "t": _start_time,
    "P": lambda _q, _r, _d: f"<{os.getpid()}>",
    "r": _first_line,
    "s": lambda _q, resp, _d: str(resp.status),
    "b": lambda _q, resp, _d: str(resp.body_length),  # head included, as aiohttp
    "O": lambda _q, resp, _d: str(resp.body_length),
    "T": lambda _q, _r, d: str(round(d)),
    "Tf": lambda _q, _r, d: f"{d:.6f}",
    "D": lambda _q, _r, d: str(round(d * 1_000_000)),
}


def _header_atom(name: str, kind: str) -> Atom:
    if kind == "i":
        return lambda req, _r, _d: req.headers.get(name, "-")
    if kind == "o":
        return lambda _q, resp, _d: resp.headers.get(name, "-")
    return lambda _q, _r, _d: os.environ.get(name, "-")


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access logger: the same atoms and default format."""

    LOG_FORMAT: Final = '%a %t "%r" %s %b "%{Referer}i" "%{User-Agent}i"'

    def __init__(self, logger: logging.Logger, log_format: str = LOG_FORMAT) -> None:
        super().__init__(logger, log_format)
        self._parts = self.compile(log_format)

    @property
    def enabled(self) -> bool:
        # No line is formatted for a logger that would drop it.
        return self.logger.isEnabledFor(logging.INFO)

    @staticmethod
    def compile(log_format: str) -> list[str | Atom]:
        parts: list[str | Atom] = []
        position = 0
        for match in _ATOM.finditer(log_format):
            if match.start() > position:
                parts.append(log_format[position : match.start()])
            if match.group(2):
                parts.append(_header_atom(match.group(2), match.group(3)))
            else:
                parts.append(_SIMPLE[match.group(1)])
            position = match.end()
        if position < len(log_format):
            parts.append(log_format[position:])
        return parts

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        try:
            line = "".join(
                part if isinstance(part, str) else part(request, response, time)
                for part in self._parts
            )
            self.logger.info(line, extra={"remote": request.remote, "status": response.status})
        except Exception:
            self.logger.exception("Error in logging")

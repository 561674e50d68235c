"""Access logging with aiohttp's format atoms, and the framework's loggers.

Owns ``AbstractAccessLogger`` and ``AccessLogger`` (aiohttp's atoms, values and record
``extra``): a format such as ``%a %t "%r" %s %b "%{Referer}i" "%{User-Agent}i"`` is compiled
once into a list of small functions, so logging a request is a join. Imports nothing of ours at
run time.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

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


# aiohttp's names for the atoms, the keys of the ``extra`` each log record carries (a header
# atom's value goes in a dict under its kind's name: ``request_header["Referer"]``).
_EXTRA_KEYS: Final = {
    "a": "remote_address",
    "t": "request_start_time",
    "P": "process_id",
    "r": "first_request_line",
    "s": "response_status",
    "b": "response_size",
    "T": "request_time",
    "Tf": "request_time_frac",
    "D": "request_time_micro",
    "i": "request_header",
    "o": "response_header",
    "e": "environ",
}


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access logger: the same atoms, default format and record ``extra``."""

    LOG_FORMAT: Final = '%a %t "%r" %s %b "%{Referer}i" "%{User-Agent}i"'

    def __init__(self, logger: logging.Logger, log_format: str = LOG_FORMAT) -> None:
        super().__init__(logger, log_format)
        self._parts = self.compile(log_format)
        # Per atom of the format, in order: its extra key, or (kind key, header name).
        self._keys: list[str | tuple[str, str]] = [
            (_EXTRA_KEYS[m.group(3)], m.group(2))
            if m.group(2)
            else _EXTRA_KEYS.get(m.group(1), m.group(1))
            for m in _ATOM.finditer(log_format)
        ]

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
            pieces: list[str] = []
            extra: dict[str, Any] = {}
            keys = iter(self._keys)
            for part in self._parts:
                if isinstance(part, str):
                    pieces.append(part)
                    continue
                value = part(request, response, time)
                pieces.append(value)
                key = next(keys)
                if isinstance(key, tuple):
                    extra.setdefault(key[0], {})[key[1]] = value
                else:
                    # aiohttp's status and size are numbers in the record.
                    extra[key] = int(value) if key in _NUMBERS else value
            extra.setdefault("remote", request.remote)
            extra.setdefault("status", response.status)
            self.logger.info("".join(pieces), extra=extra)
        except Exception:
            self.logger.exception("Error in logging")


_NUMBERS: Final = frozenset(("response_status", "response_size"))

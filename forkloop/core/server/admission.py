"""Overload protection of one worker: which requests are run and which get a fast 503.

Owns the admission policy (``--max-concurrency``, ``--max-queue-time``,
``--trust-request-start``): the worker's count of requests in flight, shared by all its
connections; the queue-time rule; the parser of a trusted proxy's ``X-Request-Start`` header;
the refusal (:class:`ServiceUnavailable`, a 503 with ``Retry-After`` answered by the
protocol's error reply, with ``Connection: close``); and the counts the metrics read (requests
shed by reason, queue-time observations). A small object with no I/O: the protocol
(``core/server/protocol.py``) asks :meth:`Admission.admit` once per request, where a queued
request would start its cycle, and only when a policy is configured (``None`` otherwise, so
an unprotected server pays nothing). Imports ``core.http`` only.

Why at the cycle's start: a request is refused before a ``Request`` is built, so no middleware,
handler, ``on_response_prepare`` hook or request observer runs for it; the work saved is the
point. The probes (``/-/healthz``, ``/-/readyz``) are never refused and never counted: an
overloaded worker is still alive and, for the load balancer, still ready.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Final

from ..http.errors import HttpError
from ..http.parser import RequestHead

__all__ = [
    "PROBE_PATHS",
    "Admission",
    "ServiceUnavailable",
    "parse_request_start",
]

# The worker's probes (forkloop.workers.probes): never shed.
PROBE_PATHS: Final = frozenset(("/-/healthz", "/-/readyz"))
REQUEST_START_HEADER: Final = b"x-request-start"
# Longest X-Request-Start value looked at: "t=" and a microsecond epoch with a fraction fit
# easily; anything longer is not a timestamp and is ignored unread.
MAX_REQUEST_START_BYTES: Final = 40
# A proxy's start time further from our clock than this is not believed (a skewed clock or
# a bad header would otherwise shed everything, or nothing).
MAX_CLOCK_SKEW_S: Final = 3600.0
RETRY_AFTER_S: Final = 1

SHED_CONCURRENCY: Final = "concurrency"
SHED_QUEUE_TIME: Final = "queue_time"


class ServiceUnavailable(HttpError):
    """The worker is overloaded: 503 with ``Retry-After``; the connection closes after it."""

    status = 503
    reason = "Service Unavailable"

    def __init__(self, message: str = "", retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(message)
        self.headers: tuple[tuple[str, str], ...] = (("Retry-After", str(retry_after_s)),)


def parse_request_start(value: bytes) -> float | None:
    """Seconds since the epoch from an ``X-Request-Start`` value, or None if it is not one.

    Accepts ``t=<number>`` and a bare ``<number>`` (digits with at most one ``.``), in
    seconds, milliseconds, microseconds or nanoseconds since the epoch: the unit is chosen by
    magnitude (nginx's ``t=${msec}`` is seconds with a fraction, Heroku's router sends
    milliseconds, Apache's ``%t`` microseconds). Linear in the value, which is bounded: a longer
    value, a sign, an exponent or any other byte is not a timestamp (None, never an error).
    """
    if len(value) > 2 * MAX_REQUEST_START_BYTES:  # bounded before anything reads it
        return None
    text = value.strip()
    if text[:2] in (b"t=", b"T="):
        text = text[2:]
    if not text or len(text) > MAX_REQUEST_START_BYTES:
        return None
    dots = 0
    for byte in text:
        if byte == 0x2E:  # "."
            dots += 1
        elif not 0x30 <= byte <= 0x39:
            return None
    if dots > 1 or text == b".":
        return None
    number = float(text)  # digits and one dot: float() cannot fail or backtrack
    if number < 1e11:  # seconds up to the year 5138
        seconds = number
    elif number < 1e14:
        seconds = number / 1e3
    elif number < 1e17:
        seconds = number / 1e6
    elif number < 1e20:
        seconds = number / 1e9
    else:
        return None
    return seconds if seconds > 0 and math.isfinite(seconds) else None


def _request_start(head: RequestHead) -> float | None:
    """The first ``X-Request-Start`` of ``head`` as epoch seconds, or None."""
    for name, value in head.raw_headers:
        if len(name) == 15 and name.lower() == REQUEST_START_HEADER:
            return parse_request_start(value)
    return None


def _path(target: str) -> str:
    query = target.find("?")
    return target if query < 0 else target[:query]


class Admission:
    """The admission policy of one worker, shared by all its connections.

    ``max_concurrency``: more requests than this in flight (handler started, response not
    finished) and the next is refused (``None``: no bound). ``max_queue_time_s``: a request
    that waited longer than this between the moment its head was read (or, with
    ``trust_request_start``, the time in a proxy's ``X-Request-Start``) and the start of its
    cycle is refused (``None``: no bound, and no queue time measured). The caller passes
    readings of the event loop's clock to :meth:`admit`; ``wall`` is the epoch clock a proxy's
    header is compared with.
    """

    def __init__(
        self,
        *,
        max_concurrency: int | None = None,
        max_queue_time_s: float | None = None,
        trust_request_start: bool = False,
        exempt: Iterable[str] = PROBE_PATHS,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if max_concurrency is not None and (
            isinstance(max_concurrency, bool)
            or not isinstance(max_concurrency, int)
            or max_concurrency < 1
        ):
            raise ValueError(f"max_concurrency must be a positive integer, not {max_concurrency!r}")
        if max_queue_time_s is not None and (
            isinstance(max_queue_time_s, bool)
            or not isinstance(max_queue_time_s, int | float)
            or not 0 < max_queue_time_s < math.inf
        ):
            raise ValueError(
                f"max_queue_time must be a positive number of seconds, not {max_queue_time_s!r}"
            )
        self.max_concurrency = max_concurrency
        self.max_queue_time_s = None if max_queue_time_s is None else float(max_queue_time_s)
        self.trust_request_start = trust_request_start
        self.exempt = frozenset(exempt)
        self._wall = wall
        # The connections whose request is in flight (a set, not a counter: a connection is
        # let go exactly once however its cycle ends).
        self._holders: set[object] = set()
        self.shed: dict[str, int] = {SHED_CONCURRENCY: 0, SHED_QUEUE_TIME: 0}
        self.admitted = 0
        # Called with each admitted request's queue time in seconds (the metrics histogram).
        self.queue_time_listeners: list[Callable[[float], None]] = []

    @classmethod
    def from_options(
        cls,
        max_concurrency: int | None = None,
        max_queue_time: float | None = None,
        trust_request_start: bool = False,
    ) -> Admission | None:
        """The policy for these options, or None when both bounds are off."""
        if max_concurrency is None and max_queue_time is None:
            return None
        return cls(
            max_concurrency=max_concurrency,
            max_queue_time_s=max_queue_time,
            trust_request_start=trust_request_start,
        )

    @property
    def measures_queue_time(self) -> bool:
        """Whether the protocol must note when each request head was read."""
        return self.max_queue_time_s is not None

    @property
    def in_flight(self) -> int:
        return len(self._holders)

    def admit(
        self, holder: object, head: RequestHead, arrived: float, now: float
    ) -> ServiceUnavailable | None:
        """Decide for one request about to start on connection ``holder``: None to run it
        (then it counts in flight, see :meth:`hold`), else the 503 to answer.

        ``arrived`` and ``now`` are loop-clock readings: when its head was read, and now.
        Counts what it decides (shed by reason, queue-time observations).
        """
        if _path(head.target) in self.exempt:
            return None
        limit = self.max_queue_time_s
        waited = 0.0
        if limit is not None:
            waited = now - arrived
            if self.trust_request_start:
                start = _request_start(head)
                if start is not None:
                    skew = self._wall() - start
                    if -MAX_CLOCK_SKEW_S < skew < MAX_CLOCK_SKEW_S:
                        waited = max(skew, 0.0)
            if waited > limit:
                self.shed[SHED_QUEUE_TIME] += 1
                return ServiceUnavailable("overloaded: the request waited too long")
        bound = self.max_concurrency
        if bound is not None and len(self._holders) >= bound:
            self.shed[SHED_CONCURRENCY] += 1
            return ServiceUnavailable("overloaded: too many requests in flight")
        if limit is not None:
            for listener in self.queue_time_listeners:
                listener(waited)
        self.admitted += 1
        self._holders.add(holder)
        return None

    def hold(self, holder: object, cycle: Coroutine[Any, Any, None]) -> Coroutine[Any, Any, None]:
        """``cycle``, which lets ``holder`` go when it ends, however it ends (an admitted,
        counted request; an exempt one is returned as it is)."""
        if holder not in self._holders:
            return cycle
        return self._held(holder, cycle)

    async def _held(self, holder: object, cycle: Coroutine[Any, Any, None]) -> None:
        try:
            await cycle
        finally:
            self._holders.discard(holder)

    def release(self, holder: object) -> None:
        """``holder``'s request no longer counts (an upgraded connection: the HTTP request
        ended with its 101; the WebSocket session after it is not a request in flight)."""
        self._holders.discard(holder)

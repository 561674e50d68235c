"""Logging for the master and its workers: text or JSON lines on stderr or a log file.

Owns: the two formats (``--log-format text|json``), the level, and ``--log-file``. A log file
is opened in append mode and *becomes* file descriptors 1 and 2 (``dup2``), so everything a
process writes -- logging records, ``print``, tracebacks, faulthandler's dumps of a stuck
worker -- lands in it. USR1 reopens it (after logrotate moved it); workers inherit the
descriptors and reopen on their own USR1.

In JSON mode every line is one JSON object, whatever writes it: besides logging records,
warnings, uncaught and unraisable exceptions (any thread) and the one-line fatal errors
(:func:`error_line`) are JSON objects, tracebacks in a field. (A stuck worker's faulthandler
dump cannot be formatted where it is written: in JSON mode the worker writes it on its
heartbeat pipe and the master logs it, see ``heartbeat.Decoder.text``.)

Imports: stdlib only.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from types import TracebackType

__all__ = ["JsonFormatter", "TextFormatter", "configure", "error_line", "is_json", "reopen"]

_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        moment = time.gmtime(record.created)
        return time.strftime("%Y-%m-%dT%H:%M:%S", moment) + f".{int(record.msecs):03d}Z"


class JsonFormatter(TextFormatter):
    """One JSON object per line; ``extra={...}`` fields are kept."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        payload.update(
            (key, value)
            for key, value in record.__dict__.items()
            if key not in _RESERVED and not key.startswith("_")
        )
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def reopen(path: str) -> None:
    """(Re)open ``path`` for appending and make it this process's stdout and stderr."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    finally:
        os.close(fd)


_json_format = False


def is_json() -> bool:
    """True once :func:`configure` set up the JSON format in this process."""
    return _json_format


def error_line(message: str, *, json_format: bool | None = None) -> None:
    """A fatal error as one line on stderr: ``forkloop: error: ...`` or, in JSON mode (the
    configured one unless ``json_format`` says), one JSON object at level error."""
    text = " ".join(message.split())
    if _json_format if json_format is None else json_format:
        record = logging.makeLogRecord(
            {"name": "forkloop", "levelname": "ERROR", "levelno": logging.ERROR, "msg": text}
        )
        line = JsonFormatter().format(record)
    else:
        line = f"forkloop: error: {text}"
    print(line, file=sys.stderr, flush=True)


def _log_uncaught(
    kind: type[BaseException], value: BaseException, trace: TracebackType | None
) -> None:
    logging.getLogger("forkloop").critical("uncaught exception", exc_info=(kind, value, trace))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("forkloop").error(
        "uncaught exception in thread %s",
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def _log_unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    value = unraisable.exc_value
    trace = unraisable.exc_traceback
    logging.getLogger("forkloop").error(
        "%s: %r",
        unraisable.err_msg or "Exception ignored in",
        unraisable.object,
        exc_info=(type(value), value, trace) if value is not None else None,
    )


def configure(level: str = "info", fmt: str = "text", log_file: str | None = None) -> None:
    """Configure the root logger of this process (master, or a worker after fork)."""
    global _json_format
    if log_file:
        reopen(log_file)
    _json_format = fmt == "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if _json_format else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    _route_python_output(_json_format)


def _route_python_output(json_format: bool) -> None:
    """In JSON mode what Python itself would print as text (warnings, uncaught and unraisable
    exceptions) goes through logging; back in text mode our hooks give way to the defaults."""
    logging.captureWarnings(json_format)
    if json_format:
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_uncaught_in_thread
        sys.unraisablehook = _log_unraisable
        return
    if sys.excepthook is _log_uncaught:
        sys.excepthook = sys.__excepthook__
    if threading.excepthook is _log_uncaught_in_thread:
        threading.excepthook = threading.__excepthook__
    if sys.unraisablehook is _log_unraisable:
        sys.unraisablehook = sys.__unraisablehook__

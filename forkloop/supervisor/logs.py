"""Logging for the master and its workers: text or JSON lines on stderr or a log file.

Owns: the two formats (``--log-format text|json``), the level, and ``--log-file``. A log file
is opened in append mode and *becomes* file descriptors 1 and 2 (``dup2``), so everything a
process writes -- logging records, ``print``, tracebacks, faulthandler's dumps of a stuck
worker -- lands in it. USR1 reopens it (after logrotate moved it); workers inherit the
descriptors and reopen on their own USR1.

Imports: stdlib only.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

__all__ = ["JsonFormatter", "TextFormatter", "configure", "reopen"]

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


def configure(level: str = "info", fmt: str = "text", log_file: str | None = None) -> None:
    """Configure the root logger of this process (master, or a worker after fork)."""
    if log_file:
        reopen(log_file)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())

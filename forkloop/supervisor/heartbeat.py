"""The worker -> master pipe protocol: small, versioned, line-delimited JSON messages.

Owns: the message kinds and their fields, encoding (one message is one ``write`` of at most
``PIPE_BUF`` bytes, so writes from one worker never interleave), incremental decoding, and the
worker-side non-blocking writer.

Every message is a JSON object on one line with ``"v"`` (format version, currently 1) and
``"k"`` (kind). Known kinds:

``ready``       the worker serves on every listener. Fields: ``pid``.
``beat``        sent from the worker's event loop every ``interval_s``. Fields: ``requests``
                (served since the worker started), ``inflight``, ``connections``, ``lag_s``
                (how late the loop ran the heartbeat timer), ``draining`` (bool).
``limit``       like ``beat`` without ``lag_s``: sent at once when the worker reaches its
                ``--max-requests``, so its replacement need not wait for the next beat.
``boot_error``  loading the app failed. Fields: ``error`` (one line), ``detail`` (traceback).
``stopping``    the worker began a graceful stop. Fields: ``reason``.

Unknown kinds and fields are kept (``Message.fields``) so that later versions, e.g. the
metrics layer, can add data without breaking an older master. Lines that do not parse are
counted and skipped, never fatal; their text is kept (the last ``MAX_TEXT_BYTES``) in
``Decoder.text``: in JSON log mode a worker points faulthandler at this pipe, so that the
master logs a stuck worker's traceback dump as one JSON record.

Imports: stdlib only.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_MESSAGE_BYTES",
    "VERSION",
    "Decoder",
    "HeartbeatWriter",
    "Message",
    "encode",
]

VERSION = 1
MAX_TEXT_BYTES = 64 * 1024  # of non-message text kept per pipe (a traceback dump)
MAX_MESSAGE_BYTES = select.PIPE_BUF  # POSIX: writes up to PIPE_BUF bytes are atomic


@dataclass(frozen=True)
class Message:
    kind: str
    fields: dict[str, Any] = field(default_factory=dict)
    version: int = VERSION

    def get_int(self, name: str, default: int = 0) -> int:
        value = self.fields.get(name, default)
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    def get_float(self, name: str, default: float = 0.0) -> float:
        value = self.fields.get(name, default)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return default


def encode(kind: str, **fields: Any) -> bytes:
    """One message as bytes; long string fields are shortened to fit ``PIPE_BUF``."""
    payload = {"v": VERSION, "k": kind, **fields}
    data = (json.dumps(payload, separators=(",", ":"), default=str) + "\n").encode()
    if len(data) <= MAX_MESSAGE_BYTES:
        return data
    # Shorten the longest string fields (error details), keeping their ends, until it fits.
    for _ in range(32):
        name = max(
            (n for n in fields if isinstance(payload[n], str)),
            key=lambda n: len(payload[n]),
            default=None,
        )
        if name is None:
            break
        value: str = payload[name]
        over = len(data) - MAX_MESSAGE_BYTES + 8
        keep = max(0, len(value) - over * len(value) // len(data) - 8)
        payload[name] = "..." + value[len(value) - keep :] if keep else "..."
        data = (json.dumps(payload, separators=(",", ":"), default=str) + "\n").encode()
        if len(data) <= MAX_MESSAGE_BYTES:
            return data
    raise ValueError(f"message {kind!r} does not fit in {MAX_MESSAGE_BYTES} bytes")


class Decoder:
    """Incremental decoder: ``feed(bytes) -> list[Message]``."""

    def __init__(self) -> None:
        self._buffer = b""
        self.bad_lines = 0
        self._text: list[bytes] = []
        self._text_bytes = 0

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > 4 * MAX_MESSAGE_BYTES:  # a writer that never sends "\n"
            self._buffer = b""
            self.bad_lines += 1
        messages = []
        for line in lines:
            message = self._decode(line)
            if message is None:
                self.bad_lines += 1
                self._keep(line)
            else:
                messages.append(message)
        return messages

    def _keep(self, line: bytes) -> None:
        self._text.append(line[:MAX_TEXT_BYTES])
        self._text_bytes += len(self._text[-1]) + 1
        while self._text_bytes > MAX_TEXT_BYTES and len(self._text) > 1:
            self._text_bytes -= len(self._text.pop(0)) + 1

    def text(self) -> str:
        """The lines that were not messages (with a last unterminated one), and forget them."""
        lines = self._text
        if self._buffer and self._decode(self._buffer) is None:
            lines.append(self._buffer[:MAX_TEXT_BYTES])
            self._buffer = b""
        self._text, self._text_bytes = [], 0
        return b"\n".join(lines).decode("utf-8", "replace")

    @staticmethod
    def _decode(line: bytes) -> Message | None:
        try:
            payload = json.loads(line)
        except ValueError:
            return None
        if not isinstance(payload, dict):
            return None
        version = payload.pop("v", None)
        kind = payload.pop("k", None)
        if not isinstance(version, int) or not isinstance(kind, str):
            return None
        return Message(kind, payload, version)


class HeartbeatWriter:
    """The worker's end of the pipe: never blocks the event loop.

    A full pipe (master busy) drops the message; a closed pipe (master gone) sets ``broken``.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.broken = False
        self.dropped = 0
        os.set_blocking(fd, False)

    def send(self, kind: str, **fields: Any) -> bool:
        if self.broken:
            return False
        try:
            os.write(self.fd, encode(kind, **fields))
        except BlockingIOError:
            self.dropped += 1
            return False
        except OSError:  # EPIPE: the master is gone
            self.broken = True
            return False
        return True

    def send_blocking(self, kind: str, **fields: Any) -> bool:
        """For messages that must arrive (ready, boot_error), outside the event loop."""
        if self.broken:
            return False
        os.set_blocking(self.fd, True)
        try:
            os.write(self.fd, encode(kind, **fields))
        except OSError:
            self.broken = True
            return False
        finally:
            with contextlib.suppress(OSError):
                os.set_blocking(self.fd, False)
        return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)

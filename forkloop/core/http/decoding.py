"""Request ``Content-Encoding`` decoding, sans-I/O: compressed bytes in, bounded pieces out.

Owns ``Decoder`` and ``make_decoder(coding)``. A ``Decoder`` takes the body's bytes as they
arrive (``feed``) and hands out the decoded body in pieces of at most ``piece_bytes`` each
(``read``); whatever it has not decoded yet stays queued as compressed input. Its memory is
the compressed input queued plus one piece, whatever the compression ratio: a few kilobytes
of gzip that expand to gigabytes are decoded one bounded piece per ``read`` call, and the
caller decides when to ask for the next (``core.server.decompress`` asks while its buffer is
below the flow-control mark). ``end()`` says the input is complete and raises if the
compressed stream is not.

Codings, as aiohttp decodes them (the ``Content-Encoding`` value, case-insensitive, must be
exactly one of these; anything else, ``identity`` included, is left alone):
``gzip`` (RFC 1952; several members in a row are read as one stream), ``deflate`` (RFC 9110
says the zlib format, RFC 1950; a first byte that is not a zlib header is read as raw
deflate, RFC 1951, as many senders send), ``br`` (RFC 7932, when the ``brotli`` or
``brotlicffi`` module can be imported) and ``zstd`` (RFC 8878, when ``compression.zstd`` or
``backports.zstd`` can be imported). A known coding whose module is missing, and a stream
that is corrupt, truncated or followed by other bytes, raise ``RequestPayloadError`` (400).

Imports nothing of ours but ``core.http.errors``.
"""

from __future__ import annotations

import collections
import importlib
import zlib
from typing import Any, Final, Protocol

from .errors import RequestPayloadError

__all__ = ["DEFAULT_PIECE_BYTES", "Decoder", "make_decoder"]

# The most one read() returns: the bound on what one decoding step allocates.
DEFAULT_PIECE_BYTES: Final = 64 * 1024

_GZIP_MAGIC: Final = b"\x1f\x8b"


def _error(coding: str) -> RequestPayloadError:
    return RequestPayloadError(f"Can not decode content-encoding: {coding}")


class _NeedMore(Exception):
    """The engine cannot start on so few bytes (a deflate header is sniffed from two)."""


def _is_zlib_header(cmf: int, flg: int) -> bool:
    """RFC 1950 §2.2: method 8 (deflate), window at most 32 KiB, the check bits, and no
    preset dictionary (HTTP has none to offer). A raw deflate stream (RFC 1951) passes all
    four by chance about once in 2000; that is the heuristic's cost, as in every server."""
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0 and not flg & 0x20


class _Engine(Protocol):
    """One decompressor: ``step(data, limit) -> (output, rest of data not yet consumed)``;
    ``drain(limit)``: output it holds that needs no more input (its last output was cut at
    the limit); ``holding``: whether there may be such output."""

    @property
    def holding(self) -> bool: ...
    def step(self, data: bytes, limit: int) -> tuple[bytes, bytes]: ...
    def drain(self, limit: int) -> bytes: ...
    def finished(self) -> bool: ...


class _ZlibEngine:
    """gzip and deflate through ``zlib.decompressobj``: ``max_length`` bounds each output."""

    __slots__ = ("_gzip", "_holding", "_obj", "_wbits")

    def __init__(self, coding: str) -> None:
        self._gzip = coding == "gzip"
        self._wbits = 16 + zlib.MAX_WBITS if self._gzip else zlib.MAX_WBITS
        self._obj: Any = None  # made on the first bytes (deflate sniffs its header)
        # The last output filled the limit: inflate may hold more (a long match) even with
        # all input consumed; it comes out of a call with no new input.
        self._holding = False

    def step(self, data: bytes, limit: int) -> tuple[bytes, bytes]:
        obj = self._obj
        if obj is None:
            wbits = self._wbits
            if not self._gzip:
                if len(data) < 2:
                    raise _NeedMore
                if not _is_zlib_header(data[0], data[1]):
                    wbits = -zlib.MAX_WBITS  # raw deflate, as many senders send
            obj = self._obj = zlib.decompressobj(wbits)
        elif obj.eof:  # a deflate stream has ended: nothing may follow it
            raise zlib.error("bytes after the end of the compressed stream")
        out = obj.decompress(data, limit)
        self._holding = len(out) >= limit and not obj.eof
        if obj.eof:
            rest = obj.unused_data
            if self._gzip:
                # What follows a gzip member is the next member (RFC 1952 §2.2); anything
                # else fails its header check there.
                self._obj = None
            elif rest:
                raise zlib.error("bytes after the end of the compressed stream")
            return out, rest
        return out, obj.unconsumed_tail

    @property
    def holding(self) -> bool:
        return self._holding

    def drain(self, limit: int) -> bytes:
        if not self._holding:
            return b""
        return self.step(b"", limit)[0]  # no input given: nothing can be left over

    def finished(self) -> bool:
        return self._obj is None or bool(self._obj.eof)


class _NeedsInputEngine:
    """zstd (``ZstdDecompressor``) and brotli decompressors with a bounded-output API."""

    __slots__ = ("_kind", "_obj")

    def __init__(self, obj: Any, kind: str) -> None:
        self._obj = obj
        self._kind = kind

    @property
    def holding(self) -> bool:
        obj = self._obj
        if self._kind == "zstd":
            return not (obj.eof or obj.needs_input)
        return not (obj.is_finished() or obj.can_accept_more_data())

    def step(self, data: bytes, limit: int) -> tuple[bytes, bytes]:
        obj = self._obj
        if self._kind == "zstd":
            # Like bz2/lzma: input it could not use yet is kept inside; b"" asks for more.
            out: bytes = obj.decompress(data, limit)
            if obj.eof and obj.unused_data:
                raise zlib.error("bytes after the end of the compressed stream")
            return out, b""
        out = obj.process(data, output_buffer_limit=limit)
        return out, b""

    def drain(self, limit: int) -> bytes:
        """Output the decompressor holds without needing more input."""
        obj = self._obj
        if self._kind == "zstd":
            if obj.eof or obj.needs_input:
                return b""
            return bytes(obj.decompress(b"", limit))
        if obj.is_finished() or obj.can_accept_more_data():
            return b""
        return bytes(obj.process(b"", output_buffer_limit=limit))

    def finished(self) -> bool:
        obj = self._obj
        return bool(obj.eof if self._kind == "zstd" else obj.is_finished())


def _zstd_engine() -> _NeedsInputEngine | None:
    for name in ("compression.zstd", "backports.zstd"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return _NeedsInputEngine(module.ZstdDecompressor(), "zstd")
    return None


def _brotli_engine() -> _NeedsInputEngine | None:
    for name in ("brotli", "brotlicffi"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        obj = module.Decompressor()
        # Only a decompressor that can bound its output is safe against a bomb.
        if hasattr(obj, "can_accept_more_data"):
            return _NeedsInputEngine(obj, "br")
        raise RequestPayloadError(
            "Can not decode content-encoding: brotli (br). The installed brotli module cannot "
            "bound its output: install a newer Brotli"
        )
    return None


class Decoder:
    """Decodes one body: ``feed(data)`` as bytes arrive, ``read()`` pieces, ``end()``."""

    __slots__ = (
        "_coding",
        "_dropped",
        "_engine",
        "_fed",
        "_input",
        "_stalled",
        "_tail",
        "piece_bytes",
    )

    def __init__(self, coding: str, engine: _Engine, piece_bytes: int) -> None:
        if piece_bytes <= 0:
            raise ValueError("piece_bytes must be positive")
        self._coding = coding
        self._engine = engine
        self._input: collections.deque[bytes] = collections.deque()
        self._tail = b""  # input the engine handed back unconsumed (output was bounded)
        self._stalled = False  # the tail is too short to start on: it waits for more input
        self._fed = False
        self._dropped = False  # clear() was called: the body is not wanted any more
        self.piece_bytes = piece_bytes

    @property
    def coding(self) -> str:
        return self._coding

    @property
    def pending(self) -> bool:
        """Input is queued that ``read()`` can decode now."""
        if self._dropped:
            return False
        return bool(self._input or (self._tail and not self._stalled) or self._engine.holding)

    def feed(self, data: bytes) -> None:
        """Queue compressed bytes (kept as given; decoded on ``read``)."""
        if data and not self._dropped:
            self._input.append(bytes(data))
            self._fed = True
            self._stalled = False

    def clear(self) -> None:
        """Drop the queued input and stop decoding (the body will not be read)."""
        self._dropped = True
        self._input.clear()
        self._tail = b""
        self._stalled = False

    def read(self) -> bytes:
        """The next decoded piece, at most ``piece_bytes``; ``b""`` when all input fed so far
        is decoded (feed more, or ``end()``). Raises ``RequestPayloadError`` on a bad stream."""
        engine = self._engine
        limit = self.piece_bytes
        if self._dropped:
            return b""
        try:
            held = engine.drain(limit)
            if held:
                return held
            while True:
                if self._tail:
                    data, self._tail = self._tail, b""
                elif self._input:
                    data = self._input.popleft()
                else:
                    return b""
                try:
                    out, self._tail = engine.step(data, limit)
                except _NeedMore:
                    if not self._input:
                        self._tail, self._stalled = data, True
                        return b""
                    self._tail = data + self._input.popleft()
                    continue
                if out:
                    return bytes(out)
        except Exception as exc:  # zlib.error, brotli.error, ...: the stream is bad
            self.clear()
            raise _error(self._coding) from exc

    def end(self) -> None:
        """The input is complete; raises ``RequestPayloadError`` if the compressed stream is
        not (truncated). Call once ``read()`` has returned ``b""`` with nothing pending."""
        if self._dropped:
            return
        if self.pending:
            raise RuntimeError("end() with input still to decode")
        if self._tail or (self._fed and not self._engine.finished()):
            self.clear()
            raise _error(self._coding)


def make_decoder(coding: str, *, piece_bytes: int = DEFAULT_PIECE_BYTES) -> Decoder | None:
    """A decoder for a request's ``Content-Encoding`` value, or None when the body is to be
    left as it is (no coding, ``identity``, or a value aiohttp does not decode either).
    Raises ``RequestPayloadError`` for ``br``/``zstd`` when their module is missing."""
    if not coding.isascii():
        return None
    coding = coding.lower()
    if coding in ("gzip", "deflate"):
        return Decoder(coding, _ZlibEngine(coding), piece_bytes)
    if coding == "br":
        engine = _brotli_engine()
        if engine is None:
            raise RequestPayloadError(
                "Can not decode content-encoding: brotli (br). Please install `Brotli`"
            )
        return Decoder(coding, engine, piece_bytes)
    if coding == "zstd":
        engine = _zstd_engine()
        if engine is None:
            raise RequestPayloadError(
                "Can not decode content-encoding: zstandard (zstd). Please install `backports.zstd`"
            )
        return Decoder(coding, engine, piece_bytes)
    return None

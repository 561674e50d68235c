"""The sans-I/O request body decoder (``forkloop.core.http.decoding``): table-driven cases,
every input fed byte by byte and split at every offset, property tests (random data, random
codings and levels, random splits) and the bound on what one ``read()`` returns."""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import zlib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from forkloop.core.http.decoding import Decoder, _is_zlib_header, make_decoder
from forkloop.core.http.errors import RequestPayloadError


def raw_deflate(data: bytes, level: int = 6) -> bytes:
    c = zlib.compressobj(level, wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def zlib_deflate(data: bytes, level: int = 6) -> bytes:
    return zlib.compress(data, level)


def gzip_deflate(data: bytes, level: int = 6) -> bytes:
    return gzip.compress(data, level)


ENCODERS = {"gzip": gzip_deflate, "deflate-zlib": zlib_deflate, "deflate-raw": raw_deflate}


def coding_of(name: str) -> str:
    return name.split("-")[0]


def decode(decoder: Decoder, pieces: list[bytes]) -> bytes:
    out = bytearray()
    for piece in pieces:
        decoder.feed(piece)
        while chunk := decoder.read():
            assert len(chunk) <= decoder.piece_bytes
            out += chunk
    decoder.end()
    return bytes(out)


TEXT = b"The quick brown fox jumps over the lazy dog. " * 40

# (name, Content-Encoding, body as sent, decoded body or the exception expected)
TABLE: list[tuple[str, str, bytes, bytes | type[Exception]]] = [
    ("gzip", "gzip", gzip.compress(TEXT), TEXT),
    ("gzip upper case", "GZIP", gzip.compress(TEXT), TEXT),
    ("deflate zlib", "deflate", zlib.compress(TEXT), TEXT),
    ("deflate raw", "deflate", raw_deflate(TEXT), TEXT),
    ("gzip empty payload", "gzip", gzip.compress(b""), b""),
    ("nothing sent", "gzip", b"", b""),
    ("two gzip members", "gzip", gzip.compress(b"ab") + gzip.compress(b"cd"), b"abcd"),
    ("gzip truncated", "gzip", gzip.compress(TEXT)[:-4], RequestPayloadError),
    ("deflate truncated", "deflate", zlib.compress(TEXT)[:-6], RequestPayloadError),
    ("gzip garbage", "gzip", b"this is not gzip", RequestPayloadError),
    ("deflate garbage", "deflate", b"\x78\x9cnot really", RequestPayloadError),
    ("gzip then junk", "gzip", gzip.compress(TEXT) + b"junk", RequestPayloadError),
    ("zlib then junk", "deflate", zlib.compress(TEXT) + b"\x00", RequestPayloadError),
    ("raw then junk", "deflate", raw_deflate(TEXT) + b"\x00", RequestPayloadError),
    ("gzip member then a partial one", "gzip", gzip.compress(b"a") + b"\x1f", RequestPayloadError),
    ("one byte of deflate", "deflate", b"\x78", RequestPayloadError),
    ("raw deflate of one byte", "deflate", raw_deflate(b"x"), b"x"),
    ("gzip bad checksum", "gzip", gzip.compress(TEXT)[:-8] + b"\0" * 8, RequestPayloadError),
]


def run(coding: str, pieces: list[bytes]) -> bytes:
    decoder = make_decoder(coding)
    assert decoder is not None
    return decode(decoder, pieces)


@pytest.mark.parametrize(("name", "coding", "data", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_table(name: str, coding: str, data: bytes, expected: bytes | type[Exception]) -> None:
    for pieces in ([data], [data[i : i + 1] for i in range(len(data))]):
        if isinstance(expected, bytes):
            assert run(coding, pieces) == expected
        else:
            with pytest.raises(expected, match="Can not decode content-encoding"):
                run(coding, pieces)


@pytest.mark.parametrize(("name", "coding", "data", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_every_split_gives_the_same_result(
    name: str, coding: str, data: bytes, expected: bytes | type[Exception]
) -> None:
    for cut in range(len(data) + 1):
        pieces = [data[:cut], data[cut:]]
        if isinstance(expected, bytes):
            assert run(coding, pieces) == expected
        else:
            with pytest.raises(expected):
                run(coding, pieces)


@pytest.mark.parametrize(
    "coding", ["", "identity", "x-gzip", "gzip, gzip", "compress", "gz\u00efp"]
)
def test_codings_left_alone(coding: str) -> None:
    assert make_decoder(coding) is None


@pytest.mark.parametrize(
    ("coding", "modules"), [("br", ("brotli", "brotlicffi")), ("zstd", ("backports",))]
)
def test_a_known_coding_without_its_module_is_refused(
    coding: str, modules: tuple[str, ...]
) -> None:
    if any(importlib.util.find_spec(m) for m in modules):
        pytest.skip(f"a {coding} module is installed")
    with pytest.raises(RequestPayloadError, match="Can not decode content-encoding"):
        make_decoder(coding)


def test_brotli_round_trip() -> None:
    brotli = pytest.importorskip("brotli")
    try:
        decoder = make_decoder("br", piece_bytes=1000)
    except RequestPayloadError:
        pytest.skip("the installed brotli cannot bound its output")
    assert decoder is not None
    data = bytes(200_000)
    assert decode(decoder, [brotli.compress(data)]) == data


def test_a_bomb_is_decoded_one_bounded_piece_per_read() -> None:
    decoded_size = 32 << 20
    c = zlib.compressobj(9, wbits=16 + zlib.MAX_WBITS)
    bomb = b"".join(c.compress(bytes(1 << 20)) for _ in range(decoded_size >> 20)) + c.flush()
    assert len(bomb) < decoded_size // 500
    decoder = make_decoder("gzip", piece_bytes=4096)
    assert decoder is not None
    decoder.feed(bomb)  # all of it at once: nothing is decoded until asked
    first = decoder.read()
    assert len(first) == 4096
    assert decoder.pending
    total = len(first)
    reads = 1
    while piece := decoder.read():
        assert len(piece) <= 4096
        total += len(piece)
        reads += 1
    decoder.end()
    assert total == decoded_size
    assert reads >= decoded_size // 4096


def test_clear_drops_what_is_queued() -> None:
    decoder = make_decoder("gzip", piece_bytes=10)
    assert decoder is not None
    decoder.feed(gzip.compress(TEXT))
    assert decoder.read()
    decoder.clear()
    assert not decoder.pending
    assert decoder.read() == b""


def test_piece_bytes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        make_decoder("gzip", piece_bytes=0)


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(max_size=20_000) | st.builds(lambda n: bytes(n), st.integers(0, 300_000)),
    name=st.sampled_from(sorted(ENCODERS)),
    level=st.integers(0, 9),
    cuts=st.lists(st.integers(0, 400_000), max_size=12),
    piece_bytes=st.integers(1, 70_000),
)
def test_round_trip_in_random_splits(
    data: bytes, name: str, level: int, cuts: list[int], piece_bytes: int
) -> None:
    sent = ENCODERS[name](data, level)
    # The one ambiguity of "deflate": a raw stream that starts like a zlib header.
    assume(name != "deflate-raw" or len(sent) < 2 or not _is_zlib_header(sent[0], sent[1]))
    bounds = sorted({0, len(sent), *(c % (len(sent) + 1) for c in cuts)})
    pieces = [sent[a:b] for a, b in itertools.pairwise(bounds)]
    decoder = make_decoder(coding_of(name), piece_bytes=piece_bytes)
    assert decoder is not None
    assert decode(decoder, pieces) == data  # decode() also checks every piece's bound

"""The sans-I/O frame reader and writer: table-driven, byte by byte, and properties."""

from __future__ import annotations

import itertools
import os
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forkloop.core.websocket import (
    DeflateParams,
    FrameReader,
    FrameWriter,
    WebSocketError,
    WSMessage,
    WSMsgType,
    apply_mask,
    build_frame,
    parse_close_payload,
)

TEXT, BINARY, CLOSE, PING, PONG = (
    WSMsgType.TEXT,
    WSMsgType.BINARY,
    WSMsgType.CLOSE,
    WSMsgType.PING,
    WSMsgType.PONG,
)


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    """A masked client frame (raw RSV bits so tests can set illegal ones)."""
    data = bytearray(build_frame(opcode, payload, fin=fin, mask=True))
    data[0] |= rsv
    return bytes(data)


def deflate_raw(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def messages(
    wire: bytes, **kw: object
) -> tuple[list[tuple[WSMsgType, object, object]], int | None]:
    reader = FrameReader(**kw)  # type: ignore[arg-type]
    msgs = reader.feed(wire)
    return [tuple(m) for m in msgs], (reader.error.code if reader.error else None)  # type: ignore[misc]


CLOSE_1000 = struct.pack("!H", 1000)

VALID = [
    ("text", frame(1, b"hello"), [(TEXT, "hello", "")]),
    ("binary", frame(2, b"\x00\xff"), [(BINARY, b"\x00\xff", "")]),
    ("empty text", frame(1), [(TEXT, "", "")]),
    ("utf8 text", frame(1, "κόσμε €".encode()), [(TEXT, "κόσμε €", "")]),
    ("len 125", frame(2, b"x" * 125), [(BINARY, b"x" * 125, "")]),
    ("len 126 (16-bit)", frame(2, b"y" * 126), [(BINARY, b"y" * 126, "")]),
    ("len 65535", frame(2, b"z" * 65535), [(BINARY, b"z" * 65535, "")]),
    ("len 65536 (64-bit)", frame(2, b"w" * 65536), [(BINARY, b"w" * 65536, "")]),
    ("ping", frame(9, b"pp"), [(PING, b"pp", "")]),
    ("pong", frame(10, b"qq"), [(PONG, b"qq", "")]),
    ("close empty", frame(8), [(CLOSE, 1005, "")]),
    ("close 1000", frame(8, CLOSE_1000 + b"bye"), [(CLOSE, 1000, "bye")]),
    ("close 3000", frame(8, struct.pack("!H", 3000)), [(CLOSE, 3000, "")]),
    ("close 4999", frame(8, struct.pack("!H", 4999)), [(CLOSE, 4999, "")]),
    (
        "fragmented text",
        frame(1, b"he", fin=False) + frame(0, b"ll", fin=False) + frame(0, b"o"),
        [(TEXT, "hello", "")],
    ),
    (
        "fragmented binary with ping inside",
        frame(2, b"a", fin=False) + frame(9, b"p") + frame(0, b"b"),
        [(PING, b"p", ""), (BINARY, b"ab", "")],
    ),
    (
        "utf8 split across fragments",
        frame(1, "€".encode()[:1], fin=False) + frame(0, "€".encode()[1:]),
        [(TEXT, "€", "")],
    ),
    ("empty fragments", frame(1, b"", fin=False) + frame(0, b""), [(TEXT, "", "")]),
    (
        "two messages",
        frame(1, b"a") + frame(2, b"b"),
        [(TEXT, "a", ""), (BINARY, b"b", "")],
    ),
    ("data after close is ignored", frame(8, CLOSE_1000) + frame(1, b"x"), [(CLOSE, 1000, "")]),
]


@pytest.mark.parametrize(("wire", "expected"), [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_frames(wire: bytes, expected: list[object]) -> None:
    assert messages(wire) == (expected, None)


SMALL = [c for c in VALID if len(c[1]) <= 5000]  # byte by byte; big frames: every split


@pytest.mark.parametrize(("wire", "expected"), [c[1:] for c in SMALL], ids=[c[0] for c in SMALL])
def test_valid_frames_byte_by_byte(wire: bytes, expected: list[object]) -> None:
    reader = FrameReader()
    got = []
    for i in range(len(wire)):
        got.extend(tuple(m) for m in reader.feed(wire[i : i + 1]))
    assert reader.error is None
    assert got == expected


@pytest.mark.parametrize(("wire", "expected"), [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_frames_every_split(wire: bytes, expected: list[object]) -> None:
    step = max(1, len(wire) // 300)
    for cut in range(0, len(wire) + 1, step):
        reader = FrameReader()
        got = reader.feed(wire[:cut]) + reader.feed(wire[cut:])
        assert reader.error is None
        assert [tuple(m) for m in got] == expected


def _unmasked(opcode: int, payload: bytes) -> bytes:
    return build_frame(opcode, payload)


INVALID = [
    ("unmasked client frame", _unmasked(1, b"hi"), 1002),
    ("RSV1 without extension", frame(1, b"x", rsv=0x40), 1002),
    ("RSV2", frame(1, b"x", rsv=0x20), 1002),
    ("RSV3", frame(2, b"x", rsv=0x10), 1002),
    ("reserved data opcode 3", frame(3, b"x"), 1002),
    ("reserved data opcode 7", frame(7), 1002),
    ("reserved control opcode 0xB", frame(0xB), 1002),
    ("reserved control opcode 0xF", frame(0xF), 1002),
    ("fragmented ping", frame(9, b"x", fin=False), 1002),
    ("ping longer than 125", frame(9, b"x" * 126), 1002),
    ("close longer than 125", frame(8, CLOSE_1000 + b"x" * 124), 1002),
    ("RSV on ping", frame(9, b"", rsv=0x40), 1002),
    ("continuation without start", frame(0, b"x"), 1002),
    ("new message inside fragmented", frame(1, b"a", fin=False) + frame(1, b"b"), 1002),
    ("invalid utf8", frame(1, b"\xff\xfe"), 1007),
    ("surrogate in utf8", frame(1, b"\xed\xa0\x80"), 1007),
    ("invalid utf8 in fragment", frame(1, b"ok", fin=False) + frame(0, b"\xc0\xaf"), 1007),
    ("truncated utf8 at the end", frame(1, b"a\xe2\x82", fin=False) + frame(0, b""), 1007),
    ("close 1-byte payload", frame(8, b"\x03"), 1002),
    ("close code 0", frame(8, struct.pack("!H", 0)), 1002),
    ("close code 999", frame(8, struct.pack("!H", 999)), 1002),
    ("close code 1004", frame(8, struct.pack("!H", 1004)), 1002),
    ("close code 1005", frame(8, struct.pack("!H", 1005)), 1002),
    ("close code 1006", frame(8, struct.pack("!H", 1006)), 1002),
    ("close code 1015", frame(8, struct.pack("!H", 1015)), 1002),
    ("close code 1016", frame(8, struct.pack("!H", 1016)), 1002),
    ("close code 2999", frame(8, struct.pack("!H", 2999)), 1002),
    ("close code 5000", frame(8, struct.pack("!H", 5000)), 1002),
    ("close reason invalid utf8", frame(8, CLOSE_1000 + b"\xff"), 1007),
    (
        "64-bit length with top bit",
        bytes((0x82, 0xFF)) + (1 << 63).to_bytes(8, "big") + b"\x00" * 4,
        1002,
    ),
]


@pytest.mark.parametrize(("wire", "code"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_frames(wire: bytes, code: int) -> None:
    assert messages(wire)[1] == code
    # Byte by byte too: the error is found, nothing is delivered after it.
    reader = FrameReader()
    for i in range(len(wire)):
        reader.feed(wire[i : i + 1])
    assert reader.error is not None
    assert reader.error.code == code
    assert reader.feed(frame(1, b"more")) == []


def test_messages_before_an_error_are_delivered() -> None:
    got, code = messages(frame(1, b"a") + frame(2, b"b") + frame(1, b"\xff"))
    assert got == [(TEXT, "a", ""), (BINARY, b"b", "")]
    assert code == 1007


def test_invalid_utf8_fails_fast_at_the_bad_fragment() -> None:
    reader = FrameReader()
    assert reader.feed(frame(1, "κόσμε".encode(), fin=False)) == []
    assert reader.error is None
    reader.feed(frame(0, b"\xce\xba\xe1\x80\x80\xf4\x90\x80\x80", fin=False))
    assert reader.error is not None
    assert reader.error.code == 1007


def test_server_side_reader_refuses_masked_frames() -> None:
    client = FrameReader(server=False)
    assert [tuple(m) for m in client.feed(build_frame(1, b"hi"))] == [(TEXT, "hi", "")]
    client = FrameReader(server=False)
    client.feed(frame(1, b"hi"))
    assert client.error is not None
    assert client.error.code == 1002


@pytest.mark.parametrize("size", [10, 100, 1000])
def test_max_msg_size(size: int) -> None:
    assert messages(frame(2, b"x" * size), max_msg_size=size) == ([(BINARY, b"x" * size, "")], None)
    assert messages(frame(2, b"x" * (size + 1)), max_msg_size=size)[1] == 1009
    fragmented = frame(2, b"x" * size, fin=False) + frame(0, b"y")
    assert messages(fragmented, max_msg_size=size)[1] == 1009


def test_max_msg_size_is_checked_before_the_payload_arrives() -> None:
    reader = FrameReader(max_msg_size=1000)
    head = bytes((0x82, 0xFF)) + (10**9).to_bytes(8, "big") + b"\x01\x02\x03\x04"
    reader.feed(head)
    assert reader.error is not None
    assert reader.error.code == 1009


def test_zero_max_msg_size_is_unlimited() -> None:
    payload = b"u" * 100_000
    assert messages(frame(2, payload), max_msg_size=0) == ([(BINARY, payload, "")], None)


def test_parse_close_payload() -> None:
    assert parse_close_payload(b"") == (1005, "")
    assert parse_close_payload(struct.pack("!H", 1001) + "é".encode()) == (1001, "é")
    with pytest.raises(WebSocketError) as info:
        parse_close_payload(b"\x03\xe8\xc3")
    assert info.value.code == 1007


# --- permessage-deflate ---------------------------------------------------------------


def test_compressed_message() -> None:
    body = b"hello hello hello hello"
    wire = frame(1, deflate_raw(body), rsv=0x40)
    assert messages(wire, compress=True) == ([(TEXT, body.decode(), "")], None)


def test_compressed_fragmented_message_with_context_takeover() -> None:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    first = c.compress(b"abcabcabc" * 10) + c.flush(zlib.Z_SYNC_FLUSH)
    second = c.compress(b"abcabcabc" * 10) + c.flush(zlib.Z_SYNC_FLUSH)
    wire = (
        frame(2, first[:5], fin=False, rsv=0x40)
        + frame(0, first[5:-4])
        + frame(2, second[:-4], rsv=0x40)
    )
    reader = FrameReader(compress=True)
    got = []
    for i in range(len(wire)):
        got.extend(reader.feed(wire[i : i + 1]))
    assert reader.error is None
    assert [m.data for m in got] == [b"abcabcabc" * 10] * 2


def test_decompression_bomb_is_refused() -> None:
    bomb = deflate_raw(b"\x00" * 50_000_000)
    assert len(bomb) < 100_000
    assert messages(frame(2, bomb, rsv=0x40), compress=True, max_msg_size=1 << 20)[1] == 1009


def test_invalid_deflate_data() -> None:
    assert messages(frame(2, b"\xff\xff\xff\xff", rsv=0x40), compress=True)[1] == 1007


def test_rsv1_on_continuation_is_refused() -> None:
    wire = frame(2, deflate_raw(b"ab"), fin=False, rsv=0x40) + frame(0, b"", rsv=0x40)
    assert messages(wire, compress=True)[1] == 1002


@pytest.mark.parametrize(
    "params",
    [
        DeflateParams(),
        DeflateParams(server_no_context_takeover=True),
        DeflateParams(server_max_window_bits=9),
        DeflateParams(server_max_window_bits=8),
    ],
)
def test_writer_reader_roundtrip_deflate(params: DeflateParams) -> None:
    writer = FrameWriter(deflate=params)
    client = FrameReader(server=False, compress=True)
    payloads = [b"", b"a", os.urandom(3000), b"repeat " * 3000, "ünïcode".encode() * 50]
    wire = b"".join(writer.message(2, p) for p in payloads)
    got = client.feed(wire)
    assert client.error is None
    assert [m.data for m in got] == payloads
    if params.server_max_window_bits == 8:
        assert not writer.compress  # zlib cannot honour an 8-bit window: sent uncompressed
        assert all(not (b & 0x40) for b in wire[:1])


def test_writer_frames() -> None:
    w = FrameWriter()
    assert w.message(1, b"hi") == b"\x81\x02hi"
    assert w.message(2, b"x" * 200)[:4] == b"\x82\x7e\x00\xc8"
    assert w.message(2, b"x" * 70000)[:10] == b"\x82\x7f" + (70000).to_bytes(8, "big")
    assert w.control(9, b"p") == b"\x89\x01p"
    assert w.close(1000, "ok") == b"\x88\x04\x03\xe8ok"
    assert w.close(None) == b"\x88\x00"
    with pytest.raises(ValueError, match="125"):
        w.control(9, b"x" * 126)
    with pytest.raises(ValueError, match="may not be sent"):
        w.close(1006)
    with pytest.raises(ValueError, match="123"):
        w.close(1000, "x" * 124)


def test_client_writer_masks() -> None:
    w = FrameWriter(server=False)
    wire = w.message(1, b"hello")
    assert wire[1] & 0x80
    assert [tuple(m) for m in FrameReader().feed(wire)] == [(TEXT, "hello", "")]


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 255, 256, 257, 1000, 65537])
def test_apply_mask(size: int) -> None:
    data = os.urandom(size)
    mask = os.urandom(4)
    expected = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    assert apply_mask(mask, data) == expected
    assert apply_mask(mask, expected) == data


# --- properties ------------------------------------------------------------------------

_message = st.one_of(
    st.tuples(st.just(1), st.text(max_size=300)),
    st.tuples(st.just(2), st.binary(max_size=300)),
    st.tuples(st.just(9), st.binary(max_size=125)),
)


def _encode(opcode: int, data: str | bytes, pieces: int) -> tuple[bytes, WSMessage]:
    raw = data.encode() if isinstance(data, str) else data
    msg = WSMessage(WSMsgType(opcode), data, "")
    if opcode == 9 or pieces <= 1:
        return frame(opcode, raw), msg
    # Fragment the message into `pieces` frames (possibly splitting UTF-8 sequences).
    size = max(1, len(raw) // pieces)
    chunks = [raw[i : i + size] for i in range(0, len(raw), size)] or [b""]
    out = b""
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        out += frame(opcode if i == 0 else 0, chunk, fin=last)
    return out, msg


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_message, st.integers(1, 4)), max_size=8),
    st.lists(st.integers(0, 10_000), max_size=10),
)
def test_random_frames_split_anywhere(
    items: list[tuple[tuple[int, str | bytes], int]], cuts: list[int]
) -> None:
    wire = b""
    expected = []
    for (opcode, data), pieces in items:
        chunk, msg = _encode(opcode, data, pieces)
        wire += chunk
        expected.append(msg)
    bounds = sorted({0, len(wire), *(c % (len(wire) + 1) for c in cuts)})
    reader = FrameReader()
    got: list[WSMessage] = []
    for a, b in itertools.pairwise(bounds):
        got.extend(reader.feed(wire[a:b]))
    assert reader.error is None
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 200))
def test_garbage_never_crashes(data: bytes, cut: int) -> None:
    reader = FrameReader(compress=True, max_msg_size=1000)
    for m in reader.feed(data[:cut]) + reader.feed(data[cut:]):
        assert isinstance(m, WSMessage)
    if reader.error is not None:
        assert reader.error.code in (1002, 1007, 1009)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(st.text(max_size=500), st.binary(max_size=500)), max_size=6),
    st.booleans(),
    st.lists(st.integers(0, 5_000), max_size=8),
)
def test_compressed_messages_split_anywhere(
    payloads: list[str | bytes], no_takeover: bool, cuts: list[int]
) -> None:
    params = DeflateParams(client_no_context_takeover=no_takeover)
    client = FrameWriter(deflate=params, server=False)
    wire = b"".join(
        client.message(1, p.encode()) if isinstance(p, str) else client.message(2, p)
        for p in payloads
    )
    bounds = sorted({0, len(wire), *(c % (len(wire) + 1) for c in cuts)})
    reader = FrameReader(compress=True)
    got: list[WSMessage] = []
    for a, b in itertools.pairwise(bounds):
        got.extend(reader.feed(wire[a:b]))
    assert reader.error is None
    assert [m.data for m in got] == payloads


@pytest.mark.parametrize("fragmented", [False, True])
def test_invalid_utf8_fails_before_a_long_frame_completes(fragmented: bool) -> None:
    reader = FrameReader()
    if fragmented:
        # The message's first fragment ends inside a 3-byte sequence; the next frame breaks it.
        reader.feed(frame(1, b"ok \xe2\x82", fin=False))
        wire = frame(0, b"\x28" + b"a" * 5000)
    else:
        wire = frame(1, b"valid start \xc0\xaf" + b"a" * 5000)
    reader.feed(wire[:100])  # the frame is far from complete
    assert reader.error is not None
    assert reader.error.code == 1007


def test_valid_text_split_inside_a_frame_and_a_sequence() -> None:
    text = "κόσμε €𝄞 " * 300
    wire = frame(1, text.encode()[:1001], fin=False) + frame(0, text.encode()[1001:])
    reader = FrameReader()
    got: list[WSMessage] = []
    for i in range(0, len(wire), 7):
        got.extend(reader.feed(wire[i : i + 7]))
    assert reader.error is None
    assert [m.data for m in got] == [text]


@pytest.mark.parametrize("length", range(131))
def test_every_short_length_unmasks_alone_and_in_a_batch(length: int) -> None:
    # Frames under 128 bytes are unmasked as integers, in the one-frame path of feed() and in
    # its loop; each length ends the repeated key at a different offset.
    payload = os.urandom(length)
    text = payload.hex()[:length]
    frames = [build_frame(2, payload, mask=True), build_frame(1, text.encode(), mask=True)]
    expected = [WSMessage(WSMsgType.BINARY, payload, ""), WSMessage(WSMsgType.TEXT, text, "")]
    alone = FrameReader()
    assert [m for f in frames for m in alone.feed(f)] == expected
    batch = FrameReader()
    assert batch.feed(b"".join(frames)) == expected
    assert alone.error is None
    assert batch.error is None

"""Sans-I/O multipart parser: table-driven, every split offset, byte by byte, hypothesis."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forkloop.core.multipart import (
    End,
    Event,
    MultipartError,
    MultipartLimits,
    MultipartParser,
    PartData,
    PartEnd,
    PartHeaders,
    parse_content_disposition,
    parse_header_params,
    validate_boundary,
)

B = "XyZ-boundary"

Part = tuple[tuple[tuple[str, str], ...], bytes]


def build(
    parts: list[Part], boundary: str = B, preamble: bytes = b"", epilogue: bytes = b""
) -> bytes:
    out = [preamble]
    for i, (headers, body) in enumerate(parts):
        out.append((b"\r\n" if (i or preamble) else b"") + b"--" + boundary.encode() + b"\r\n")
        for name, value in headers:
            out.append(f"{name}: {value}\r\n".encode())
        out.append(b"\r\n")
        out.append(body)
    out.append(b"\r\n--" + boundary.encode() + b"--")
    out.append(epilogue)
    return b"".join(out)


def collect(events: list[Event]) -> tuple[list[Part], bool]:
    """Fold events into parts (data joined) and whether End was seen; check event order."""
    parts: list[Part] = []
    cur: list[bytes] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    ended = False
    for ev in events:
        assert not ended, "event after End"
        if isinstance(ev, PartHeaders):
            assert cur is None
            headers, cur = ev.headers, []
        elif isinstance(ev, PartData):
            assert cur is not None
            assert ev.data
            cur.append(ev.data)
        elif isinstance(ev, PartEnd):
            assert cur is not None
            parts.append((headers, b"".join(cur)))
            cur = None
        else:
            assert isinstance(ev, End)
            assert cur is None
            ended = True
    return parts, ended


def parse_chunks(chunks: list[bytes], boundary: str = B, **limits: int) -> list[Part]:
    p = MultipartParser(boundary, MultipartLimits(**limits))
    events: list[Event] = []
    for c in chunks:
        events += p.feed(c)
    events += p.feed_eof()
    parts, ended = collect(events)
    assert ended
    assert p.done
    return parts


def feed_all(chunks: list[bytes]) -> None:
    p = MultipartParser(B)
    for c in chunks:
        p.feed(c)
    p.feed_eof()


def parse(body: bytes, boundary: str = B, **limits: int) -> list[Part]:
    return parse_chunks([body], boundary, **limits)


CD = "Content-Disposition"
TABLE: list[tuple[str, bytes, list[Part]]] = [
    (
        "simple",
        build([(((CD, 'form-data; name="a"'),), b"hello")]),
        [(((CD, 'form-data; name="a"'),), b"hello")],
    ),
    (
        "two parts, empty body, no headers",
        build([((), b""), (((CD, "form-data; name=b"),), b"x")]),
        [((), b""), (((CD, "form-data; name=b"),), b"x")],
    ),
    (
        "preamble and epilogue ignored",
        build([((), b"data")], preamble=b"this is a preamble", epilogue=b"\r\nsome epilogue --XyZ"),
        [((), b"data")],
    ),
    (
        "body containing CRLF, dashes and a near-boundary",
        build([((), b"a\r\n--XyZ-boundar\r\n-\r\r\n--\r\n")]),
        [((), b"a\r\n--XyZ-boundar\r\n-\r\r\n--\r\n")],
    ),
    (
        "transport padding after boundary",
        b"--XyZ-boundary  \t\r\n\r\nv\r\n--XyZ-boundary--\r\n",
        [((), b"v")],
    ),
    (
        "leading CRLF before the first boundary",
        b"\r\n--XyZ-boundary\r\nA: 1\r\n\r\nv\r\n--XyZ-boundary--",
        [((("A", "1"),), b"v")],
    ),
    (
        "header value whitespace trimmed, utf-8 kept",
        b'--XyZ-boundary\r\nContent-Disposition:   form-data; filename="\xc3\xa9t\xc3\xa9.txt"  '
        b"\r\n\r\nv\r\n--XyZ-boundary--",
        [(((CD, 'form-data; filename="été.txt"'),), b"v")],
    ),
    (
        "non-utf-8 header bytes decoded as latin-1",
        b"--XyZ-boundary\r\nX-Name: caf\xe9\r\n\r\n\r\n--XyZ-boundary--",
        [((("X-Name", "café"),), b"")],
    ),
    (
        "binary body with every byte value",
        build([((), bytes(range(256)) * 4)]),
        [((), bytes(range(256)) * 4)],
    ),
]


@pytest.mark.parametrize(("body", "expected"), [t[1:] for t in TABLE], ids=[t[0] for t in TABLE])
def test_table(body: bytes, expected: list[Part]) -> None:
    assert parse(body) == expected


@pytest.mark.parametrize(("body", "expected"), [t[1:] for t in TABLE], ids=[t[0] for t in TABLE])
def test_every_split_offset_and_byte_by_byte(body: bytes, expected: list[Part]) -> None:
    for cut in range(len(body) + 1):
        assert parse_chunks([body[:cut], body[cut:]]) == expected, cut
    for a in range(0, len(body), 7):
        for b in range(a, len(body), 11):
            assert parse_chunks([body[:a], body[a:b], body[b:]]) == expected, (a, b)
    assert parse_chunks([body[i : i + 1] for i in range(len(body))]) == expected


BAD: list[tuple[str, bytes, str]] = [
    ("empty body", b"", "truncated before the first boundary"),
    ("no boundary at all", b"just some text\r\n", "truncated before the first boundary"),
    ("truncated inside part", b"--XyZ-boundary\r\n\r\nabc", "truncated inside a part"),
    ("truncated in headers", b"--XyZ-boundary\r\nA: b\r\n", "truncated inside part headers"),
    ("truncated in boundary line", b"--XyZ-boundary", "inside a boundary line"),
    ("no closing boundary", b"--XyZ-boundary\r\n\r\nabc\r\n--XyZ-boundary\r\n", "truncated"),
    ("boundary followed by junk", b"--XyZ-boundaryQ\r\n\r\nv\r\n--XyZ-boundary--", "expected CRLF"),
    ("bare LF after boundary", b"--XyZ-boundary\n\r\nv\r\n--XyZ-boundary--", "expected CRLF"),
    ("header without colon", b"--XyZ-boundary\r\nnocolon\r\n\r\nv\r\n--XyZ-boundary--", "header"),
    ("obs-fold", b"--XyZ-boundary\r\nA: b\r\n c\r\n\r\nv\r\n--XyZ-boundary--", "header line"),
    ("bad header name", b"--XyZ-boundary\r\nA B: c\r\n\r\nv\r\n--XyZ-boundary--", "header line"),
    ("NUL in value", b"--XyZ-boundary\r\nA: b\x00c\r\n\r\nv\r\n--XyZ-boundary--", "invalid char"),
]


@pytest.mark.parametrize(("body", "message"), [t[1:] for t in BAD], ids=[t[0] for t in BAD])
def test_malformed_bodies_raise_400(body: bytes, message: str) -> None:
    for chunks in ([body], [body[i : i + 1] for i in range(len(body))]):
        with pytest.raises(MultipartError, match=message) as exc:
            feed_all(chunks)
        assert exc.value.status == 400


def test_too_many_part_headers() -> None:
    headers = tuple((f"X-H{i}", "v") for i in range(33))
    body = build([(headers, b"v")])
    with pytest.raises(MultipartError, match="too many multipart part headers"):
        parse(body)
    assert parse(build([(headers[:32], b"v")])) == [(headers[:32], b"v")]


def test_too_large_part_headers_without_terminator_stops_early() -> None:
    p = MultipartParser(B, MultipartLimits(max_part_header_bytes=1000))
    p.feed(b"--XyZ-boundary\r\nX: ")
    fed = 0
    with pytest.raises(MultipartError, match="exceed 1000 bytes"):  # noqa: PT012
        while fed < 2000:
            p.feed(b"a")
            fed += 1
    assert fed < 1010


def test_too_large_part_headers_in_one_chunk() -> None:
    body = build([((("X", "a" * 2000),), b"v")])
    with pytest.raises(MultipartError, match="exceed 1000 bytes"):
        parse(body, max_part_header_bytes=1000)
    assert parse(body, max_part_header_bytes=2003) == [((("X", "a" * 2000),), b"v")]


def test_preamble_limit() -> None:
    p = MultipartParser(B, MultipartLimits(max_preamble_bytes=100))
    p.feed(b"x" * 90)
    with pytest.raises(MultipartError, match="no multipart boundary"):
        p.feed(b"x" * 20)


def test_padding_limit() -> None:
    body = b"--XyZ-boundary" + b" " * 300 + b"\r\n\r\nv\r\n--XyZ-boundary--"
    with pytest.raises(MultipartError, match="padding"):
        parse(body)


@pytest.mark.parametrize(
    ("boundary", "ok"),
    [
        ("", False),
        ("a" * 70, True),
        ("a" * 71, False),
        ("----WebKitFormBoundary7MA4YWxkTrZu0gW", True),
        ("has space inside", True),
        ("ends with space ", False),
        ("semi;colon", False),
        ("crlf\r\n", False),
        (b"bytes-ok", True),
    ],
)
def test_validate_boundary(boundary: str | bytes, ok: bool) -> None:
    if ok:
        assert validate_boundary(boundary)
        MultipartParser(boundary)
    else:
        with pytest.raises(MultipartError) as exc:
            MultipartParser(boundary)
        assert exc.value.status == 400


def test_data_after_end_is_ignored_and_no_events() -> None:
    p = MultipartParser(B)
    events = p.feed(build([((), b"v")]))
    assert collect(events) == ([((), b"v")], True)
    assert p.feed(b"--XyZ-boundary\r\n\r\nmore") == []
    assert p.feed_eof() == []


def test_data_is_streamed_not_held_back() -> None:
    """Part data that cannot start a delimiter is handed out at once."""
    p = MultipartParser(B)
    p.feed(b"--XyZ-boundary\r\n\r\n")
    assert p.feed(b"abc") == [PartData(b"abc")]
    # A trailing CR could start the delimiter: held back, then released.
    assert p.feed(b"def\r") == [PartData(b"def")]
    assert p.feed(b"\nx") == [PartData(b"\r\nx")]
    assert p.feed(b"\r\n--XyZ-bo") == []
    assert p.feed(b"x") == [PartData(b"\r\n--XyZ-box")]


def test_big_chunk_is_passed_through_without_copy() -> None:
    p = MultipartParser(B)
    p.feed(b"--XyZ-boundary\r\n\r\n")
    chunk = os.urandom(1 << 16).replace(b"\r", b"r")
    (ev,) = p.feed(chunk)
    assert isinstance(ev, PartData)
    assert ev.data is chunk


def test_cost_does_not_depend_on_split() -> None:
    """What a feed carries over to the next one is bounded, so nothing is rescanned.

    Whatever the split, bytes already searched are kept only while they could still start a
    delimiter (fewer than its length), and a header block is searched from where the previous
    search stopped: the work per byte is constant. Checked structurally after every feed.
    """
    body = build(
        [
            ((("X-Long", "v" * 3000),), os.urandom(50_000)),
            ((), b"\r\n--XyZ-boundar" * 500),
        ]
    )
    for step in (1, 3, 7, 1000):
        p = MultipartParser(B)
        delim_len = len(b"\r\n--" + B.encode())
        for i in range(0, len(body), step):
            p.feed(body[i : i + step])
            assert len(p._buf) < max(delim_len, 2 + 256), (step, i)  # padding may wait too
            if p._hdr:
                assert p._hdr_scan >= len(p._hdr) - 3
        p.feed_eof()
        assert p.done


# -- property tests ----------------------------------------------------------------------------

header_names = st.from_regex(r"[A-Za-z][A-Za-z0-9\-]{0,15}", fullmatch=True)
header_values = st.from_regex(r"[!-~]([ -~]{0,30}[!-~])?", fullmatch=True)
bodies = st.one_of(
    st.binary(max_size=300),
    # Bodies built from delimiter-like fragments stress the partial-match logic.
    st.lists(
        st.sampled_from([b"\r", b"\n", b"-", b"--", b"\r\n--", b"XyZ", b"-boundar", b"a"]),
        max_size=40,
    ).map(b"".join),
)
parts_strategy = st.lists(
    st.tuples(st.lists(st.tuples(header_names, header_values), max_size=4).map(tuple), bodies),
    min_size=1,
    max_size=5,
)


def _valid(parts: list[Part]) -> bool:
    return all(b"\r\n--" + B.encode() not in (b"\r\n" + body + b"\r\n") for _, body in parts)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=parts_strategy, data=st.data())
def test_random_bodies_split_at_random_points(parts: list[Part], data: st.DataObject) -> None:
    if not _valid(parts):
        return
    body = build(parts, preamble=data.draw(st.sampled_from([b"", b"pre\r\n", b"--"])))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=12)))
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    assert parse_chunks(chunks) == parts


@settings(max_examples=200, deadline=None)
@given(garbage=st.binary(max_size=200), cut=st.integers(0, 200))
def test_garbage_never_hangs_and_only_raises_multipart_error(garbage: bytes, cut: int) -> None:
    try:
        feed_all([garbage[:cut], garbage[cut:]])
    except MultipartError as e:
        status = e.status
    else:
        status = 0
    assert status in (0, 400)


# -- header parameter helpers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('form-data; name="a"', ("form-data", {"name": "a"})),
        (
            'form-data; name="a"; filename="b c.txt"',
            ("form-data", {"name": "a", "filename": "b c.txt"}),
        ),
        ("form-data; name=a; filename=b.txt", ("form-data", {"name": "a", "filename": "b.txt"})),
        ('attachment; filename="a\\"q\\\\b"', ("attachment", {"filename": 'a"q\\b'})),
        (
            'form-data; name="x;y"; filename="semi;colon"',
            ("form-data", {"name": "x;y", "filename": "semi;colon"}),
        ),
        (
            "attachment; filename=\"euro.txt\"; filename*=UTF-8''%E2%82%AC%20rates.txt",
            ("attachment", {"filename": "€ rates.txt"}),
        ),
        (
            "attachment; filename*=iso-8859-1'en'%A3%20rates",
            ("attachment", {"filename": "£ rates"}),
        ),
        (
            "attachment; filename*0*=UTF-8''%E2%82%AC; filename*1=\" and more\"",
            ("attachment", {"filename": "€ and more"}),
        ),
        ('attachment; filename*0="abc"; filename*1="def"', ("attachment", {"filename": "abcdef"})),
        ('Form-Data; NAME="A"', ("form-data", {"name": "A"})),
        ("text/plain; charset=UTF-8", ("text/plain", {"charset": "UTF-8"})),
        ('multipart/form-data; boundary="a b"', ("multipart/form-data", {"boundary": "a b"})),
        ('form-data; filename="C:\\\\dir\\\\f.txt"', ("form-data", {"filename": "C:\\dir\\f.txt"})),
        ("form-data; filename*=utf-8''bad%ZZ", ("form-data", {"filename": "bad%ZZ"})),
        ("form-data; flag", ("form-data", {"flag": ""})),
    ],
)
def test_parse_header_params(value: str, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_header_params(value) == expected


def test_parse_content_disposition() -> None:
    assert parse_content_disposition(None) == (None, {})
    assert parse_content_disposition('"bad"; name=a') == (None, {})
    assert parse_content_disposition('form-data; name="f"') == ("form-data", {"name": "f"})

"""Hostile multipart header parameters (issue 15, defects 1 and 5): linear time, and a 400.

The parameter parser is a linear scanner; these inputs made the old regex backtrack for hours
(1 MB) or raise a ValueError that became a 500 (a 5,000-digit RFC 2231 index). No timed
assertions: the pytest timeout is the bound, a quadratic parser never reaches the assert.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mp_helpers import Serve, body_of, raw_request, status_of

from forkloop import web
from forkloop.core.multipart import (
    MultipartError,
    MultipartLimits,
    parse_content_disposition,
    parse_header_params,
)

MB = 1 << 20

# -- 1 MB pathological values ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # The shape: a long run of spaces inside an unquoted value.
        ("form-data; name=a" + " " * MB + "x", ("form-data", {"name": "a" + " " * MB + "x"})),
        ("form-data; name=" + " " * MB, ("form-data", {"name": ""})),
        ("form-data;" + " " * MB + "name=a", ("form-data", {"name": "a"})),
        ("form-data; name" + " " * MB + "=a", ("form-data", {"name": "a"})),
        ("form-data; name" + " " * MB + "junk", ("form-data", {})),
        ("form-data; name" + "\t" * MB, ("form-data", {"name": ""})),
        # Quoted strings: escapes, no closing quote is covered below.
        ('form-data; name="' + '\\"' * (MB // 2) + '"', ("form-data", {"name": '"' * (MB // 2)})),
        ('form-data; name="' + "a" * MB + '"', ("form-data", {"name": "a" * MB})),
        # Names: stars and digits that look like continuations.
        # (a trailing "*" marks an RFC 2231 extended value and leaves the name)
        ("form-data; " + "a*" * (MB // 2) + "=v", ("form-data", {"a*" * (MB // 2 - 1) + "a": "v"})),
        ("form-data; name*0" + "*" * MB + "=v", ("form-data", {"name*0" + "*" * (MB - 1): "v"})),
        ("form-data; name*=utf-8''" + "%41" * (MB // 3), ("form-data", {"name": "A" * (MB // 3)})),
        ("form-data; name=" + "=" * MB, ("form-data", {"name": "=" * MB})),
        ("form-data" + " " * MB, ("form-data", {})),
    ],
    ids=lambda v: repr(v)[:24] if isinstance(v, str) else None,
)
def test_one_megabyte_values_parse(value: str, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_header_params(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "form-data" + ";" * MB,
        "form-data" + "; a" * (MB // 3),
        'form-data; name="' + "\\" * MB,
        'form-data; name="' + " " * MB,
        "form-data; name*" + "9" * MB + "=x",
        "form-data; " + "a*1" * (MB // 3) + "=v",  # "a*1a*1...a" piece 1 without a piece 0
        "form-data; " + "".join(f"n*{i}=v;" for i in range(10_000)) + " " * MB,
    ],
    ids=["semicolons", "flags", "backslashes", "unterminated", "index", "gap", "continuations"],
)
def test_one_megabyte_malformed_values_raise_400(value: str) -> None:
    with pytest.raises(MultipartError) as exc:
        parse_header_params(value)
    assert exc.value.status == 400


# -- RFC 2231 indices and continuations (defect 5) ---------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "form-data; name*" + "1" * 5000 + "=x",  # int() itself refuses > 4300 digits
        "form-data; name*" + "1" * 5000 + "*=utf-8''x",
        "form-data; name*64=x",
        "form-data; name*0=a; name*0=b",
        "form-data; name*0=a; name*2=c",
        "form-data; name*1=b",
        "form-data; name*00=a",
        'form-data; name="unterminated',
        'form-data; name="a\\',
    ],
)
def test_malformed_parameters_raise_400(value: str) -> None:
    with pytest.raises(MultipartError) as exc:
        parse_content_disposition(value)
    assert exc.value.status == 400


def test_continuation_bound_comes_from_the_limits() -> None:
    limits = MultipartLimits(max_param_continuations=3)
    value = "form-data; name*0=a; name*1=b; name*2=c"
    assert parse_header_params(value, limits) == ("form-data", {"name": "abc"})
    with pytest.raises(MultipartError):
        parse_header_params(value + "; name*3=d", limits)
    assert parse_header_params(value + "; name*3=d") == ("form-data", {"name": "abcd"})


# -- the same over a real socket: always a 400, never a 500 ------------------------------------


async def names(request: web.Request) -> web.Response:
    reader = await request.multipart()
    out = []
    async for part in reader:
        out.append(f"{part.name}={bytes(await part.read()).decode()}")
    return web.Response(text=",".join(out))


def form_request(disposition: str, ctype: str = "multipart/form-data; boundary=B") -> bytes:
    body = f"--B\r\nContent-Disposition: {disposition}\r\n\r\nv\r\n--B--\r\n".encode()
    head = (
        f"POST /f HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head + body


@pytest.fixture
async def base(serve: Serve) -> str:
    app = web.Application()
    app.router.add_post("/f", names)
    return await serve(app)


@pytest.mark.parametrize(
    ("disposition", "ctype", "status", "body"),
    [
        ("form-data; name=a" + " " * 16000 + "x", None, 200, b"a" + b" " * 16000 + b"x=v"),
        ("form-data; name*" + "7" * 5000 + "=x", None, 400, None),
        ("form-data; name*0=a; name*0=b", None, 400, None),
        ('form-data; name="open', None, 400, None),
        ("form-data; name=a", 'multipart/form-data; boundary="B', 400, None),
        ("form-data; name=a", "multipart/form-data; boundary*99=B", 400, None),
        ("form-data; name*0*=utf-8''%E2%82%AC; name*1=%", None, 200, "€%=v".encode()),
    ],
)
async def test_server_answers_hostile_part_headers(
    base: str, disposition: str, ctype: str | None, status: int, body: bytes | None
) -> None:
    args = (disposition,) if ctype is None else (disposition, ctype)
    response = await raw_request(base, form_request(*args), wait_s=30)
    assert status_of(response) == status, response[:300]
    if body is not None:
        assert body_of(response) == body


# -- property: the parser against a reference decomposition ------------------------------------

TOKEN_CHARS = "!#$%&'+-.^_`|~" + "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
tokens = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=12)
# Parameter names: tokens without "*" (extended names are drawn on purpose below).
names_st = st.text(alphabet=TOKEN_CHARS.replace("*", ""), min_size=1, max_size=10)
qtext = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\x7f"),
    max_size=20,
)
ows = st.sampled_from(["", " ", "  ", "\t", " \t "])


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def header_values(draw: st.DrawFn) -> tuple[str, tuple[str, dict[str, str]]]:
    """A header value built from parts, and what it must parse into."""
    main = draw(st.sampled_from(["form-data", "attachment", "text/plain", "multipart/mixed"]))
    pnames = draw(st.lists(names_st, max_size=8, unique_by=str.lower))
    expected: dict[str, str] = {}
    out = [main]
    for name in pnames:
        kind = draw(st.sampled_from(["token", "quoted", "ext", "cont", "flag"]))
        sep = draw(ows) + ";" + draw(ows)
        if kind == "token":
            value = draw(tokens)
            out.append(f"{sep}{name}{draw(ows)}={draw(ows)}{value}")
        elif kind == "quoted":
            value = draw(qtext)
            out.append(f"{sep}{name}={quote(value)}")
        elif kind == "ext":
            value = draw(st.text(max_size=10))
            encoded = "".join(f"%{b:02X}" for b in value.encode())
            out.append(f"{sep}{name}*=UTF-8''{encoded}")
        elif kind == "cont":
            pieces = draw(st.lists(qtext, min_size=1, max_size=5))
            value = "".join(pieces)
            order = draw(st.permutations(range(len(pieces))))
            out.extend(f"{sep}{name}*{i}={quote(pieces[i])}" for i in order)
        else:
            value = ""
            out.append(f"{sep}{name}")
        expected[name.lower()] = value
    if draw(st.booleans()):
        out.append(draw(ows) + ";")
    return "".join(out), (main, expected)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=header_values())
def test_parser_matches_reference_decomposition(
    case: tuple[str, tuple[str, dict[str, str]]],
) -> None:
    value, expected = case
    assert parse_header_params(value) == expected


@settings(max_examples=200, deadline=None)
@given(case=header_values(), cut=st.integers(0, 200))
def test_truncated_values_parse_or_raise_400(
    case: tuple[str, tuple[str, dict[str, str]]], cut: int
) -> None:
    value = case[0][:cut]
    try:
        parse_header_params(value)
    except MultipartError as exc:
        status = exc.status
    else:
        status = 0
    assert status in (0, 400)

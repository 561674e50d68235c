"""Header values a handler reads, parsed in linear time (issue 15, the regex audit): Cookie,
Content-Type, Range, Forwarded, Host, the path helpers. Each gets a 1 MB hostile value; no timed
assertions (the pytest timeout bounds them: the quadratic parsers they replace needed hours).
"""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forkloop import web
from forkloop.core.http.headers import parse_content_type, parse_cookie_headers
from forkloop.core.http.parser import _HOST
from forkloop.core.web.middlewares import _MULTI_SLASH_RE
from forkloop.test_utils import make_mocked_request

MB = 1 << 20


def request_with(name: str, value: str) -> web.Request:
    return make_mocked_request("POST", "/", headers={name: value})


# -- Cookie -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # SimpleCookie's unquoting was quadratic in these (CVE-2024-7592 on Python < 3.11.10).
        ('a="' + "\\\\" * (MB // 2) + '"', {"a": "\\" * (MB // 2)}),
        ('a="' + "\\012" * (MB // 4) + '"', {"a": "\n" * (MB // 4)}),
        ("a=b; " * (MB // 5), {"a": "b"}),
        ("a" * MB + "=1", {"a" * MB: "1"}),
        ("a=" + "=" * MB, {"a": "=" * MB}),
        (";" * MB + "k=v", {"k": "v"}),
        (" " * MB + "k=v", {"k": "v"}),
    ],
    ids=["backslashes", "octal", "pairs", "long-name", "equals", "semicolons", "spaces"],
)
def test_one_megabyte_cookie_headers(value: str, expected: dict[str, str]) -> None:
    assert dict(request_with("Cookie", value).cookies) == expected


def test_cookie_rules() -> None:
    headers = ['a=1; b="two words"; c=x=y', 'a=override; bad name=1; novalue; ="x"; path=/']
    assert parse_cookie_headers(headers) == {
        "a": "override",
        "b": "two words",
        "c": "x=y",
        "path": "/",  # RFC 6265 section 5.4: a Cookie header has no attributes
    }
    assert parse_cookie_headers(['q="a\\"b\\\\c\\101"']) == {"q": 'a"b\\cA'}


cookie_octets = st.text(
    alphabet=st.sampled_from(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'()*+-./:<=>?@[]^_`{|}~"
    ),
    max_size=20,
)
cookie_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(cookie_names, cookie_octets), max_size=6))
def test_cookies_agree_with_simplecookie_on_rfc6265_headers(pairs: list[tuple[str, str]]) -> None:
    reserved = {"expires", "path", "comment", "domain", "max-age", "secure", "httponly"}
    pairs = [(k, v) for k, v in pairs if k not in reserved | {"version", "samesite", "partitioned"}]
    header = "; ".join(f"{k}={v}" for k, v in pairs)
    ours = parse_cookie_headers([header])
    theirs = SimpleCookie()
    theirs.load(header)
    assert ours == {k: m.value for k, m in theirs.items()}


# -- Content-Type -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text/plain" + ";" * MB, ("text/plain", {})),
        ("text/plain" + "; a=b" * (MB // 5), ("text/plain", {"a": "b"})),
        ('text/plain; a="' + "\\;" * (MB // 2) + '"', ("text/plain", {"a": "\\;" * (MB // 2)})),
        ('text/plain; a="' + ";" * MB, ("text/plain", {"a": '"' + ";" * MB})),
        ("text/plain" + " " * MB + "; charset=utf-8", ("text/plain", {"charset": "utf-8"})),
    ],
    ids=["semicolons", "params", "escapes", "unterminated", "spaces"],
)
def test_one_megabyte_content_types(value: str, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_content_type(value) == expected
    request = request_with("Content-Type", value)
    assert (request.content_type, request.charset) == (expected[0], expected[1].get("charset"))


def test_content_type_rules() -> None:
    assert parse_content_type('Text/HTML; Charset="utf-8"; q="a;b"; x; =y; q2="\\"x\\""') == (
        "text/html",
        {"charset": "utf-8", "q": "a;b", "q2": '"x"'},
    )


# -- Range, Forwarded, Host, paths ------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["bytes=" + "1" * MB, "bytes=1-" + "1" * MB + "x", "bytes=" + "-" * MB, " " * MB + "bytes="],
)
def test_one_megabyte_ranges_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="range"):
        _ = request_with("Range", value).http_range


@pytest.mark.parametrize(
    "value",
    [
        "for=" + '"' + "\\x" * (MB // 2) + '"',
        "for=a;" * (MB // 6),
        "," * MB,
        '"' * MB,
        "for=" + "a" * MB,
    ],
    ids=["escapes", "pairs", "commas", "quotes", "long"],
)
def test_one_megabyte_forwarded_headers(value: str) -> None:
    forwarded = request_with("Forwarded", value).forwarded
    assert isinstance(forwarded, tuple)


@pytest.mark.parametrize(
    "value",
    [b"a" * MB + b"/", b"[" + b":" * MB, b"a" * MB + b":" + b"1" * MB + b"x", b":" * MB],
)
def test_one_megabyte_host_values(value: bytes) -> None:
    # The parser bounds a header line at 8190 bytes first; the pattern is linear anyway.
    assert _HOST.fullmatch(value) is None


def test_one_megabyte_paths_through_the_slash_pattern() -> None:
    assert _MULTI_SLASH_RE.sub("/", "/" * MB + "a" + "/a" * MB) == "/a" + "/a" * MB


# -- Host masks of add_domain ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mask", "host", "expected"),
    [
        ("*.*.*.example.com", "a." * (MB // 2) + "x", False),  # the regex: hours
        ("*.*.*.example.com", "a." * (MB // 2) + "example.com", True),
        ("*.example.com", "." * MB + "example.org", False),
    ],
    ids=["no-suffix", "match", "dots"],
)
def test_one_megabyte_hosts_against_domain_masks(mask: str, host: str, expected: bool) -> None:
    from forkloop.core.web.urldispatcher import MaskDomain

    assert MaskDomain(mask).match_domain(host) is expected


mask_pieces = st.lists(st.sampled_from(["a", "b", ".", "ab", "*"]), max_size=7).map("".join)
hosts = st.text(alphabet="ab.", max_size=14)


@settings(max_examples=400, deadline=None)
@given(mask=mask_pieces, host=hosts)
def test_wildcard_matching_agrees_with_the_regex_it_replaces(mask: str, host: str) -> None:
    import re

    from forkloop.core.http.headers import match_wildcard

    regex = re.compile(re.escape(mask).replace(r"\*", ".*"))
    assert match_wildcard(mask, host) == (regex.fullmatch(host) is not None)


# -- routes with several variables in one segment ----------------------------------------------


@pytest.mark.parametrize(
    ("route", "path", "expected"),
    [
        ("/{a}.{b}.{c}", "/" + "." * MB + "/", None),  # the regex: about 10^17 steps
        (
            "/{a}.{b}.{c}",
            "/" + "x." * (MB // 2) + "y",
            {"a": "x." * (MB // 2 - 2) + "x", "b": "x", "c": "y"},
        ),
        ("/f/{y}-{m}-{d}", "/f/" + "-" * MB + "/", None),
        ("/{a}{b}/z", "/" + "q" * MB + "/y", None),
    ],
    ids=["dots", "match", "dashes", "adjacent"],
)
def test_one_megabyte_paths_against_shared_segment_routes(
    route: str, path: str, expected: dict[str, str] | None
) -> None:
    from forkloop.core.web.urldispatcher import DynamicResource

    found = DynamicResource(route)._match(path)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert {k: found[k] for k in expected} == expected


route_parts = st.lists(
    st.one_of(st.sampled_from([".", "-", "/", "a", "", ".a", "/x/"]), st.just(None)),
    min_size=2,
    max_size=7,
)
paths = st.text(alphabet="a.-/x{", max_size=16)


@settings(max_examples=500, deadline=None)
@given(parts=route_parts, path=paths)
def test_linear_route_matching_agrees_with_the_regex(parts: list[str | None], path: str) -> None:
    import re

    from forkloop.core.web.pathmatch import match_default_vars

    literals = [""]
    names: list[str] = []
    for part in parts:
        if part is None:
            names.append(f"v{len(names)}")
            literals.append("")
        else:
            literals[-1] += part
    regex = "".join(
        re.escape(lit) + (f"(?P<{names[i]}>[^{{}}/]+)" if i < len(names) else "")
        for i, lit in enumerate(literals)
    )
    match = re.fullmatch(regex, "/" + path)
    literals[0] = "/" + literals[0]
    regex = "".join(
        re.escape(lit) + (f"(?P<{names[i]}>[^{{}}/]+)" if i < len(names) else "")
        for i, lit in enumerate(literals)
    )
    match = re.fullmatch(regex, "/" + path)
    expected = None if match is None else match.groupdict()
    assert match_default_vars(literals, names, "/" + path) == expected

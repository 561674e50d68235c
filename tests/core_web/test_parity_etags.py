"""``If-Match``/``If-None-Match`` lists read as aiohttp reads them (issue 16, group 4): over
real sockets against aiohttp's server, table-driven, and property-based against aiohttp's
``make_mocked_request`` as the oracle."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import test_utils as aio_test_utils
from hypothesis import given, settings
from hypothesis import strategies as st
from rawhttp import request_bytes

from forkloop.core.web.helpers import parse_etags

VALUES = [
    "*",
    '"a"',
    'W/"a"',
    'w/"a"',
    '"a", "b"',
    '"a","b"',
    '"a" , W/"b" ,"c"',
    '"a", *',
    '*, "a"',
    '"a",',
    '"a",,"b"',
    '"a" "b"',
    '""',
    '"a b"',
    '"ä"',
    "a",
    '"a"b',
    '"a", "b',
    '"a",\t"b"',
    '"a", W/"b", "c", *',
    ',"a"',
    '"!#~"',
]


def tags(value: Any) -> Any:
    return None if value is None else [[t.value, t.is_weak] for t in value]


async def probe(request: Any) -> Any:
    from aiohttp import web

    body = json.dumps([tags(request.if_match), tags(request.if_none_match)])
    if type(request).__module__.startswith("aiohttp"):
        return web.Response(text=body)
    from forkloop.core.web.response import Response

    return Response(text=body)


@pytest.mark.parametrize("value", VALUES)
async def test_etag_lists_read_like_aiohttp(both: Any, value: str) -> None:
    data = request_bytes("/", headers={"If-Match": value, "If-None-Match": value})
    ours, theirs = await both(probe, data)
    assert theirs.status == 200
    assert json.loads(ours.body) == json.loads(theirs.body)


def aiohttp_reads(value: str) -> Any:
    request = aio_test_utils.make_mocked_request("GET", "/", headers={"If-Match": value})
    return tags(request.if_match)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(['"', "W/", "w/", ",", " ", "\t", "a", "Z", "*", "!", "ä", "€", '"x"']),
        max_size=12,
    ).map("".join)
)
def test_parse_etags_agrees_with_aiohttp(value: str) -> None:
    assert tags(parse_etags(value)) == aiohttp_reads(value)


def test_hostile_list_is_read_in_one_pass() -> None:
    # 1 MB of tags: one scan (a backtracking or quadratic reader would time the test out).
    value = '"abcdefgh", ' * ((1 << 20) // 12)
    assert len(parse_etags(value) or ()) == (1 << 20) // 12
    assert parse_etags('"a", ' * 100_000 + "garbage") == tuple(parse_etags('"a", ' * 100_000))

"""jsontext.dumps is json.dumps: its flat-object branch and its fallback give the same text and
the same errors; the flat-object writer's C twin (``_flatjson.c``) gives what its definition
(``_flatjson.py``) gives; Response refuses positional arguments as aiohttp does (its keyword
guard)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import twins
from aiohttp import web as aioweb
from hypothesis import given
from hypothesis import strategies as st

import forkloop.core.web
import forkloop.core.web._flatjson as shipped
from forkloop.core.web import jsontext
from forkloop.core.web.response import Response, json_response

definition = twins.definition(forkloop.core.web, "_flatjson")

_SCALARS = st.one_of(st.text(), st.integers(), st.booleans(), st.none(), st.floats(allow_nan=True))
_FLAT = st.dictionaries(st.text(), st.one_of(st.text(), st.integers(), st.booleans(), st.none()))
_KEYS = st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.none())
_ANY_DICT = st.dictionaries(
    _KEYS, st.one_of(_SCALARS, st.lists(_SCALARS, max_size=3), _FLAT), max_size=5
)


class _Str(str):
    pass


class _Int(int):
    def __repr__(self) -> str:
        return "not-json"


class _Dict(dict[str, Any]):
    def items(self) -> Any:
        return [("swapped", 1)]


@given(_FLAT)
def test_flat_objects_are_json_dumps(value: dict[str, Any]) -> None:
    assert shipped.flat_object(value) is not None  # the branch under test is taken
    assert jsontext.dumps(value) == json.dumps(value)
    assert definition.flat_object(value) == json.dumps(value)


# Any code point (lone surrogates included), so that every escape json writes is exercised.
_ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
_ANY_FLAT = st.dictionaries(
    _ANY_TEXT,
    st.one_of(_ANY_TEXT, st.integers(), st.booleans(), st.none()),
    max_size=40,  # past the C twin's 16 members kept on its stack
)


@given(st.one_of(_ANY_FLAT, _ANY_DICT, _SCALARS))
def test_the_c_twin_gives_what_the_definition_gives(value: Any) -> None:
    expected = definition.flat_object(value)
    assert shipped.flat_object(value) == expected
    if expected is not None:
        assert expected == json.dumps(value)


@pytest.mark.parametrize("members", [0, 1, 15, 16, 17, 200])
def test_objects_of_any_size(members: int) -> None:
    value = {f"k{index}": index if index % 2 else f"v\n{index}" for index in range(members)}
    assert shipped.flat_object(value) == json.dumps(value)
    assert definition.flat_object(value) == json.dumps(value)


@given(_ANY_DICT)
def test_any_dict_is_json_dumps(value: dict[Any, Any]) -> None:
    assert jsontext.dumps(value) == json.dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"message": "Hello, World!"},
        {"é": '\u2028\x00"\\', "n": -(10**30), "t": True, "f": False, "z": None},
        {"\ud800": "\udfff\x7f\x1f", "~ !": " "},
        {"del": "a\x7fb", "us": "\x1f", "quote": 'say "hi"', "back\\slash": "/"},
        {"nested": {"a": 1}},
        {"list": [1, 2]},
        {"x": 1.5},
        {"nan": float("nan"), "inf": float("-inf")},
        {1: "int key", None: "none key", False: "bool key", 2.5: "float key"},
        {"s": _Str("sub")},
        {"i": _Int(3)},
        {_Str("k"): "v"},
        _Dict(a=1),
        "a string",
        [1, "two", None],
        None,
        12,
    ],
    ids=repr,
)
def test_each_branch_gives_json_dumps_text(value: Any) -> None:
    assert jsontext.dumps(value) == json.dumps(value)
    assert json_response(value).text == json.dumps(value)


def test_only_exact_flat_objects_take_the_flat_branch() -> None:
    assert jsontext._flat_object({"a": "b", "c": 1, "d": None, "e": True}) == (
        '{"a": "b", "c": 1, "d": null, "e": true}'
    )
    for other in ({"s": _Str("x")}, {"i": _Int(1)}, {1: "x"}, {"f": 1.0}, {"l": []}):
        assert shipped.flat_object(other) is None
        assert definition.flat_object(other) is None
    for not_a_dict in (_Dict(a=1), [("a", 1)], "{}", None):
        assert shipped.flat_object(not_a_dict) is None
        assert definition.flat_object(not_a_dict) is None


def test_errors_are_json_dumps_errors() -> None:
    too_long = {"n": 10**5000}  # past int's digit limit: json.dumps raises ValueError
    for bad in (too_long, {"x": object()}, {(1, 2): 3}):
        with pytest.raises((ValueError, TypeError)) as expected:
            json.dumps(bad)
        with pytest.raises(expected.type):
            jsontext.dumps(bad)
    for flat in (shipped.flat_object, definition.flat_object):
        with pytest.raises(ValueError, match="digits"):
            flat(too_long)
        # Member by member, as the definition: the limit before a member that is not flat
        # raises, after one it is never reached.
        with pytest.raises(ValueError, match="digits"):
            flat({"n": 10**5000, "f": 1.5})
        assert flat({"f": 1.5, "n": 10**5000}) is None


@pytest.mark.parametrize("factory", [aioweb.Response, Response], ids=["aiohttp", "forkloop"])
def test_response_takes_keyword_arguments_only(factory: Any) -> None:
    with pytest.raises(TypeError):
        factory("text")
    with pytest.raises(TypeError):
        factory(b"body", 200)
    with pytest.raises(TypeError):
        factory(_no_positional="x")
    assert factory(text="fine", status=201).status == 201


def test_escaped_keys_are_remembered_within_bounds() -> None:
    # A key's escape is looked up once it is known; the table stops growing at its bound and
    # never holds long keys, whatever clients or handlers send as keys.
    # (The definition's table; the C twin writes a plain key as it is and escapes the others.)
    flat = definition.flat_object
    for value in ({"k\u00e9y": 1}, {"k\u00e9y": 2}, {"k\u00e9y": "\u2028"}):
        assert flat(value) == json.dumps(value)
    assert definition._KEYS["k\u00e9y"] == '"k\\u00e9y"'
    long_key = "x" * (definition._MAX_KEY_CHARS + 1)
    assert flat({long_key: 1}) == json.dumps({long_key: 1})
    assert long_key not in definition._KEYS
    for index in range(definition._MAX_KEYS + 10):
        key = f"key-{index}"
        assert flat({key: index}) == json.dumps({key: index})
    assert len(definition._KEYS) <= definition._MAX_KEYS

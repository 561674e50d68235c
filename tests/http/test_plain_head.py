"""``_plainhead.message``, the last step of the plain response renderer: its C twin gives what
its definition gives (bytes, or the same exception type), table-driven and by hypothesis, and
``serialize.plain_message`` still renders a plain response byte for byte as before."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import twins
from hypothesis import given
from hypothesis import strategies as st

import forkloop.core.http
import forkloop.core.http._plainhead as shipped
from forkloop.core.http import serialize

definition = twins.definition(forkloop.core.http, "_plainhead")

STATUS = b"HTTP/1.1 200 OK\r\n"
CTYPE = b"Content-Type: text/plain; charset=utf-8\r\n"
TAIL = b"Date: Fri, 04 Dec 2026 10:00:00 GMT\r\nServer: forkloop\r\n\r\n"


def _outcome(function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except Exception as exc:  # the exception's type is part of the contract
        return type(exc)


def _expected(status: bytes, ctype: bytes, length: int, tail: bytes, body: bytes) -> bytes:
    return status + ctype + b"Content-Length: " + str(length).encode() + b"\r\n" + tail + body


class _Bytes(bytes):
    pass


class _Int(int):
    pass


@pytest.mark.parametrize(
    "length", [0, 1, 9, 10, 99, 4095, 4096, 10**6, 10**12, sys.maxsize], ids=repr
)
def test_every_length_is_written_in_decimal(length: int) -> None:
    for message in (shipped.message, definition.message):
        assert message(STATUS, CTYPE, length, TAIL, b"body") == _expected(
            STATUS, CTYPE, length, TAIL, b"body"
        )


@pytest.mark.parametrize(
    "args",
    [
        (STATUS, b"", 0, TAIL, b""),  # no Content-Type line, no body
        (b"", b"", 0, b"", b""),
        (STATUS, CTYPE, 13, TAIL, b"Hello, World!"),
        (_Bytes(STATUS), CTYPE, _Int(3), TAIL, _Bytes(b"abc")),  # subclasses: their values
        (STATUS, CTYPE, True, TAIL, b"x"),  # an int, as %d writes it
        (STATUS, CTYPE, 5, TAIL, b"\x00\r\n\xff" * 1000),  # copied as it is, not inspected
    ],
    ids=range(6),
)
def test_the_pieces_are_joined_in_order(args: tuple[Any, ...]) -> None:
    expected = _expected(args[0], args[1], int(args[2]), args[3], args[4])
    assert definition.message(*args) == expected
    assert shipped.message(*args) == expected
    assert type(shipped.message(*args)) is bytes


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((STATUS, CTYPE, -1, TAIL, b""), ValueError),
        ((STATUS, CTYPE, -(2**70), TAIL, b""), ValueError),
        ((STATUS, CTYPE, 2**70, TAIL, b""), OverflowError),
        ((STATUS, CTYPE, sys.maxsize + 1, TAIL, b""), OverflowError),
        ((STATUS, CTYPE, 1.0, TAIL, b""), TypeError),
        ((STATUS, CTYPE, "1", TAIL, b""), TypeError),
        ((STATUS, CTYPE, None, TAIL, b""), TypeError),
        ((bytearray(STATUS), CTYPE, 0, TAIL, b""), TypeError),
        ((STATUS, "ctype", 0, TAIL, b""), TypeError),
        ((STATUS, CTYPE, 0, memoryview(TAIL), b""), TypeError),
        ((STATUS, CTYPE, 0, TAIL, None), TypeError),
        ((STATUS, CTYPE, 0, TAIL), TypeError),  # too few
        ((STATUS, CTYPE, 0, TAIL, b"", b""), TypeError),  # too many
    ],
    ids=range(13),
)
def test_anything_else_is_refused_alike(args: tuple[Any, ...], error: type) -> None:
    assert _outcome(definition.message, *args) is error
    assert _outcome(shipped.message, *args) is error


_PIECE = st.binary(max_size=300)
_LENGTH = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80), st.sampled_from([0, sys.maxsize])
)


@given(_PIECE, _PIECE, _LENGTH, _PIECE, _PIECE)
def test_the_c_twin_gives_what_the_definition_gives(
    status: bytes, ctype: bytes, length: int, tail: bytes, body: bytes
) -> None:
    expected = _outcome(definition.message, status, ctype, length, tail, body)
    assert _outcome(shipped.message, status, ctype, length, tail, body) == expected
    if 0 <= length <= sys.maxsize:
        assert expected == _expected(status, ctype, length, tail, body)


@pytest.mark.parametrize("status", [200, 201, 404, 418, 500, 599])
@pytest.mark.parametrize("length", [0, 13, 4096, 123456789])
def test_plain_message_renders_as_before(status: int, length: int) -> None:
    body = b"x" * min(length, 64)
    line = serialize.status_line((1, 1), status)
    assert serialize.plain_message(status, CTYPE, length, TAIL, body) == _expected(
        line, CTYPE, length, TAIL, body
    )

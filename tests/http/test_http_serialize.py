"""Sans-I/O response framing (forkloop.core.http.serialize): status lines, heads, chunks, the
cached Date value and protocol-error replies."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forkloop.core.http.errors import (
    BadRequest,
    ExpectationFailed,
    HeadersTooLarge,
    HttpError,
    PayloadTooLarge,
    RequestLineTooLong,
)
from forkloop.core.http.serialize import (
    DateCache,
    chunk,
    error_response,
    reason_phrase,
    response_head,
    status_line,
)


def test_status_lines() -> None:
    assert status_line((1, 1), 200) == b"HTTP/1.1 200 OK\r\n"
    assert status_line((1, 0), 404) == b"HTTP/1.0 404 Not Found\r\n"
    assert status_line((1, 1), 201, "Made") == b"HTTP/1.1 201 Made\r\n"
    assert status_line((1, 1), 599) == b"HTTP/1.1 599 \r\n"
    assert reason_phrase(204) == "No Content"
    with pytest.raises(ValueError):  # noqa: PT011
        status_line((1, 1), 200, "OK\r\nX-Injected: 1")


def test_response_head() -> None:
    head = response_head(status_line((1, 1), 200), [("A", "1"), ("B", "two words")])
    assert head == b"HTTP/1.1 200 OK\r\nA: 1\r\nB: two words\r\n\r\n"
    assert response_head(b"HTTP/1.1 204 No Content\r\n", []) == b"HTTP/1.1 204 No Content\r\n\r\n"


@pytest.mark.parametrize(
    ("name", "value"),
    [("X", "a\r\nInjected: yes"), ("X", "a\nb"), ("X", "a\rb"), ("X\r\nY", "v")],
)
def test_response_head_refuses_injection(name: str, value: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        response_head(status_line((1, 1), 200), [(name, value)])


@pytest.mark.parametrize(("name", "value"), [("X", "a\x00b"), ("X\x00Y", "v")])
def test_response_head_refuses_nul(name: str, value: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        response_head(status_line((1, 1), 200), [(name, value)])


# Text with the forbidden characters among ordinary ones, so both outcomes are drawn often.
_HEADER_TEXT = st.text(alphabet=st.sampled_from("ab :\t\r\n\x00\u00e9"), max_size=8)


@given(st.lists(st.tuples(_HEADER_TEXT, _HEADER_TEXT), max_size=5))
def test_response_head_refuses_exactly_the_injections(headers: list[tuple[str, str]]) -> None:
    """The whole-head count refuses a head iff some name or value holds CR, LF or NUL; an
    accepted head is the lines as given."""
    bad = any(c in text for pair in headers for text in pair for c in "\r\n\x00")
    if bad:
        with pytest.raises(ValueError, match="newline or NUL"):
            response_head(status_line((1, 1), 200), headers)
        return
    head = response_head(status_line((1, 1), 200), iter(headers))  # any iterable, once
    expected = "".join(f"{n}: {v}\r\n" for n, v in headers)
    assert head == b"HTTP/1.1 200 OK\r\n" + expected.encode() + b"\r\n"


def test_chunk_framing() -> None:
    assert chunk(b"hello") == b"5\r\nhello\r\n"
    assert chunk(b"x" * 255) == b"ff\r\n" + b"x" * 255 + b"\r\n"


def test_date_cache_formats_once_per_second() -> None:
    cache = DateCache()
    first = cache.value(1_700_000_000.1)
    assert first == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert cache.value(1_700_000_000.9) is first  # same second: the cached string
    later = cache.value(1_700_000_001.0)
    assert later == "Tue, 14 Nov 2023 22:13:21 GMT"
    assert parsedate_to_datetime(later).timestamp() == 1_700_000_001


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BadRequest("bad framing"), 400),
        (RequestLineTooLong(), 414),
        (HeadersTooLarge(), 431),
        (PayloadTooLarge(), 413),
        (ExpectationFailed(), 417),
    ],
)
def test_error_response_is_complete_and_closes(error: HttpError, status: int) -> None:
    data = error_response(error, "Tue, 14 Nov 2023 22:13:20 GMT")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0].startswith(b"HTTP/1.1 %d " % status)
    fields = dict(line.split(b": ", 1) for line in lines[1:])
    assert fields[b"Connection"] == b"close"
    assert int(fields[b"Content-Length"]) == len(body)
    assert fields[b"Date"] == b"Tue, 14 Nov 2023 22:13:20 GMT"
    assert body.startswith(b"%d " % status)
    assert error.status == status

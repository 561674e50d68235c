"""Fuzz targets shared by the hypothesis tests (``test_fuzz_multipart.py``) and the atheris
harness (``atheris_multipart.py``, ``make fuzz``): each takes raw bytes and checks what must hold
for any input. Anything but ``MultipartError`` (status 400) escaping is a bug, as is a parse
that is not linear (the harness's per-input timeout catches that; the tests' pytest timeout too).
"""

from __future__ import annotations

from forkloop.core.multipart import (
    End,
    MultipartError,
    MultipartParser,
    PartHeaders,
    parse_content_disposition,
    parse_header_params,
    scan_header_params,
)

# One Content-Disposition line fits in a part header block (16 KiB by default); the fuzz inputs
# go up to 64 KiB to try the limits too.
MAX_INPUT = 64 * 1024


def header_value(data: bytes) -> None:
    """A header value (``Content-Type`` / ``Content-Disposition``): parsed or a 400."""
    value = data[:MAX_INPUT].decode("latin-1")
    try:
        main, params = parse_header_params(value)
    except MultipartError as exc:
        if exc.status != 400:
            raise AssertionError(f"status {exc.status}") from exc
        return
    if main != main.strip().lower():
        raise AssertionError(f"main value not normalised: {main!r}")
    for name in params:
        if name != name.lower() or not name:
            raise AssertionError(f"parameter name not normalised: {name!r}")
    try:
        disptype, _ = parse_content_disposition(value)
    except MultipartError as exc:  # pragma: no cover - parse_header_params raised first
        raise AssertionError("parse_content_disposition disagrees") from exc
    if disptype is not None and disptype != main:
        raise AssertionError(f"disposition type {disptype!r} != {main!r}")
    # The scanner alone on the parameter part: the same count as the full parser saw.
    semi = value.find(";")
    if semi >= 0:
        scan_header_params(value, semi)


def part_headers(data: bytes) -> None:
    """A whole multipart body whose one part carries ``data`` as its header block."""
    body = b"--B\r\n" + data[:MAX_INPUT] + b"\r\n\r\nv\r\n--B--\r\n"
    parser = MultipartParser("B")
    try:
        events = parser.feed(body)
        events += parser.feed_eof()
        for event in events:
            if isinstance(event, PartHeaders):
                for name, value in event.headers:
                    if name.lower() in ("content-disposition", "content-type"):
                        parse_header_params(value)
    except MultipartError as exc:
        if exc.status not in (400, 413):
            raise AssertionError(f"status {exc.status}") from exc
        return
    if not events or not isinstance(events[-1], End):
        raise AssertionError("a complete body did not end with End")


def one_input(data: bytes) -> None:
    """The atheris entry point: the first byte picks the target."""
    if not data:
        return
    if data[0] & 1:
        header_value(data[1:])
    else:
        part_headers(data[1:])

"""Hypothesis fuzzing of the multipart header/parameter parser (inputs up to 64 KiB).

The same targets run under atheris (coverage-guided) with ``make fuzz``; here they run a
bounded number of generated inputs in ``make test``, biased toward the characters the grammar
cares about, and long runs of them.
"""

from __future__ import annotations

from fuzz_targets import MAX_INPUT, header_value, part_headers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SPECIAL = [b";", b"=", b'"', b"\\", b"*", b"'", b"%", b" ", b"\t", b"0", b"9", b"a", b"\r\n", b":"]
pieces = st.one_of(
    st.sampled_from(SPECIAL),
    st.binary(min_size=1, max_size=8),
    # A long run of one piece: the shape that makes backtracking parsers quadratic.
    st.tuples(st.sampled_from(SPECIAL), st.integers(1, 8192)).map(lambda t: t[0] * t[1]),
)
inputs = st.lists(pieces, max_size=40).map(lambda xs: b"".join(xs)[:MAX_INPUT])
prefixes = st.sampled_from([b"form-data", b"form-data; name=", b"attachment; filename*0*=", b""])

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(prefix=prefixes, data=inputs)
def test_header_value_fuzz(prefix: bytes, data: bytes) -> None:
    header_value(prefix + data)


@FUZZ
@given(data=inputs)
def test_part_header_block_fuzz(data: bytes) -> None:
    part_headers(b"Content-Disposition: form-data; name=" + data)
    part_headers(data)


@FUZZ
@given(data=st.binary(max_size=MAX_INPUT))
def test_random_bytes_fuzz(data: bytes) -> None:
    header_value(data)
    part_headers(data)

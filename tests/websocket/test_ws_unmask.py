"""``_unmask.unmask``: the C twin and the .py fallback give the same bytes, and refuse the same
out-of-range arguments; both agree with ``apply_mask`` on every length and offset tried."""

from __future__ import annotations

import importlib.util
import os
import types
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import forkloop.core.websocket._unmask as loaded
from forkloop.core.websocket.masking import apply_mask

SOURCE = Path(loaded.__file__).with_name("_unmask.py")


def _python_twin() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("forkloop.core.websocket._unmask_py", SOURCE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


IMPLEMENTATIONS = [pytest.param(_python_twin(), id="python")]
if loaded.__file__.endswith((".so", ".pyd")):
    IMPLEMENTATIONS.append(pytest.param(loaded, id="c"))


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("length", [*range(10), 31, 32, 33, 125, 127, 128, 255, 256, 257, 4099])
def test_unmask_equals_apply_mask(impl: types.ModuleType, length: int) -> None:
    data = os.urandom(3) + os.urandom(4) + os.urandom(2) + os.urandom(length) + os.urandom(5)
    assert impl.unmask(data, 3, 9, length) == apply_mask(data[3:7], data[9 : 9 + length])


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=4, max_size=700), picks=st.tuples(st.integers(0), st.integers(0)))
def test_unmask_anywhere_in_the_data(
    impl: types.ModuleType, data: bytes, picks: tuple[int, int]
) -> None:
    at = picks[0] % (len(data) - 3)
    start = picks[1] % (len(data) + 1)
    length = len(data) - start
    assert impl.unmask(data, at, start, length) == apply_mask(data[at : at + 4], data[start:])


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    ("at", "start", "length"), [(-1, 4, 1), (7, 0, 1), (0, 4, 7), (0, 11, 0), (0, -1, 2)]
)
def test_unmask_refuses_what_is_outside_the_data(
    impl: types.ModuleType, at: int, start: int, length: int
) -> None:
    with pytest.raises(ValueError, match="outside the data"):
        impl.unmask(bytes(10), at, start, length)

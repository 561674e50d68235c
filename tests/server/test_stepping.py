"""``_stepping.step``: the C twin and the .py fallback behave the same, outcome by outcome."""

from __future__ import annotations

import asyncio
import contextvars
import importlib.util
import types
from pathlib import Path
from typing import Any

import pytest

import forkloop.core.server._stepping as loaded

SOURCE = Path(loaded.__file__).with_name("_stepping.py")


def _python_twin() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("_stepping_py", SOURCE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


IMPLEMENTATIONS = [pytest.param(_python_twin(), id="python")]
if loaded.__file__.endswith((".so", ".pyd")):
    IMPLEMENTATIONS.append(pytest.param(loaded, id="c"))

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="outside")


class _Suspend:
    """An awaitable that yields ``value`` once, like a future that is not done."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Any:
        return (yield self.value)


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest) -> types.ModuleType:
    return request.param  # type: ignore[no-any-return]


def test_a_return_is_done(impl: types.ModuleType) -> None:
    async def answer() -> int:
        return 42

    assert impl.step(contextvars.Context(), answer()) is impl.DONE


def test_a_yield_is_returned_and_the_next_step_goes_on(impl: types.ModuleType) -> None:
    marker = object()
    seen: list[str] = []

    async def waits() -> None:
        VAR.set("inside")
        await _Suspend(marker)
        seen.append(VAR.get())

    context = contextvars.Context()
    coro = waits()
    assert impl.step(context, coro) is marker
    assert VAR.get() == "outside"  # the step ran in ``context``, not here
    assert context[VAR] == "inside"
    assert impl.step(context, coro) is impl.DONE
    assert seen == ["inside"]


def test_an_exception_propagates_and_the_context_is_left(impl: types.ModuleType) -> None:
    async def fails() -> None:
        VAR.set("failed")
        raise ValueError("boom")

    context = contextvars.Context()
    with pytest.raises(ValueError, match="boom"):
        impl.step(context, fails())
    assert context[VAR] == "failed"
    assert context.run(VAR.get) == "failed"  # left: it can be entered again


def test_a_context_already_entered_is_refused(impl: types.ModuleType) -> None:
    async def never() -> None:  # pragma: no cover - refused before it runs
        raise AssertionError

    context = contextvars.Context()
    coro = never()
    with pytest.raises(RuntimeError, match="already entered"):
        context.run(impl.step, context, coro)
    coro.close()


def test_a_finished_coroutine_raises(impl: types.ModuleType) -> None:
    async def answer() -> None:
        return None

    coro = answer()
    assert impl.step(contextvars.Context(), coro) is impl.DONE
    with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
        impl.step(contextvars.Context(), coro)


def test_the_c_twin_checks_its_arguments() -> None:
    if not loaded.__file__.endswith((".so", ".pyd")):
        pytest.skip("the C twin is not built (FORKLOOP_NO_EXTENSIONS or no compiler)")
    with pytest.raises(TypeError):
        loaded.step(contextvars.Context())  # type: ignore[call-arg]
    coro = asyncio.sleep(0)
    with pytest.raises(TypeError):
        loaded.step(object(), coro)
    coro.close()


def test_the_twins_export_the_same_names() -> None:
    python = _python_twin()
    assert sorted(python.__all__) == ["DONE", "step"]
    assert {name for name in dir(loaded) if not name.startswith("_")} >= set(python.__all__)

"""``_construct``: the C constructor of ``Response`` and ``StreamResponse`` behaves exactly as
``type.__call__`` does, and a response stays a ``MutableMapping`` without inheriting one.

Each behaviour is checked on a class with the C constructor installed and on a twin without
it (where the C twin is built; the pure build has only the second), through every way a class
is called: keywords, positionals, ``*args``/``**kwargs`` (a call without the caller's spare
slot), more arguments than the small stack holds, and classes the constructor must leave to
``type.__call__``.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import sys
import types
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest

import forkloop.core.web._construct as loaded
from forkloop import web

SOURCE = Path(loaded.__file__).with_name("_construct.py")
# The C constructor is installed where the twin is built, on CPython before 3.13.
BUILT = loaded.__file__.endswith((".so", ".pyd")) and sys.version_info < (3, 13)


def _python_twin() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("forkloop.core.web._construct_py", SOURCE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


IMPLEMENTATIONS = [pytest.param(_python_twin(), id="python")]
if BUILT:
    IMPLEMENTATIONS.append(pytest.param(loaded, id="c"))


def _make(impl: types.ModuleType) -> type:
    class Made:
        def __init__(self, *args: Any, result: Any = None, fail: bool = False, **kw: Any) -> None:
            if fail:
                raise LookupError("refused")
            self.args = args
            self.kw = kw
            self.result = result

    took = impl.install(Made)
    assert took is (impl is loaded and BUILT)  # the .py fallback never installs
    assert impl.installed(Made) is took
    return Made


def test_response_classes_have_the_constructor_where_built() -> None:
    assert type(web.Response) is type
    assert type(web.StreamResponse) is type
    assert loaded.installed(web.Response) is BUILT
    assert loaded.installed(web.StreamResponse) is BUILT


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_calls_pass_every_argument(impl: types.ModuleType) -> None:
    made = _make(impl)
    assert impl.installed(made) is (impl is loaded and BUILT)
    one = made(1, 2, a=3)
    assert (one.args, one.kw, type(one)) == ((1, 2), {"a": 3}, made)
    many = made(*range(20), **{f"k{n}": n for n in range(20)})  # beyond the small stack
    assert many.args == tuple(range(20))
    assert many.kw == {f"k{n}": n for n in range(20)}
    assert made().args == ()
    kwargs = {"b": 1}
    assert made(**kwargs).kw == {"b": 1}
    assert kwargs == {"b": 1}


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_errors_are_type_calls_errors(impl: types.ModuleType) -> None:
    made = _make(impl)
    with pytest.raises(LookupError, match="refused"):
        made(fail=True)
    made.__init__ = lambda self: 5  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"__init__\(\) should return None, not 'int'"):
        made()
    del made.__init__
    with pytest.raises(TypeError):
        made(1)  # object.__init__ takes no arguments: type.__call__ refuses


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_other_classes_fall_back_to_type_call(impl: types.ModuleType) -> None:
    made = _make(impl)

    class Sub(made):  # type: ignore[misc, valid-type]
        pass

    assert impl.installed(Sub) is False  # tp_vectorcall is never inherited
    assert Sub(1).args == (1,)

    made.__new__ = lambda cls, *a, **k: "from __new__"  # type: ignore[assignment]
    assert made(1) == "from __new__"

    other = _make(impl)
    original = other.__init__

    def init(self: Any, *args: Any, **kw: Any) -> None:
        original(self, "wrapped", *args, **kw)

    other.__init__ = functools.partialmethod(init)  # type: ignore[assignment, misc]
    assert other(7).args == ("wrapped", 7)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_install_refuses_what_is_not_a_class(impl: types.ModuleType) -> None:
    with pytest.raises(TypeError):
        impl.install(42)
    with pytest.raises(TypeError):
        impl.installed(42)


def test_install_leaves_other_metaclasses_alone() -> None:
    from abc import ABC, abstractmethod

    class Abstract(ABC):
        @abstractmethod
        def method(self) -> None: ...

    assert loaded.install(Abstract) is False
    assert loaded.installed(Abstract) is False


def test_response_keeps_aiohttps_constructor_rules() -> None:
    with pytest.raises(TypeError, match="keyword arguments only"):
        web.Response("positional")
    with pytest.raises(ValueError, match="body and text"):
        web.Response(body=b"x", text="y")
    with pytest.raises(TypeError, match="unexpected keyword"):
        web.Response(texts="x")
    response = web.Response(text="hi", status=201)
    assert (response.status, response.text, response.content_type) == (201, "hi", "text/plain")
    assert web.StreamResponse(status=202).status == 202


def test_response_is_a_mutable_mapping() -> None:
    response = web.Response(text="x")
    assert isinstance(response, MutableMapping)
    assert issubclass(web.StreamResponse, MutableMapping)
    with pytest.warns(Warning, match="ResponseKey"):
        response["a"] = 1
    assert "a" in response
    assert "b" not in response
    assert response.get("a") == 1
    assert response.get("b", 2) == 2
    assert list(response.keys()) == ["a"]
    assert list(response.items()) == [("a", 1)]
    assert list(response.values()) == [1]
    with pytest.warns(Warning, match="ResponseKey"):
        assert response.setdefault("b", 2) == 2
    with pytest.warns(Warning, match="ResponseKey"):
        response.update({"c": 3})
    assert dict(response) == {"a": 1, "b": 2, "c": 3}
    assert response.pop("a") == 1
    assert response.pop("zz", None) is None
    assert response.popitem() in (("b", 2), ("c", 3))
    response.clear()
    assert len(response) == 0
    with pytest.raises(TypeError):
        reversed(response)  # type: ignore[call-overload]


def _kinds(function: Any) -> list[tuple[str, Any]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]


def test_signatures_are_aiohttps() -> None:
    """``Response`` and ``json_response`` take a positional-only guard where aiohttp has
    keyword-only arguments (cheaper on CPython 3.11); callers and ``inspect`` see aiohttp's."""
    aiohttp_web = pytest.importorskip("aiohttp.web")
    assert _kinds(web.Response) == _kinds(aiohttp_web.Response)[: len(_kinds(web.Response))]
    assert _kinds(web.json_response) == _kinds(aiohttp_web.json_response)
    with pytest.raises(TypeError, match="1 positional argument"):
        web.json_response({}, "text")  # type: ignore[misc]
    with pytest.raises(TypeError, match="positional-only arguments passed as keyword"):
        web.json_response({}, _no_positional=1)  # type: ignore[call-arg]
    response = web.json_response({"a": 1}, status=201, content_type="application/x+json")
    assert (response.status, response.text) == (201, '{"a": 1}')
    assert response.content_type == "application/x+json"
    assert web.json_response(text="[]").text == "[]"

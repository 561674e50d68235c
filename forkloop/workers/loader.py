"""Find the application named by ``APP``: ``module:attr``, ``module:factory``,
``module:factory(args)``.

Owns: parsing the APP string (factory arguments must be Python literals: they are evaluated
with ``ast.literal_eval``, never ``eval``), importing the module (the working directory comes
first on ``sys.path``, as with gunicorn), resolving dotted attributes, calling a factory (an
``async def`` factory is returned un-awaited: only a worker, inside its event loop, awaits it),
and checking that the result is an Application. Every failure raises :class:`AppLoadError`
whose ``str`` is one line naming the cause; the original exception is chained for the
traceback.

Imports: stdlib; ``forkloop.core.web.app`` lazily, for the type check.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import sys
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AppLoadError",
    "AppTarget",
    "check_app",
    "is_app",
    "load",
    "make_app",
    "one_line",
    "resolve",
]


class AppLoadError(Exception):
    """The app cannot be loaded; ``str(exc)`` is one line."""


@dataclass(frozen=True)
class AppTarget:
    """The resolved APP: the object and the factory arguments to call it with."""

    spec: str
    obj: Any
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    call: bool = False  # APP had "(...)": always call obj


def _parse(spec: str) -> tuple[str, str, tuple[Any, ...], dict[str, Any], bool]:
    module, sep, expr = spec.partition(":")
    if not sep or not module or not expr:
        raise AppLoadError(f"APP must look like module:attr, got {spec!r}")
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    call = False
    if "(" in expr:
        name, _, rest = expr.partition("(")
        if not rest.endswith(")"):
            raise AppLoadError(f"unbalanced parentheses in APP {spec!r}")
        try:
            node = ast.parse(f"f({rest}", mode="eval").body
            if not isinstance(node, ast.Call):
                raise ValueError("not a call")
            args = tuple(ast.literal_eval(arg) for arg in node.args)
            for keyword in node.keywords:
                if keyword.arg is None:
                    raise ValueError("**kwargs")
                kwargs[keyword.arg] = ast.literal_eval(keyword.value)
        except (SyntaxError, ValueError) as exc:
            raise AppLoadError(
                f"factory arguments in APP {spec!r} must be Python literals ({exc})"
            ) from None
        expr, call = name.strip(), True
    return module.strip(), expr.strip(), args, kwargs, call


def one_line(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        where = f" ({exc.filename}, line {exc.lineno})" if exc.filename else ""
        return f"{type(exc).__name__}: {exc.msg}{where}"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def resolve(spec: str) -> AppTarget:
    """Import the module and find the object; does not call factories."""
    module_name, expr, args, kwargs, call = _parse(spec)
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise AppLoadError(f"cannot import {module_name!r}: {one_line(exc)}") from exc
    obj: Any = module
    for part in expr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppLoadError(f"module {module_name!r} has no attribute {expr!r}") from None
    return AppTarget(spec, obj, args, kwargs, call)


def is_app(obj: object) -> bool:
    from forkloop.core.web.app import Application, foreign_app_error

    if isinstance(obj, Application):
        return True
    if foreign_app_error(obj) is not None:
        return False  # an aiohttp Application has the same attributes
    return hasattr(obj, "router") and hasattr(obj, "freeze") and hasattr(obj, "_handle")


def _refuse_foreign(obj: object) -> None:
    from forkloop.core.web.app import foreign_app_error

    error = foreign_app_error(obj)
    if error is not None:
        raise AppLoadError(error)


def make_app(target: AppTarget) -> Any:
    """The Application, or an awaitable of it for an ``async def`` factory."""
    obj = target.obj
    if not target.call:
        _refuse_foreign(obj)
        if is_app(obj):
            return obj
    if not callable(obj):
        raise AppLoadError(f"{target.spec} is a {type(obj).__name__}, not an Application")
    try:
        result = obj(*target.args, **target.kwargs)
    except Exception as exc:
        raise AppLoadError(f"factory {target.spec} failed: {one_line(exc)}") from exc
    if inspect.isawaitable(result):
        return result
    return check_app(result, target.spec)


def check_app(obj: object, spec: str) -> Any:
    _refuse_foreign(obj)
    if not is_app(obj):
        raise AppLoadError(
            f"{spec} returned a {type(obj).__name__}, expected a forkloop.web.Application"
        )
    return obj


def load(spec: str) -> Any | Awaitable[Any]:
    """``resolve`` + ``make_app``."""
    return make_app(resolve(spec))

"""Functions and classes restored into a live namespace must read that namespace's globals.

A function defined in a notebook is stored by value together with copies of the globals it
reads. Restored as is, it would keep reading those copies: a later ``scale = 3`` in the
notebook would not reach it. :func:`bind_functions` gives every restored ``__main__`` function,
and every method of a restored ``__main__`` class, the namespace it is restored into.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, MutableMapping
from typing import Any, TypeGuard


def rebind(function: types.FunctionType, namespace: MutableMapping[str, Any]) -> types.FunctionType:
    """The same function (code, defaults, closure, attributes) reading ``namespace`` as globals."""
    bound = types.FunctionType(
        function.__code__,
        namespace,  # type: ignore[arg-type]
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
    bound.__kwdefaults__ = function.__kwdefaults__
    bound.__qualname__ = function.__qualname__
    bound.__module__ = function.__module__
    bound.__doc__ = function.__doc__
    bound.__annotations__ = function.__annotations__
    bound.__dict__.update(function.__dict__)
    return bound


def _is_notebook_function(value: Any) -> TypeGuard[types.FunctionType]:
    return isinstance(value, types.FunctionType) and value.__module__ == "__main__"


def _maybe_rebind(value: Any, namespace: MutableMapping[str, Any]) -> Any:
    return rebind(value, namespace) if _is_notebook_function(value) else value


def _rebind_class(cls: type, namespace: MutableMapping[str, Any]) -> None:
    for name, member in list(vars(cls).items()):
        if _is_notebook_function(member):
            setattr(cls, name, rebind(member, namespace))
        elif isinstance(member, staticmethod | classmethod):
            setattr(cls, name, type(member)(_maybe_rebind(member.__func__, namespace)))
        elif isinstance(member, property):
            fget, fset, fdel = (
                _maybe_rebind(f, namespace) for f in (member.fget, member.fset, member.fdel)
            )
            setattr(cls, name, property(fget, fset, fdel, member.__doc__))


def bind_functions(
    values: Mapping[str, Any], namespace: MutableMapping[str, Any]
) -> dict[str, Any]:
    """``values`` with notebook functions and classes reading ``namespace`` as their globals."""
    result = dict(values)
    for name, value in values.items():
        if _is_notebook_function(value):
            result[name] = rebind(value, namespace)
        elif isinstance(value, type) and value.__module__ == "__main__":
            _rebind_class(value, namespace)
    return result

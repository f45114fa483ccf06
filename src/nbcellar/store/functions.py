"""Functions restored from the store read the globals they read when they were stored: live ones.

A notebook function is stored by value with copies of the globals it reads (cloudpickle). Restored
as is, it would go on reading those copies: a later ``scale = 3`` in the notebook would not reach
it. So a function whose globals were the notebook's (the ``__main__`` module's, as a kernel's
namespace is) is stored marked as such, and loaded with the namespace it is restored into as its
globals, wherever it sits: a variable, a decorator's closure, a dict of callbacks, a
``functools.partial``, a bound method, a class. A function a library made stored by value (the
wrapper ``functools.wraps`` names after a notebook function, a dataclass's ``__repr__`` guard)
reads its module's live globals, as it did; one made with globals of its own (attrs' generated
methods, a namedtuple's ``__new__``) keeps them. Nothing is written into a live namespace.

:func:`bind_functions` does the same afterwards for values loaded without a namespace to read
(top-level functions and methods of top-level classes only).
"""

from __future__ import annotations

import builtins
import pickle
import sys
import types
import weakref
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

NOTEBOOK = "__main__"

# Notebook functions loaded with no namespace to read: they read copies until bound.
_UNBOUND: weakref.WeakSet[types.FunctionType] = weakref.WeakSet()


def _own_globals(stored_globals: dict[str, Any]) -> dict[str, Any]:
    stored_globals["__builtins__"] = builtins.__dict__
    return stored_globals


def notebook_function(
    code: types.CodeType,
    stored_globals: dict[str, Any],
    name: str | None,
    argdefs: tuple[Any, ...] | None,
    closure: tuple[Any, ...] | None,
) -> types.FunctionType:
    """A notebook function as stored (what a plain unpickler makes: copies of its globals);
    loads into a namespace replace it (see :class:`FunctionMaking`)."""
    made = private_function(code, stored_globals, name, argdefs, closure)
    _UNBOUND.add(made)
    return made


def private_function(
    code: types.CodeType,
    stored_globals: dict[str, Any],
    name: str | None,
    argdefs: tuple[Any, ...] | None,
    closure: tuple[Any, ...] | None,
) -> types.FunctionType:
    """A function whose globals were a dict of its own named ``__main__`` (attrs makes them)."""
    return types.FunctionType(code, _own_globals(stored_globals), name, argdefs, closure)


def mark_notebook_function(
    reduced: Any, function: types.FunctionType, notebook: dict[str, Any] | None
) -> Any:
    """cloudpickle's reduce tuple of a function stored by value, made with
    :func:`notebook_function` when its globals are the notebook's, :func:`private_function`
    when they only bear its name (a plain ``_make_function`` with ``__main__`` globals is left
    to streams stored before functions were told apart: those are taken for the notebook's)."""
    import cloudpickle.cloudpickle as cp

    if type(reduced) is not tuple or reduced[0] is not cp._make_function:
        return reduced
    if function.__globals__ is notebook:
        return (notebook_function, *reduced[1:])
    if function.__globals__.get("__name__") == NOTEBOOK:
        return (private_function, *reduced[1:])
    return reduced


def live_module_globals(module: object) -> dict[str, Any] | None:
    """The globals of the imported module named ``module`` (never the notebook's), or None."""
    found = sys.modules.get(module) if isinstance(module, str) and module != NOTEBOOK else None
    return found.__dict__ if isinstance(found, types.ModuleType) else None


class FunctionMaking:
    """The makers of functions for one load into ``namespace`` (cloudpickle's
    ``_make_function`` and ``_function_setstate``, and ours): functions reading live globals.

    Code may run while a value loads (a metaclass, a base's ``__init_subclass__``, a
    ``__setstate__``) and read a global that the load has not put in ``namespace`` yet (the base
    class defined in the same cell). Such a name is lent to ``namespace`` for the load, with
    the value stored with the function; :meth:`give_back` takes it out again.
    """

    def __init__(self, namespace: MutableMapping[str, Any] | None) -> None:
        # (A function's globals must be a dict: functions loaded into another mapping read
        # their stored copies, as with none.)
        self.namespace = namespace if isinstance(namespace, dict) else None
        self.lent: dict[str, Any] = {}

    def by_name(self) -> dict[tuple[str, str], Callable[..., Any]]:
        return {
            ("cloudpickle.cloudpickle", "_make_function"): self.make_function,
            ("cloudpickle.cloudpickle", "_function_setstate"): self.set_state,
            (__name__, "notebook_function"): self.make_notebook_function,
            (__name__, "private_function"): private_function,
        }

    def make_notebook_function(
        self,
        code: types.CodeType,
        stored_globals: dict[str, Any],
        name: str | None,
        argdefs: tuple[Any, ...] | None,
        closure: tuple[Any, ...] | None,
    ) -> types.FunctionType:
        if self.namespace is None:
            return notebook_function(code, stored_globals, name, argdefs, closure)
        return types.FunctionType(code, self.namespace, name, argdefs, closure)

    def make_function(
        self,
        code: types.CodeType,
        stored_globals: dict[str, Any],
        name: str | None,
        argdefs: tuple[Any, ...] | None,
        closure: tuple[Any, ...] | None,
    ) -> types.FunctionType:
        module = stored_globals.get("__name__")
        if module == NOTEBOOK:  # stored before notebook functions were marked
            return self.make_notebook_function(code, stored_globals, name, argdefs, closure)
        globals_ = live_module_globals(module)
        if globals_ is None:
            globals_ = _own_globals(stored_globals)
        return types.FunctionType(code, globals_, name, argdefs, closure)

    def set_state(self, function: types.FunctionType, state: tuple[Any, Any]) -> None:
        """Attributes, defaults, closure; the stored copies of the globals go only into
        globals of the function's own, never into live ones (but for names lent)."""
        attributes, slots = state
        function.__dict__.update(attributes)
        stored = slots.pop("__globals__")
        closure = slots.pop("__closure__")
        slots.pop("_cloudpickle_submodules", None)  # held only to be imported by now
        globals_ = function.__globals__
        if self.namespace is not None and globals_ is self.namespace:
            for name, value in stored.items():
                if name not in globals_:
                    globals_[name] = self.lent[name] = value
        elif globals_ is live_module_globals(globals_.get("__name__")):
            gone = sorted(name for name in stored if name not in globals_)
            if gone:  # the module changed since: the stored code may not run against it
                raise pickle.UnpicklingError(
                    f"function {slots.get('__qualname__')} reads {', '.join(gone)} of module "
                    f"{globals_.get('__name__')}, which has no such name now"
                )
        else:
            _own_globals(globals_).update(stored)
        if closure is not None:
            for index, cell in enumerate(closure):
                try:
                    value = cell.cell_contents
                except ValueError:  # an empty cell
                    continue
                function.__closure__[index].cell_contents = value  # type: ignore[index]
        for name, value in slots.items():
            setattr(function, name, value)

    def give_back(self) -> None:
        """Take the lent names out of the namespace (unless something rebound them)."""
        if self.namespace is not None:
            for name, value in self.lent.items():
                if self.namespace.get(name) is value:
                    del self.namespace[name]
        self.lent.clear()


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


def _maybe_rebind(value: Any, namespace: MutableMapping[str, Any]) -> Any:
    return rebind(value, namespace) if value in _UNBOUND else value


def _rebind_class(cls: type, namespace: MutableMapping[str, Any]) -> None:
    for name, member in list(vars(cls).items()):
        if isinstance(member, types.FunctionType):
            bound = _maybe_rebind(member, namespace)
            if bound is not member:
                setattr(cls, name, bound)
        elif isinstance(member, staticmethod | classmethod):
            function = _maybe_rebind(member.__func__, namespace)
            if function is not member.__func__:
                setattr(cls, name, type(member)(function))
        elif isinstance(member, property):
            accessors = (member.fget, member.fset, member.fdel)
            fget, fset, fdel = (_maybe_rebind(f, namespace) for f in accessors)
            if (fget, fset, fdel) != accessors:
                setattr(cls, name, property(fget, fset, fdel, member.__doc__))


def bind_functions(
    values: Mapping[str, Any], namespace: MutableMapping[str, Any]
) -> dict[str, Any]:
    """``values`` with the notebook functions loaded with no namespace to read (top-level ones
    and methods of top-level classes) reading ``namespace`` as their globals. Values loaded
    with a namespace are left as they are (a function and the dict holding it still hold the
    same one)."""
    result = dict(values)
    for name, value in values.items():
        if isinstance(value, types.FunctionType):
            result[name] = _maybe_rebind(value, namespace)
        elif isinstance(value, type):
            _rebind_class(value, namespace)
    return result

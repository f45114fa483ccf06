"""Functions and classes of the notebook changed in place, and restored in place.

Calling a function can change it: a closure's counter, a mutable default used as a memo, an
``lru_cache`` filling up; a method can change its class (``type(self).n += 1``, a registry in
a class attribute). Instances, decorators and registries hold those very objects, so a restore
must not bind a copy: it puts the stored state (defaults, closure contents, attributes) back
into the live function or class, as running the cell would have left it.

Their state is compared by a token that leaves out the globals their code reads: those are
variables of their own, versioned apart (and pickling a function by value would copy them).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping
from typing import Any

from nbcellar.cache.versions import Fingerprint

# Attributes of a class that are not its state.
_CLASS_BOOKKEEPING = frozenset(
    {"__dict__", "__weakref__", "__module__", "__qualname__", "__doc__", "__annotations__",
     "__firstlineno__", "__static_attributes__", "__parameters__", "__orig_bases__",
     "__slots__", "_abc_impl"}
)  # fmt: skip
_ATOMS = (int, float, complex, str, bytes, bool, type(None), range)


def is_notebook_code(value: Any) -> bool:
    """A function or class defined in the notebook (``__main__``)."""
    if isinstance(value, types.FunctionType):
        return value.__globals__.get("__name__") == "__main__"
    return isinstance(value, type) and value.__module__ == "__main__"


def keeps_state_when_called(value: Any) -> bool:
    """Whether calling ``value`` may change something it holds: a notebook function with a
    closure, a mutable default or attributes; a notebook class (its methods may change it);
    an ``lru_cache`` / ``functools.cache`` function; a method bound to an object, or a
    partial holding objects, that it may change; a callable instance of a notebook class.
    Builtins and library functions and classes are taken not to (their own caches aside)."""
    if isinstance(value, types.FunctionType):
        if not is_notebook_code(value):
            return False
        defaults = (*(value.__defaults__ or ()), *(value.__kwdefaults__ or {}).values())
        return bool(value.__closure__ or value.__dict__ or any(not _immutable(d) for d in defaults))
    if isinstance(value, type):
        return value.__module__ == "__main__"
    if isinstance(value, functools._lru_cache_wrapper):
        return True
    if isinstance(value, types.MethodType | types.BuiltinMethodType):
        # A bound method changes the object it is bound to (``push = log.append``).
        owner = value.__self__
        return owner is not None and not isinstance(owner, (*_ATOMS, types.ModuleType, type))
    if isinstance(value, functools.partial):
        # A partial passes on what it holds (``functools.partial(list.append, acc)``).
        held = (*value.args, *value.keywords.values())
        return keeps_state_when_called(value.func) or any(not _immutable(v) for v in held)
    kind = type(value)
    return kind.__module__ == "__main__" and callable(value)


def _immutable(value: Any) -> bool:
    if isinstance(value, _ATOMS):
        return True
    if type(value) in (tuple, frozenset):
        return all(_immutable(v) for v in value)
    return False


def restorable_in_place(value: Any) -> bool:
    """A value whose changes are put back into the live object rather than bound anew."""
    return isinstance(value, types.FunctionType | type) and is_notebook_code(value)


def capture_state(value: Any) -> dict[str, Any]:
    """The state of a notebook function or class, as real objects (to put back)."""
    if isinstance(value, types.FunctionType):
        return {
            "defaults": value.__defaults__,
            "kwdefaults": dict(value.__kwdefaults__ or {}) or None,
            "closure": [_cell_contents(c) for c in value.__closure__ or ()],
            "attributes": dict(value.__dict__),
        }
    return {
        "attributes": {
            k: v for k, v in vars(value).items()
            if k not in _CLASS_BOOKKEEPING and not isinstance(v, _CODE_MEMBERS)
        }
    }  # fmt: skip


_EMPTY = "<empty cell>"
# Members that are the class's code or its instances' slots, not state of the class itself.
_CODE_MEMBERS = (
    types.FunctionType, staticmethod, classmethod, property,
    types.MemberDescriptorType, types.GetSetDescriptorType,
)  # fmt: skip


def _cell_contents(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # not filled yet
        return _EMPTY


class CannotApply(Exception):
    """The live object is not of the shape the stored state is for."""


def apply_state(live: Any, state: dict[str, Any]) -> None:
    """Put ``state`` (see :func:`capture_state`) back into the live function or class."""
    if isinstance(live, types.FunctionType):
        closure = state.get("closure", [])
        if len(closure) != len(live.__closure__ or ()):
            raise CannotApply("its closure changed shape")
        live.__defaults__ = state.get("defaults")
        live.__kwdefaults__ = state.get("kwdefaults")
        for cell, contents in zip(live.__closure__ or (), closure, strict=True):
            if not (isinstance(contents, str) and contents == _EMPTY):
                cell.cell_contents = contents
        live.__dict__.clear()
        live.__dict__.update(state.get("attributes", {}))
        return
    if not isinstance(live, type):
        raise CannotApply("it is no longer a function or class")
    attributes = state.get("attributes", {})
    for key in [
        k for k, v in vars(live).items()
        if k not in _CLASS_BOOKKEEPING and not isinstance(v, _CODE_MEMBERS) and k not in attributes
    ]:  # fmt: skip
        delattr(live, key)
    for key, value in attributes.items():
        setattr(live, key, value)


def state_fingerprint(value: Any, name: str = "") -> Fingerprint | None:
    """A fingerprint of a notebook function's or class's state (see the module's docstring);
    None when it cannot be pickled."""
    from nbcellar.cache.fingerprint import fingerprint

    try:
        token = _token(value, set(), 0)
    except RecursionError:
        return None
    return fingerprint(token, name)


def _token(value: Any, seen: set[int], depth: int) -> Any:
    """``value`` with the notebook functions and classes inside it (a few levels down, in
    plain containers) replaced by their state."""
    if depth > 4 or isinstance(value, _ATOMS):
        return value
    if restorable_in_place(value):
        if id(value) in seen:
            return ("seen", value.__qualname__)
        seen.add(id(value))
        state = capture_state(value)
        return (
            "code", value.__qualname__,
            {k: _token(v, seen, depth + 1) for k, v in state.items()},
        )  # fmt: skip
    if isinstance(value, functools._lru_cache_wrapper):
        return ("lru", tuple(value.cache_info()), _token(value.__wrapped__, seen, depth + 1))
    if type(value) in (list, tuple):
        return type(value)(_token(v, seen, depth + 1) for v in value)
    if type(value) is dict:
        return {k: _token(v, seen, depth + 1) for k, v in value.items()}
    return value


def class_of_instances(value: Any, namespace: Mapping[str, Any]) -> str | None:
    """The name bound to the notebook class of ``value``, an instance of one (its methods
    may change the class)."""
    kind = type(value)
    if kind.__module__ != "__main__" or isinstance(value, type):
        return None
    name = kind.__qualname__.split(".")[0]
    return name if namespace.get(name) is kind else None


__all__ = [
    "CannotApply",
    "apply_state",
    "capture_state",
    "class_of_instances",
    "is_notebook_code",
    "keeps_state_when_called",
    "restorable_in_place",
    "state_fingerprint",
]

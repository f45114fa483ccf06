"""Whether a pickled copy of an object is that object, as far as nbcellar can tell.

A value that comes back from the store other than the cell left it breaks the promise
silently: a notebook class whose ``__getstate__`` drops a cache (the restored object lacks
what the cell computed), a ``weakref.finalize`` (it comes back dead, so a restored
``TemporaryDirectory`` points at a folder deleted with the kernel that made it). Such values
are refused when pickled, so the cell making them is run again on restore instead.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

# Objects a copy of which would not do what they do: pickled, a ``weakref.finalize`` comes
# back dead (a ``TemporaryDirectory`` made again would point at a folder deleted with the
# kernel that made it, and never clean up).
TIED_TO_THE_PROCESS: dict[type, str] = {
    weakref.finalize: "holds a clean-up (weakref.finalize) tied to the kernel that made it",
}


_OWN_WAY = ("__getstate__", "__setstate__", "__reduce__", "__reduce_ex__")
_REDUCES_OWN_WAY: weakref.WeakKeyDictionary[type, bool] = weakref.WeakKeyDictionary()


def reduces_its_own_way(kind: type) -> bool:
    """Whether a notebook class (or a notebook base of it) says how it pickles."""
    known = _REDUCES_OWN_WAY.get(kind)
    if known is None:
        known = any(
            k.__module__ == "__main__" and any(m in vars(k) for m in _OWN_WAY) for k in kind.__mro__
        )
        _REDUCES_OWN_WAY[kind] = known
    return known


def lost_in_a_copy(obj: Any) -> str:
    """Why a copy of ``obj`` made as pickling makes it (its ``__reduce_ex__``, then its
    ``__setstate__``) would not be the object it is (a ``__getstate__`` dropping a cache);
    empty when it would. An object remade by a function of its own cannot be told apart."""
    import copyreg

    kind = type(obj)
    name = kind.__qualname__
    try:
        reduced = obj.__reduce_ex__(5)
    except Exception as exc:
        return f"{name} cannot be pickled: {exc}"
    if isinstance(reduced, str):
        return ""
    makers = (getattr(copyreg, "__newobj__", None), getattr(copyreg, "__newobj_ex__", None))
    if reduced[0] not in makers or len(reduced) < 3:
        return f"{name} is remade by its __reduce__: nbcellar cannot tell the copy is the same"
    try:
        copy = reduced[0](*reduced[1])  # (only calls the class's __new__)
        state = reduced[2]
        if state is not None:
            setstate = getattr(copy, "__setstate__", None)
            if setstate is not None:
                setstate(state)
            else:
                if isinstance(state, tuple) and len(state) == 2:
                    state, slots = state
                    for key, value in (slots or {}).items():
                        setattr(copy, key, value)
                if state:
                    copy.__dict__.update(state)
    except Exception as exc:
        return f"a copy of {name} cannot be made as pickling makes it: {exc}"
    differ = _differences(_state_of(obj), _state_of(copy))
    if differ:
        return f"pickled, {name} loses or changes {', '.join(differ)} (see its __getstate__)"
    return ""


def _state_of(obj: Any) -> dict[str, Any]:
    """An object's attributes: its ``__dict__`` and its slots."""
    state = dict(getattr(obj, "__dict__", None) or {})
    for kind in type(obj).__mro__:
        for slot in vars(kind).get("__slots__", ()):
            if isinstance(slot, str) and slot not in ("__dict__", "__weakref__"):
                value = getattr(obj, slot, _UNSET)
                if value is not _UNSET:
                    state[slot] = value
    return state


_UNSET = object()


def _differences(live: Mapping[str, Any], copy: Mapping[str, Any]) -> list[str]:
    """The attributes whose values differ between an object and its copy (by identity, else
    by their pickled bytes)."""
    differ = sorted(set(live) ^ set(copy))
    for key in sorted(set(live) & set(copy)):
        if live[key] is copy[key]:
            continue
        try:
            same = _digest(live[key]) == _digest(copy[key])
        except Exception:
            same = False
        if not same:
            differ.append(key)
    return differ


def _digest(value: Any) -> bytes:
    from nbcellar.store.pickling import hash_stream

    stream, buffers = hash_stream({"": value})
    for buffer in buffers:
        stream.digest.update(buffer)
    return bytes(stream.digest.digest())


__all__ = ["TIED_TO_THE_PROCESS", "lost_in_a_copy", "reduces_its_own_way"]

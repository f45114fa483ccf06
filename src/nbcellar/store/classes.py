"""Classes restored from the store meet their bases' ``__init_subclass__`` as the cell made them.

cloudpickle makes a stored class in two steps: an empty class first (so that methods can refer to
it), then its attributes. Making the empty class calls the bases' ``__init_subclass__`` on a class
that has none of its attributes yet: a plugin registry keyed by ``cls.name`` gets the base's name,
and a registry whose state was stored with the subclass in it gets it twice. So while a value
loads, the hook is held back, then:

- a base made by the same load (defined in the same cell, stored with the class): its stored
  state already holds whatever the hook did, and the hook does not run again;
- any other base (a live class of an earlier cell, a library's): the hook runs once the class has
  all its attributes, as it did when the cell defined the class.

(Keyword arguments of the ``class`` statement are not stored, by cloudpickle either: the hook
runs without them.)
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any


def _no_hook(cls: type, /, **kwargs: Any) -> None:
    """Stands for an ``__init_subclass__`` while an empty class is made."""


@contextmanager
def _hooks_held(bases: tuple[type, ...]) -> Iterator[None]:
    held: list[tuple[type, Any]] = []
    seen: set[type] = set()
    try:
        for base in types.resolve_bases(bases):  # (``TypedDict`` is a function, say)
            for cls in getattr(base, "__mro__", ()):
                if cls in seen or cls is object or "__init_subclass__" not in vars(cls):
                    continue
                seen.add(cls)
                hook = vars(cls)["__init_subclass__"]
                try:
                    type.__setattr__(cls, "__init_subclass__", classmethod(_no_hook))
                except TypeError:  # a type of C code: it cannot be held, so it runs
                    continue
                held.append((cls, hook))
        yield
    finally:
        for cls, hook in held:
            type.__setattr__(cls, "__init_subclass__", hook)


def _hook_owner(cls: type) -> type | None:
    """The class whose ``__init_subclass__`` making ``cls`` calls (None for ``object``'s)."""
    for base in cls.__mro__[1:]:
        if "__init_subclass__" in vars(base):
            return None if base is object else base
    return None


class ClassMaking:
    """cloudpickle's ``_make_skeleton_class`` and ``_class_setstate`` for one load."""

    def __init__(self) -> None:
        import cloudpickle.cloudpickle as cp

        self._cp = cp
        self.made: dict[int, type] = {}  # classes this load makes or fills in, by id
        self.pending: dict[int, type] = {}  # classes whose bases' hook runs once they are full

    def by_name(self) -> dict[tuple[str, str], Callable[..., Any]]:
        needed = ("_DYNAMIC_CLASS_TRACKER_BY_ID", "_DYNAMIC_CLASS_TRACKER_LOCK", "_class_setstate")
        if not all(hasattr(self._cp, name) for name in needed):
            return {}  # a cloudpickle made otherwise: its own makers then
        return {
            ("cloudpickle.cloudpickle", "_make_skeleton_class"): self.make_class,
            ("cloudpickle.cloudpickle", "_class_setstate"): self.set_state,
        }

    def make_class(
        self,
        type_constructor: type,
        name: str,
        bases: tuple[type, ...],
        type_kwargs: dict[str, Any],
        class_tracker_id: str | None,
        extra: Any,
    ) -> type:
        cp = self._cp
        with cp._DYNAMIC_CLASS_TRACKER_LOCK:
            tracked = cp._DYNAMIC_CLASS_TRACKER_BY_ID.get(class_tracker_id)
        if tracked is not None:
            # This process has the class (it stored it, or loaded it before): that one is
            # filled in again; an empty one made only to be dropped would still meet the hook.
            cls: type = tracked
        else:
            with _hooks_held(bases):
                cls = cp._make_skeleton_class(
                    type_constructor, name, bases, type_kwargs, class_tracker_id, extra
                )
        self.made[id(cls)] = cls
        owner = _hook_owner(cls)
        if owner is not None and id(owner) not in self.made:
            self.pending[id(cls)] = cls
        return cls

    def set_state(self, cls: type, state: Any) -> type:
        self._cp._class_setstate(cls, state)
        if self.pending.pop(id(cls), None) is not None:
            super(cls, cls).__init_subclass__()  # type: ignore[arg-type]
        return cls


def track_made_classes(values: Iterable[tuple[str, Any]], made_by: str) -> None:
    """Give the notebook classes a cell run just bound the ids cloudpickle knows them by,
    from the cell's code (``made_by``) and their names, instead of random ones.

    A class made again by the same code (the cell run again, as after a restart) is then the
    same class to the store: an instance of it pickles to the bytes it did (its version holds,
    and the cells reading it stay restored), and a value stored with the earlier class loads as
    an instance of the live one. The newest class made by the code is the one loads find.
    """
    import cloudpickle.cloudpickle as cp
    import xxhash

    by_class = getattr(cp, "_DYNAMIC_CLASS_TRACKER_BY_CLASS", None)
    by_id = getattr(cp, "_DYNAMIC_CLASS_TRACKER_BY_ID", None)
    lock = getattr(cp, "_DYNAMIC_CLASS_TRACKER_LOCK", None)
    if by_class is None or by_id is None or lock is None:
        return  # a cloudpickle made otherwise: its own ids then
    for name, value in values:
        if not isinstance(value, type) or value.__module__ != "__main__":
            continue
        if cp._should_pickle_by_reference(value):
            continue
        with lock:
            if value in by_class:  # known already (loaded, or bound again by another name)
                continue
            ident = xxhash.xxh3_128_hexdigest(f"{made_by}:{name}:{value.__qualname__}".encode())
            by_class[value] = ident
            by_id[ident] = value

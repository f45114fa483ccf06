"""Which variables hold which objects: what a change in place reaches beyond its own name.

Changing an object in place changes it under every name bound to it and inside every value
holding it (a dict holding a list, an array's view, a pipeline holding a fitted step). The
cache stores all of those together, so a restore rebinds them to objects that hold each other
as in a run, and restores an entry only where they are held as when it ran.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterable, Mapping
from typing import Any

from nbcellar.cache.inputs import is_ipython_name
from nbcellar.store.pickling import held_objects, identity_free, root_array

_NOT_STATE = (types.ModuleType, type, types.FunctionType)


def not_state(value: Any) -> bool:
    """A module, class or function: a value holding one refers to it by name; changing an
    instance does not change its class. (A builtin method bound to an object is that
    object's state: ``push = log.append``.)"""
    if isinstance(value, types.BuiltinFunctionType):
        return identity_free(value)
    return isinstance(value, _NOT_STATE)


def array_root(value: Any) -> tuple[int, ...]:
    """The id of the array owning an array's memory (nothing for other values)."""
    numpy = sys.modules.get("numpy")
    if numpy is None or not isinstance(value, numpy.ndarray):
        return ()
    return (id(root_array(value)),)


def identity_groups(
    names: Iterable[str], namespace: Mapping[str, Any]
) -> tuple[tuple[str, ...], ...]:
    """The names bound to one object, in sorted groups of two or more."""
    groups: dict[int, list[str]] = {}
    for name in sorted(names):
        groups.setdefault(id(namespace[name]), []).append(name)
    return tuple(sorted(tuple(g) for g in groups.values() if len(g) > 1))


def aliases_of(name: str, namespace: Mapping[str, Any]) -> tuple[str, ...]:
    """Other variables bound to the very object ``name`` is bound to."""
    target = namespace[name]
    return tuple(
        sorted(
            n for n, v in namespace.items() if v is target and n != name and not is_ipython_name(n)
        )
    )


_IMMUTABLE = (tuple, frozenset, range, slice)
_ATOMS = frozenset({int, float, complex, str, bytes, bool, type(None)})


def mutable_inside(value: Any) -> set[int]:
    """Ids of the objects inside ``value`` that another value holding them shares state with
    (not tuples and other immutable ones: sharing those is no state). See held_objects."""
    import gc

    from nbcellar.store.pickling import STOP

    numpy = sys.modules.get("numpy")
    seen: set[int] = set()
    found: set[int] = set()
    stack = [value]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or type(obj) in _ATOMS or isinstance(obj, STOP):
            continue
        seen.add(id(obj))
        if not isinstance(obj, _IMMUTABLE):
            found.add(id(obj))
        if numpy is not None and isinstance(obj, numpy.ndarray):
            found.add(id(root_array(obj)))
            continue
        stack.extend(gc.get_referents(obj))
    return found


def _may_hold_state(value: Any) -> bool:
    return not identity_free(value) and not isinstance(value, types.ModuleType)


class Holdings:
    """What each variable's value holds (ids of live objects), kept while it is the same
    object and no cell changes it."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[int, frozenset[int]]] = {}

    def forget(self, names: Iterable[str]) -> None:
        for name in names:
            self._held.pop(name, None)

    def keep(self, name: str, ident: int, held: frozenset[int]) -> None:
        self._held[name] = (ident, held)

    def held_by(self, name: str, namespace: Mapping[str, Any]) -> frozenset[int]:
        """Ids of what ``name``'s value holds (see held_objects)."""
        value = namespace[name]
        known = self._held.get(name)
        if known is not None and known[0] == id(value):
            return known[1]
        held = frozenset(held_objects(value))
        self._held[name] = (id(value), held)
        return held

    def holds(self, name: str, namespace: Mapping[str, Any], objects: set[int]) -> bool:
        """Whether ``name``'s value holds one of ``objects`` (live objects' ids). A kept set of
        ids may name objects gone since, their ids reused: a match is checked afresh."""
        if not self.held_by(name, namespace) & objects:
            return False
        self._held.pop(name, None)
        return bool(self.held_by(name, namespace) & objects)

    def held_names(self, name: str, namespace: Mapping[str, Any]) -> frozenset[str]:
        """The other variables whose objects ``name``'s value holds."""
        names: frozenset[str] = frozenset()
        for fresh in (False, True):  # a match in a kept set is checked afresh (see holds)
            if fresh:
                self._held.pop(name, None)
            held = self.held_by(name, namespace)
            names = frozenset(
                n for n, v in namespace.items()
                if n != name and id(v) in held and not is_ipython_name(n) and _may_hold_state(v)
            )  # fmt: skip
            if not names:
                break
        return names

    def changed_with(
        self,
        changed: set[str],
        namespace: Mapping[str, Any],
        current: Mapping[str, int],
        written: set[str],
        holding_bound: set[str],
    ) -> tuple[str, ...]:
        """Every name changed along with the objects of ``changed``: those bound to the same
        objects, to objects inside them (a pipeline's fitted step), or to values holding any
        of those (a dict holding a changed array); and ``holding_bound``, whose values hold
        what a name the cell bound now names. All are stored together."""
        if not changed and not holding_bound:
            return ()
        objects = {current[n] for n in changed}
        objects |= set().union(*(self.held_by(n, namespace) for n in changed))
        others = [
            n for n in current
            if n not in written and not not_state(namespace[n])
            and not identity_free(namespace[n])
        ]  # fmt: skip
        touched = {n for n in others if current[n] in objects} | holding_bound
        # A function or class of the notebook changed itself (restored in place).
        touched |= {n for n in changed if isinstance(namespace[n], type | types.FunctionType)}
        # Holders of a variable changed (the memory of an array included).
        marked: set[int] = set()
        for name in (*changed, *touched):
            marked |= {current[name], *array_root(namespace[name])}
        touched |= {n for n in others if n not in touched and self.holds(n, namespace, marked)}
        # What else holds a mutable object inside them is stored with them too, or it would
        # come back holding a copy of its own (``b = {'y': a['x']}``, then ``del`` of the name
        # that bound the list). (Only looked for among the values holding anything of theirs.)
        suspects = {n for n in others if n not in touched and self.holds(n, namespace, objects)}
        if suspects:
            inside = set().union(*(mutable_inside(namespace[n]) for n in changed))
            touched |= {n for n in suspects if self.holds(n, namespace, inside)}
        self.forget(touched)
        return tuple(sorted(touched))

    def holding_bound(
        self,
        alias_roots: Mapping[str, frozenset[str]],
        writes: frozenset[str],
        bindings: Mapping[str, int],
        namespace: Mapping[str, Any],
    ) -> set[str]:
        """Variables the cell left bound as they were whose values hold an object that a name
        the cell bound now names (``x = d['key']``, ``l1 = l1`` with ``d['l'] is l1``): stored
        with it, or after a restore ``x`` would be a copy, no longer the object inside ``d``."""
        holding: set[str] = set()
        for name, roots in alias_roots.items():
            if name not in namespace or identity_free(namespace[name]):
                continue
            target = id(namespace[name])
            for root in roots:
                if (
                    root in namespace and root not in writes
                    and bindings.get(root) == id(namespace[root]) != target
                    and not isinstance(namespace[root], types.ModuleType)
                    and self.holds(root, namespace, {target})
                ):  # fmt: skip
                    holding.add(root)
        # A name bound to an object some name was bound to before the cell (``l1 = l1``,
        # ``b = a``) may be bound to an object another variable holds (a dict holding it).
        before = set(bindings.values())
        targets = {
            id(namespace[n]) for n in writes
            if n in namespace and id(namespace[n]) in before
            and not identity_free(namespace[n]) and not not_state(namespace[n])
        }  # fmt: skip
        if targets:
            holding |= {
                n for n, value in namespace.items()
                if n not in writes and n not in holding and not is_ipython_name(n)
                and bindings.get(n) == id(value) and id(value) not in targets
                and _may_hold_state(value) and not not_state(value)
                and self.holds(n, namespace, targets)
            }  # fmt: skip
        return holding

    def held_alike(
        self,
        mutated: Iterable[str],
        same: tuple[tuple[str, ...], ...],
        rebound: set[str],
        namespace: Mapping[str, Any],
    ) -> bool:
        """Whether the objects of ``mutated`` are bound and held here as when the entry's cell
        ran: the names bound to each are ``same``, and no variable outside ``rebound`` holds
        one (it would keep the object as it was before the change)."""
        mutated = list(mutated)
        if identity_groups(mutated, namespace) != same:
            return False
        changed = {id(namespace[n]) for n in mutated}
        for name, value in namespace.items():
            if name in rebound or is_ipython_name(name) or not _may_hold_state(value):
                continue
            if id(value) in changed or self.holds(name, namespace, changed):
                return False
        return True

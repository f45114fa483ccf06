"""Changes in place: which values a cell may change, and whether it did.

The analysis names the values a cell may change in place (method calls, item and attribute
assignment, arguments passed to calls); the cache fingerprints those before and after the cell.
Calls known to leave what they are given unchanged (see :mod:`.purity`) need no fingerprints.
A fingerprint taken is kept with the object's id, so the next cell need not hash it again.
"""

from __future__ import annotations

import contextlib
import functools
import types
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from nbcellar.analysis import CellAnalysis, FunctionInfo
from nbcellar.analysis.graph import reads_through_calls
from nbcellar.cache.fingerprint import candidate_fingerprint
from nbcellar.cache.holding import not_state
from nbcellar.cache.inplace import class_of_instances, keeps_state_when_called
from nbcellar.cache.inputs import is_ipython_name
from nbcellar.cache.purity import leaves_unchanged
from nbcellar.cache.reach import reached
from nbcellar.cache.versions import Fingerprint
from nbcellar.store.pickling import identity_free, no_cycle_collection


class MutationWatch:
    """The mutation candidates of each cell and the last fingerprint taken of each value."""

    def __init__(self) -> None:
        self._fingerprints: dict[str, tuple[int, Fingerprint | None]] = {}

    def forget(self, names: Iterable[str]) -> None:
        for name in names:
            self._fingerprints.pop(name, None)

    def keep(self, name: str, ident: int, value: Fingerprint | None) -> None:
        self._fingerprints[name] = (ident, value)

    def candidates(
        self,
        analysis: CellAnalysis,
        functions: Mapping[str, FunctionInfo],
        namespace: Mapping[str, Any],
    ) -> set[str]:
        """The names whose values the cell may change in place, as the namespace is now."""
        _, _, called_mutated = reads_through_calls(analysis, functions)
        names = set(analysis.mutated | called_mutated)
        if analysis.writes_unknown or analysis.reads_unknown:
            return {n for n in namespace if not is_ipython_name(n)}
        # Calls known not to change what they are given, seen already (their callee is bound
        # before the cell and the cell does not bind it): no fingerprints needed.
        names -= {
            n for n in names & analysis.call_mutations.keys()
            if n not in called_mutated and all(
                site.callee.split(".")[0] not in analysis.writes
                and leaves_unchanged(site, namespace, namespace.get(n))
                for site in analysis.call_mutations[n]
            )
        }  # fmt: skip
        # What a call may change that the code does not name as changed: an iterator it
        # consumes (``for x in it``, ``list(it)``), or what a function of the notebook
        # shadowing a builtin changes; a function or callable object called (its closure,
        # defaults, cache); the notebook class of an object whose methods it calls.
        for callee, consumed in analysis.consumed.items():
            shadowed = callee != "for" and callee in namespace
            names |= {
                n for n in consumed
                if n in namespace and (shadowed or is_iterator(namespace[n]))
            }  # fmt: skip
        names |= {
            n for n in analysis.calls
            if n in namespace and keeps_state_when_called(namespace[n])
        }  # fmt: skip
        # An object whose attributes are computed when read may keep what it computed (a
        # ``cached_property``, a lazy property of a notebook class).
        names |= {
            n for n in analysis.reads if n in namespace and computes_on_access(namespace[n])
        }  # fmt: skip
        names |= {
            c for n in names if n in namespace
            and (c := class_of_instances(namespace[n], namespace)) is not None
        }  # fmt: skip
        # What the notebook code the cell runs reaches beyond what the cell names: a method
        # appending to a global list through an attribute (``self.registry = registry``).
        ran = {n for n in names | analysis.calls if n in namespace}
        names |= {
            n for n in reached(ran, namespace)[0]
            if n in namespace and not identity_free(namespace[n])
            and not not_state(namespace[n])
        }  # fmt: skip
        # (A module is stored by name: a change made to it is neither seen nor restored.)
        return {
            n for n in names
            if n in namespace and not is_ipython_name(n)
            and not isinstance(namespace[n], types.ModuleType)
        }  # fmt: skip

    def unchanged_by_calls(
        self,
        analysis: CellAnalysis,
        functions: Mapping[str, FunctionInfo],
        name: str,
        namespace: Mapping[str, Any],
    ) -> bool:
        """Whether ``name`` was a candidate only through calls known to leave it as it was,
        now that the cell has bound what it calls."""
        sites = analysis.call_mutations.get(name)
        if not sites or analysis.writes_unknown or analysis.reads_unknown:
            return False
        _, _, called_mutated = reads_through_calls(analysis, functions)
        return name not in called_mutated and all(
            leaves_unchanged(site, namespace, namespace.get(name)) for site in sites
        )

    def fingerprints_of(
        self, names: Iterable[str], namespace: Mapping[str, Any]
    ) -> dict[str, Fingerprint | None]:
        with no_cycle_collection():
            return {n: self.fingerprint(n, namespace) for n in names}

    def fingerprint(self, name: str, namespace: Mapping[str, Any]) -> Fingerprint | None:
        value = namespace[name]
        known = self._fingerprints.get(name)
        if known is not None and known[0] == id(value):
            return known[1]
        return candidate_fingerprint(value, name)


_COMPUTES: weakref.WeakKeyDictionary[type, bool] = weakref.WeakKeyDictionary()


def computes_on_access(value: Any) -> bool:
    """Whether reading an attribute of ``value`` may change it: its class (or a base) has a
    ``functools.cached_property``, or it is an instance of a notebook class with properties
    or ``__getattr__`` (whose code may keep what it computed)."""
    if isinstance(value, type | types.ModuleType | types.FunctionType):
        return False
    kind = type(value)
    known = _COMPUTES.get(kind)
    if known is None:
        known = _computes(kind)
        with contextlib.suppress(TypeError):  # (a type that cannot be referred to weakly)
            _COMPUTES[kind] = known
    return known


def _computes(kind: type) -> bool:
    mro = kind.__mro__
    if any(isinstance(m, functools.cached_property) for k in mro for m in vars(k).values()):
        return True
    return any(
        "__getattr__" in vars(k) or any(isinstance(m, property) for m in vars(k).values())
        for k in mro
        if k.__module__ == "__main__"
    )


def is_iterator(value: Any) -> bool:
    """An object that iterating, or a builtin taking it, moves on (a generator, a file)."""
    return hasattr(type(value), "__next__")

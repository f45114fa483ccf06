"""Patches: attributes a cell sets on library modules and classes, as kernel state.

``statistics.mean = my_mean`` or ``argparse.Namespace.describe = describe`` changes what every
later cell gets from the library, and a restart forgets it. The cell's code names where it may
patch (:func:`nbcellar.analysis.patching.patch_targets`); those that land on a module or a
class that is not the notebook's own (a library's, or a class of a project module) are followed
from then on, attribute by attribute: what the cell set is part of its effect (stored like a
variable, a notebook function in it by value, bound to the notebook's globals on restore) and
set again when it is restored; how the followed attributes differ from what they first were is
a version every later cell keys on (a library's code may call the patched function from
anywhere). ``sys.modules["name"] = module`` is followed the same way, as an item.

A project module's own globals are the ``project`` provider's (see nbcellar.cache.providers).
"""

from __future__ import annotations

import copyreg
import sys
import types
from collections.abc import Mapping, Sequence
from typing import Any

from nbcellar.cache.ambient import Provider, Unrestorable, digest

# What a followed attribute is: (module, path from it to the owner, kind, name).
Ref = tuple[str, tuple[str, ...], str, str]

_BY_CLASS = "reducer"  # the kind of a followed copyreg reducer (by the class's name)
_MISSING = object()
_UNSEEN = -1  # the first value of an attribute first seen after the cell that set it
_DELETED = "<deleted>"


class LibraryPatches(Provider):
    name = "patches"

    def __init__(self) -> None:
        self._namespace: Mapping[str, Any] = {}
        self._pending: tuple[Any, ...] = ()
        self._started = False
        self._followed: dict[Ref, int] = {}  # followed attribute -> id of its first value
        self._sizes: dict[tuple[str, tuple[str, ...]], int] = {}  # (see _scan_extended)
        self._owners: dict[tuple[Any, ...], tuple[Any, Any]] = {}  # -> (module, owner)
        self._reducers = -1  # how many reducers copyreg had when last looked at
        self._deferred: list[tuple[str, Any]] = []  # reducers to register once restored

    def watch(self, source: str, namespace: Mapping[str, Any]) -> None:
        from nbcellar.analysis.patching import patch_targets

        self._namespace = namespace
        self._pending = patch_targets(source)
        self._started = False

    def begin_cell(self) -> None:
        self._started = True

    def state(self) -> tuple[tuple[Ref, int], ...]:
        if self._deferred:
            self._register_deferred()
        if self._pending:
            self._follow_pending()
        self._scan_extended()
        if len(copyreg.dispatch_table) != self._reducers:
            self._scan_reducers()
        if not self._followed:
            return ()
        return tuple((ref, id(self._current(ref))) for ref in self._followed)

    def _current(self, ref: Ref) -> Any:
        """The followed attribute's value now (its owner found again only when its module is
        no longer the one it was found in: reloaded, or imported anew)."""
        if ref[2] == _BY_CLASS:
            klass = self._namespace.get(ref[3])
            return copyreg.dispatch_table.get(klass, _MISSING) if klass is not None else _MISSING
        key = (ref[0], ref[1], ref[2])
        module = sys.modules.get(ref[0])
        known = self._owners.get(key)
        if known is None or known[0] is not module:
            known = (module, _owner(ref))
            if known[1] is None:
                return _MISSING
            self._owners[key] = known
        owner = known[1]
        if ref[2] == "item":
            return owner.get(ref[3], _MISSING)
        return vars(owner).get(ref[3], _MISSING)

    def _follow_pending(self) -> None:
        left = []
        for target in self._pending:
            ref = _reference(target, self._namespace)
            if ref is None:
                left.append(target)
            elif ref not in self._followed:
                self._followed[ref] = _UNSEEN if self._started else id(_current(ref))
        self._pending = tuple(left)

    def _scan_extended(self) -> None:
        """Follow the members other packages put on the classes libraries extend most
        (``tqdm.pandas()`` adds ``progress_apply`` to pandas' classes from its own code):
        looked at again only when their number of members changes."""
        modules = sys.modules
        for key in _EXTENDED:
            module_name, path = key
            module = modules.get(module_name)
            if module is None:
                continue
            known = self._owners.get(key)
            if known is None or known[0] is not module:
                known = (module, _owner((module_name, path, "attribute", "")))
                if known[1] is None:
                    continue
                self._owners[key] = known
            members = vars(known[1])
            if self._sizes.get(key) == len(members):
                continue
            self._sizes[key] = len(members)
            package = module_name.partition(".")[0]
            for name, value in list(members.items()):
                ref: Ref = (module_name, path, "attribute", name)
                if ref not in self._followed and _foreign(value, package):
                    self._followed[ref] = _UNSEEN if self._started else id(value)

    def _scan_reducers(self) -> None:
        """Follow the reducers registered for notebook classes (``copyreg.pickle(Point, f)``),
        by the name the class has in the notebook (a restored class is another object)."""
        self._reducers = len(copyreg.dispatch_table)
        classes = [k for k in copyreg.dispatch_table if getattr(k, "__module__", "") == "__main__"]
        if not classes:
            return
        names = {id(v): n for n, v in sorted(self._namespace.items(), reverse=True)}
        for klass in classes:
            name = names.get(id(klass))
            ref: Ref = ("copyreg", ("dispatch_table",), _BY_CLASS, name or "")
            if name is not None and ref not in self._followed:
                value = copyreg.dispatch_table[klass]
                self._followed[ref] = _UNSEEN if self._started else id(value)

    def _register_deferred(self) -> None:
        """Register the reducers of a restored cell, now that its classes are bound."""
        deferred, self._deferred = self._deferred, []
        for name, reducer in deferred:
            klass = self._namespace.get(name)
            if not isinstance(klass, type):
                continue
            if isinstance(reducer, str) and reducer == _DELETED:
                copyreg.dispatch_table.pop(klass, None)
            else:
                copyreg.dispatch_table[klass] = reducer

    def change(self, before: Sequence[Any], after: Sequence[Any]) -> tuple[Any, ...]:
        old = dict(before or ())
        changed = []
        for ref, ident in after:
            if old.get(ref) == ident:
                continue
            value = self._current(ref)
            if isinstance(value, types.ModuleType) and not _importable(value):
                # (sys.modules["fake"] = types.ModuleType("fake"): nothing to import it from)
                raise Unrestorable(f"module {value.__name__} made by code, set as {_shown(ref)}")
            if not _storable(value):
                raise Unrestorable(f"{_shown(ref)} is set to a {type(value).__name__}, which "
                                   "cannot be stored")  # fmt: skip
            changed.append((ref, _DELETED if value is _MISSING else value))
        return tuple(sorted(changed, key=lambda item: item[0]))

    def apply(self, change: Sequence[Any]) -> None:
        for ref, value in change:
            if ref[2] == _BY_CLASS:  # (registered once the restored cell's values are bound)
                self._deferred.append((ref[3], value))
                continue
            owner = _owner(ref, importing=True)
            if owner is None:
                raise Unrestorable(f"{_shown(ref)} cannot be set again: its owner is gone")
            deleted = isinstance(value, str) and value == _DELETED
            if ref[2] == "item":
                if deleted:
                    owner.pop(ref[3], None)
                else:
                    owner[ref[3]] = value
            elif deleted:
                if ref[3] in vars(owner):
                    delattr(owner, ref[3])
            else:
                setattr(owner, ref[3], value)

    def version(self, initial: Any, now: Any) -> str | None:
        """By content: how the followed attributes differ from their first values."""
        if not now:
            return None
        changed = [ref for ref, ident in now if self._followed.get(ref) != ident]
        if not changed:
            return None
        return digest([(ref, content(self._current(ref))) for ref in sorted(changed)])


# Library classes other packages add methods to from their own code (tqdm, pandas-flavor).
_EXTENDED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pandas", ("DataFrame",)),
    ("pandas", ("Series",)),
    ("pandas.core.groupby.generic", ("DataFrameGroupBy",)),
    ("pandas.core.groupby.generic", ("SeriesGroupBy",)),
)


def _foreign(value: Any, package: str) -> bool:
    """A function or class from outside ``package`` (the notebook's included)."""
    if not isinstance(value, types.FunctionType | type):
        return False
    module = getattr(value, "__module__", None)
    return isinstance(module, str) and module.partition(".")[0] != package


def _storable(value: Any) -> bool:
    """Whether the store can keep the value (functions, classes and modules it keeps by value
    or by name; anything else if it pickles)."""
    from nbcellar.cache.fingerprint import fingerprint

    if value is _MISSING or isinstance(value, types.FunctionType | type | types.ModuleType):
        return True
    return fingerprint(value) is not None


def _shown(ref: Ref) -> str:
    owner = ".".join((ref[0], *ref[1]))
    return f"{owner}[{ref[3]!r}]" if ref[2] == "item" else f"{owner}.{ref[3]}"


def _importable(module: types.ModuleType) -> bool:
    return getattr(module, "__spec__", None) is not None


def _member(owner: Any, name: str) -> Any:
    """``owner.name`` as set on the module or class itself (no descriptor, no lazy import)."""
    if isinstance(owner, types.ModuleType):
        return vars(owner).get(name, _MISSING)
    if isinstance(owner, type):
        for klass in owner.__mro__:
            found = vars(klass).get(name, _MISSING)
            if found is not _MISSING:
                return found
    return _MISSING


def _owner(ref: Ref, importing: bool = False) -> Any:
    """What the attribute is set on, found from its module (imported, with ``importing``)."""
    module = sys.modules.get(ref[0])
    if module is None and importing:
        import importlib

        try:
            module = importlib.import_module(ref[0])
        except Exception:
            return None
    owner: Any = module
    for part in ref[1]:
        if owner is None:
            return None
        owner = _member(owner, part)
        if owner is _MISSING:
            return None
    if ref[2] == "item":
        return owner if type(owner) is dict else None
    return owner if isinstance(owner, types.ModuleType | type) else None


def _current(ref: Ref) -> Any:
    owner = _owner(ref)
    if owner is None:
        return _MISSING
    if ref[2] == "item":
        return owner.get(ref[3], _MISSING)
    return vars(owner).get(ref[3], _MISSING)


def _reference(target: Any, namespace: Mapping[str, Any]) -> Ref | None:
    """Where ``target`` lands, from an importable module, when on a module or a class that is
    not the notebook's (None otherwise, or while its first name is not bound)."""
    root = namespace.get(target.owner[0], _MISSING)
    if root is _MISSING:
        return None
    if isinstance(root, types.ModuleType):
        module, path = getattr(root, "__name__", None), tuple(target.owner[1:])
    elif isinstance(root, type):
        module = getattr(root, "__module__", None)
        path = (*str(getattr(root, "__qualname__", "")).split("."), *target.owner[1:])
    else:
        return None
    if (
        not isinstance(module, str)
        or module == "__main__"
        or module.startswith("nbcellar")
        or "<locals>" in path
        or sys.modules.get(module) is None
        or not _importable(sys.modules[module])
    ):
        return None
    ref: Ref = (module, path, target.kind, target.name)
    owner = _owner(ref)
    if owner is None:
        return None
    if target.kind == "attribute" and isinstance(owner, types.ModuleType) and _is_project(owner):
        return None  # (its globals are the project provider's)
    if isinstance(owner, type) and owner.__module__ == "__main__":
        return None
    return ref


def _is_project(module: types.ModuleType) -> bool:
    from nbcellar.cache.sources import is_project_file

    origin = getattr(module, "__file__", None)
    return isinstance(origin, str) and is_project_file(origin)


def content(value: Any) -> str:
    """What a patched-in value is, by content (see :func:`_structure`)."""
    if value is _MISSING:
        return _DELETED
    return digest(repr(_structure(value, 0)))  # (pickled, equal strings could differ by identity)


def _structure(value: Any, depth: int) -> Any:
    """A value by what it does, the same in every kernel: a notebook function by its code
    (without file name or lines), defaults, closure and the globals it reads; a notebook class
    by its members; a module by its name (one made by code: by its globals); anything else
    importable by its name; a library object with a few attributes (an accessor registered on
    a class) by them; anything else by its fingerprint. (Pickled whole, a function restored
    from the store would not give the bytes its first run gave: its globals are restored
    copies.)"""
    from nbcellar.cache.fingerprint import fingerprint

    if depth > 4:
        return type(value).__qualname__
    module = getattr(value, "__module__", None)
    if isinstance(value, types.FunctionType) and module == "__main__":
        code = value.__code__
        read = sorted(n for n in _global_names(code) if n in value.__globals__)
        cells = [c.cell_contents for c in value.__closure__ or () if _filled(c)]
        return (
            _code_content(code),
            [_structure(v, depth + 1) for v in value.__defaults__ or ()],
            [_structure(v, depth + 1) for v in cells],
            [(n, _structure(value.__globals__[n], depth + 1)) for n in read],
        )
    if isinstance(value, staticmethod | classmethod):
        return (type(value).__name__, _structure(value.__func__, depth + 1))
    if isinstance(value, property):
        return ("property", [_structure(f, depth + 1) for f in (value.fget, value.fset)])
    if isinstance(value, type) and module == "__main__":
        members = {k: v for k, v in vars(value).items() if k not in _CLASS_BOOKKEEPING}
        return ("class", value.__qualname__, _members(members, depth, dunder=True))
    if isinstance(value, types.ModuleType):
        if _importable(value):
            return ("module", value.__name__)
        return ("module made", value.__name__, _members(vars(value), depth))
    if isinstance(value, _BY_NAME) and isinstance(module, str):
        return ("importable", module, getattr(value, "__qualname__", ""))
    attributes = getattr(value, "__dict__", None)
    kind = type(value)
    if kind.__module__ != "__main__" and type(attributes) is dict and len(attributes) <= 20:
        return ("object", kind.__module__, kind.__qualname__, _members(attributes, depth))
    return fingerprint(value) or type(value).__qualname__


_CLASS_BOOKKEEPING = frozenset({"__module__", "__qualname__", "__dict__", "__weakref__", "__doc__"})


def _members(members: Mapping[str, Any], depth: int, dunder: bool = False) -> list[Any]:
    return [
        (k, _structure(v, depth + 1)) for k, v in sorted(members.items())
        if dunder or not (k.startswith("__") and k.endswith("__"))
    ]  # fmt: skip


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True


_BY_NAME = (type, types.FunctionType, types.BuiltinFunctionType)


def _code_content(code: types.CodeType) -> Any:
    def const(value: Any) -> Any:
        if isinstance(value, types.CodeType):
            return _code_content(value)
        if isinstance(value, frozenset):  # (``x in {'a', 'b'}``: its order is the process's)
            return sorted(map(repr, value))
        return repr(value)

    consts = [const(c) for c in code.co_consts]
    return (code.co_code, code.co_names, code.co_varnames, code.co_freevars, consts)


def _global_names(code: types.CodeType) -> set[str]:
    from nbcellar.cache.reach import _code_globals

    return set(_code_globals(code)[0])

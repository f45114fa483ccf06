"""What the notebook's code inside values reads: the globals and modules a cell reaches.

A cell reading ``model`` and calling ``model.predict(X)`` reads whatever globals the methods of
``model``'s class read (``SCALE``); a cell calling ``handlers['clean'](df)`` or a
``functools.partial`` of a notebook function reads that function's globals; a function that
imports a project module in its body reads that module. None of it is in the cell's code, so
the cache reads it off the values the cell reads, from the byte code of the notebook functions
and classes they are or hold (following the globals those read, in turn).
"""

from __future__ import annotations

import collections
import dis
import functools
import types
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

_PLAIN = (list, tuple, dict, set, frozenset)
_MAX_ITEMS = 200  # a container larger than this is data, not a registry of functions


def reached(names: Iterable[str], namespace: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """The globals (other than ``names``) and the modules that the notebook code inside the
    values of ``names`` reads and imports, transitively."""
    start = set(names)
    todo = list(start)
    seen: set[str] = set()
    found: set[str] = set()
    modules: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in namespace:
            continue
        seen.add(name)
        for code in codes_in(namespace[name]):
            read, imported = _code_globals(code)
            found |= read
            modules |= imported
            todo.extend(read - seen)
    return found - start, modules


def codes_in(value: Any, depth: int = 0) -> Iterator[types.CodeType]:
    """The code of the notebook functions a value is or holds: itself, a class's methods, an
    instance's class, a partial's function, a bound method's, a decorator's wrapped function
    or closure, a defaultdict's factory, the items of a small container."""
    if depth > 3:
        return
    if isinstance(value, types.FunctionType):
        if value.__globals__.get("__name__") != "__main__":
            return
        yield value.__code__
        for cell in value.__closure__ or ():
            try:
                contents = cell.cell_contents
            except ValueError:
                continue
            yield from codes_in(contents, depth + 1)
        wrapped = value.__dict__.get("__wrapped__")
        if wrapped is not None:
            yield from codes_in(wrapped, depth + 1)
    elif isinstance(value, type):
        if value.__module__ != "__main__":
            return
        for member in vars(value).values():
            if isinstance(member, staticmethod | classmethod):
                member = member.__func__
            if isinstance(member, property):
                for part in (member.fget, member.fset, member.fdel):
                    yield from codes_in(part, depth + 1)
            elif isinstance(member, types.FunctionType):
                yield from codes_in(member, depth + 1)
    elif isinstance(value, types.MethodType):
        yield from codes_in(value.__func__, depth + 1)
    elif isinstance(value, functools.partial):
        yield from codes_in(value.func, depth + 1)
    elif isinstance(value, functools._lru_cache_wrapper):
        yield from codes_in(value.__wrapped__, depth + 1)
    elif type(value) in _PLAIN or type(value) is collections.defaultdict:
        if type(value) is collections.defaultdict:  # its factory runs on a missing key
            yield from codes_in(value.default_factory, depth + 1)
        if len(value) <= _MAX_ITEMS:
            items = value.values() if isinstance(value, dict) else value
            for item in items:
                if not isinstance(item, _PLAIN):
                    yield from codes_in(item, depth + 1)
    elif type(value).__module__ == "__main__":
        yield from codes_in(type(value), depth + 1)


@functools.lru_cache(maxsize=8192)
def _code_globals(code: types.CodeType) -> tuple[frozenset[str], frozenset[str]]:
    """The globals a code object (and the code nested in it) reads, and the modules it
    imports."""
    read: set[str] = set()
    imported: set[str] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        stack += [c for c in current.co_consts if isinstance(c, types.CodeType)]
        for instruction in dis.get_instructions(current):
            if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                read.add(str(instruction.argval))
            elif instruction.opname == "IMPORT_NAME":
                imported.add(str(instruction.argval))
    return frozenset(read), frozenset(imported)

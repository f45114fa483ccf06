"""What library decorators make of notebook functions, stored by value so a fresh kernel has it.

``functools.lru_cache`` / ``cache`` wrappers, ``typing.NewType`` and ``ParamSpec`` pickle by
reference to ``__main__.<name>``, which a fresh kernel does not have (and which, in the kernel
that stored them, may name another object by the time they load); a ``singledispatch`` function
holds a weak dictionary, and a ``cached_property`` (before Python 3.12) a lock, neither of which
pickles. Each is stored as what it is made from, and made again on load: the functions inside
are notebook functions like any other (they read the live globals, see ``functions``).

An ``lru_cache`` function is stored with what its cache holds (the cell that stored it may have
called it: re-running that cell would leave those results cached, and a cached function that
reads a global answers with them after the global changed), in least-recently-used order, and
with ``cache_info()``'s hit and miss counts, made again by calls that hit and miss as many times.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import pickle
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

_LRU_CACHE_WRAPPER: type = type(functools.lru_cache(lambda: None))
_SINGLEDISPATCH_CODE = getattr(functools.singledispatch(lambda value: value), "__code__", None)
# Attributes a wrapper gets when it is made again (not stored, so not set twice).
_MADE_BY_LRU_CACHE = frozenset({"__wrapped__", "cache_parameters"})
_MADE_BY_SINGLEDISPATCH = frozenset({"register", "dispatch", "registry", "_clear_cache",
                                     "__wrapped__"})  # fmt: skip


def _importable(obj: Any) -> bool:
    """Whether pickling ``obj`` by reference (its module and qualified name) gives it back.
    Never for the notebook's own ``__main__``, which a fresh kernel fills in only later."""
    module = sys.modules.get(getattr(obj, "__module__", None) or "__main__")
    if module is None or module.__name__ == "__main__":
        return False
    found: Any = module
    for part in str(getattr(obj, "__qualname__", "")).split("."):
        found = getattr(found, part, None)
    return found is obj


CacheEntry = tuple[tuple[Any, ...], dict[str, Any], Any]
"""One cached call: positional arguments, keyword arguments, result."""


def _cache_of(wrapper: Any, links: int) -> tuple[dict[Any, Any], list[Any]]:
    """The cache dict of an lru_cache wrapper holding ``links`` entries in its recency list
    (none when unbounded), and those entries' keys and results, least recent first. CPython
    keeps them out of reach but of the garbage collector, which is shown the wrapper's type,
    each entry's key, result and type, then the cache."""
    referents = gc.get_referents(wrapper)
    found = referents[1 + 3 * links] if len(referents) > 1 + 3 * links else None
    if type(found) is not dict or found is wrapper.__dict__:
        raise pickle.PicklingError(f"cannot read the cache of {wrapper!r}")
    return found, referents[1 : 1 + 3 * links]


@functools.cache
def _keyword_mark() -> Any:
    """What lru_cache puts between positional and keyword arguments in a key."""
    probe = functools.lru_cache(maxsize=None)(lambda **kwargs: None)
    probe(k=1)
    (key,) = _cache_of(probe, 0)[0]
    return key[0]


def _call_of(key: Any, typed: bool) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments of the call lru_cache made ``key`` of (its ``make_key``, undone)."""
    if type(key) is not tuple:
        return (key,), {}  # one str or int argument, untyped
    mark = _keyword_mark()
    at = next((i for i, part in enumerate(key) if part is mark), None)
    if at is None:
        return (key[: len(key) // 2] if typed else key), {}
    args, rest = key[:at], key[at + 1 :]
    pairs = (len(rest) - len(args)) // 3 if typed else len(rest) // 2
    return args, {rest[2 * i]: rest[2 * i + 1] for i in range(pairs)}


def _cache_entries(wrapper: Any, maxsize: int | None, typed: bool) -> list[CacheEntry]:
    """What an lru_cache wrapper holds, least recently used first."""
    size = wrapper.cache_info().currsize
    if not size:
        return []
    cache, links = _cache_of(wrapper, 0 if maxsize is None else size)
    if maxsize is None:
        items = list(cache.items())
    else:
        items = [(links[i], links[i + 1]) for i in range(0, len(links), 3)]
        if any(cache.get(key) is None for key, _ in items):
            raise pickle.PicklingError(f"cannot read the cache of {wrapper!r}")
    if len(items) != size or len(cache) != size:
        raise pickle.PicklingError(f"cannot read the cache of {wrapper!r}")
    return [(*_call_of(key, typed), result) for key, result in items]


@functools.cache
def _filler_code(free: int) -> types.CodeType:
    """Code that returns the next stored result whatever it is called with (keyword
    default ``_nbcellar_next``), with ``free`` free variables (so it may stand for the code of
    a function with a closure of that size)."""
    cells = "".join(f"    c{i} = None\n" for i in range(free))
    uses = ", ".join(f"c{i}" for i in range(free)) or "None"
    source = (
        f"def outer():\n{cells}    def fill(*args, _nbcellar_next, **kwargs):\n"
        f"        {uses}\n        return _nbcellar_next()\n    return fill\n"
    )
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    return namespace["outer"]().__code__  # type: ignore[no-any-return]


def lru_cached(
    function: types.FunctionType,
    maxsize: int | None,
    typed: bool,
    attributes: Mapping[str, Any],
    entries: list[CacheEntry],
    hits: int = 0,
    misses: int = 0,
) -> Any:
    """An lru_cache wrapper of ``function`` holding ``entries`` (in that order, so the same
    one is dropped first), that has hit and missed as often as the one stored. It calls a copy
    of ``function``: the copy stands in, returning the stored results (or raising, for the
    misses that left no entry), while the wrapper is filled by calling it; after, it is
    ``function``'s own code, globals, closure and defaults again."""
    runs = types.FunctionType(
        function.__code__, function.__globals__, function.__name__, function.__defaults__,
        function.__closure__,
    )  # fmt: skip
    runs.__kwdefaults__ = function.__kwdefaults__
    wrapper = functools.lru_cache(maxsize=maxsize, typed=typed)(runs)
    lost = max(misses - len(entries), 0)  # misses whose entries are gone (or never made)
    if entries or lost:
        code, defaults, kwdefaults = runs.__code__, runs.__defaults__, runs.__kwdefaults__
        runs.__code__ = _filler_code(len(code.co_freevars))
        runs.__defaults__ = None
        try:
            runs.__kwdefaults__ = {"_nbcellar_next": _miss}
            for _ in range(lost):
                with contextlib.suppress(_Missed):
                    wrapper(_Missing())
            results = iter([result for _, _, result in entries])
            runs.__kwdefaults__ = {"_nbcellar_next": results.__next__}
            for args, kwargs, _ in entries:
                wrapper(*args, **kwargs)
        finally:
            runs.__code__, runs.__defaults__, runs.__kwdefaults__ = code, defaults, kwdefaults
    if entries:  # hits on the most recent entry leave the order as it is
        args, kwargs, _ = entries[-1]
        for _ in range(hits):
            wrapper(*args, **kwargs)
    wrapper.__dict__.update(attributes)
    wrapper.__wrapped__ = function
    return wrapper


class _Missed(Exception):
    """Raised by the stand-in function for a miss that leaves no entry."""


class _Missing:
    """An argument no cache holds (hashed by identity)."""


def _miss() -> Any:
    raise _Missed


def _reduce_lru_cache(wrapper: Any) -> Any:
    if _importable(wrapper):
        return NotImplemented
    parameters = wrapper.cache_parameters()
    maxsize, typed = parameters["maxsize"], parameters["typed"]
    attributes = {k: v for k, v in wrapper.__dict__.items() if k not in _MADE_BY_LRU_CACHE}
    info = wrapper.cache_info()
    entries = _cache_entries(wrapper, maxsize, typed)
    return lru_cached, (
        wrapper.__wrapped__, maxsize, typed, attributes, entries, info.hits, info.misses,
    )  # fmt: skip


def single_dispatch(
    function: Callable[..., Any],
    registrations: list[tuple[Any, Callable[..., Any]]],
    attributes: Mapping[str, Any],
) -> Any:
    dispatcher = functools.singledispatch(function)
    for cls, implementation in registrations:
        dispatcher.register(cls, implementation)
    dispatcher.__dict__.update(attributes)
    return dispatcher


def _reduce_singledispatch(dispatcher: types.FunctionType) -> Any:
    function = dispatcher.__wrapped__  # type: ignore[attr-defined]
    registrations = [
        (cls, implementation)
        for cls, implementation in dispatcher.registry.items()  # type: ignore[attr-defined]
        if not (cls is object and implementation is function)
    ]
    attributes = {k: v for k, v in dispatcher.__dict__.items() if k not in _MADE_BY_SINGLEDISPATCH}
    return single_dispatch, (function, registrations, attributes)


def cached_property(
    function: Callable[..., Any], attrname: str | None, doc: str | None
) -> functools.cached_property[Any]:
    made = functools.cached_property(function)
    made.attrname = attrname  # (set by __set_name__ when the class was made, not again)
    made.__doc__ = doc
    return made


def _reduce_cached_property(prop: functools.cached_property[Any]) -> Any:
    return cached_property, (prop.func, prop.attrname, prop.__doc__)


def new_type(name: str, qualname: str, supertype: Any, module: str) -> Any:
    made = typing.NewType(name, supertype)  # type: ignore[misc]
    made.__qualname__ = qualname
    made.__module__ = module
    return made


def _reduce_new_type(made: Any) -> Any:
    if _importable(made):
        return NotImplemented
    return new_type, (made.__name__, made.__qualname__, made.__supertype__, made.__module__)


def param_spec(name: str, bound: Any, covariant: bool, contravariant: bool, module: str) -> Any:
    made = typing.ParamSpec(  # type: ignore[misc]
        name, bound=bound, covariant=covariant, contravariant=contravariant
    )
    made.__module__ = module
    return made


def _reduce_param_spec(made: Any) -> Any:
    if _importable(made):
        return NotImplemented
    return param_spec, (made.__name__, made.__bound__, made.__covariant__,
                        made.__contravariant__, made.__module__)  # fmt: skip


REDUCERS: dict[type, Callable[[Any], Any]] = {
    _LRU_CACHE_WRAPPER: _reduce_lru_cache,
    functools.cached_property: _reduce_cached_property,
    typing.NewType: _reduce_new_type,
    typing.ParamSpec: _reduce_param_spec,
}
"""By exact type: a reduce tuple, or NotImplemented to pickle the object as usual."""


def reduce_function(function: types.FunctionType) -> Any:
    """A reduce tuple for a function a library decorator made, or NotImplemented."""
    if function.__code__ is _SINGLEDISPATCH_CODE and not _importable(function):
        return _reduce_singledispatch(function)
    return NotImplemented

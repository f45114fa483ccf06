"""Values to bytes and back: pickle protocol 5, large buffers out of band, functions by value.

``dump_values`` pickles a mapping of names to values into one small stream plus the list of raw
buffers it refers to (numpy and pandas data, pyarrow buffers, large bytes), which the caller writes
as separate blobs. It also reports which objects each value holds that another value might share,
so the namespace layer can keep aliases together.

Functions and classes defined in ``__main__`` (a notebook) are pickled by value with cloudpickle,
with the source of the cells they come from (see ``sources``), as is what library decorators make
of them (see ``decorated``); importable ones by reference. Loaded into a namespace, functions read
it as their globals (see ``functions``). Arrays that are views of a base array also being saved
come back as views of that base (when both are pickled in one stream).
"""

from __future__ import annotations

import copyreg
import gc
import io
import pickle
import sys
import threading
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from nbcellar.store.classes import ClassMaking
from nbcellar.store.decorated import REDUCERS, reduce_function
from nbcellar.store.fidelity import TIED_TO_THE_PROCESS, lost_in_a_copy, reduces_its_own_way
from nbcellar.store.functions import FunctionMaking, mark_notebook_function
from nbcellar.store.sources import CellFiles

EXTERNAL = "nbcellar-var"
OUT_OF_BAND_THRESHOLD = 64 << 10
"""Buffers at least this large are stored as blobs of their own; smaller ones stay in the stream."""

# Objects of these types never count as shared state between two variables.
_NOT_SHARED: tuple[type, ...] = (
    str, bytes, int, float, complex, bool, type(None), tuple, frozenset, range, slice, type,
    types.ModuleType, types.BuiltinFunctionType, types.CodeType, pickle.PickleBuffer, memoryview,
)  # fmt: skip


class Stream:
    """A pickle stream as the pickler writes it, frame by frame: kept as chunks (a large stream
    is never grown and copied into one piece, nor held at all when only its hash is wanted) and
    hashed as it comes, after ``prefix``. Past ``limit`` bytes, with ``spill`` (a factory of
    writable sinks), the stream so far and the rest go to a sink instead of memory."""

    def __init__(
        self,
        prefix: bytes = b"",
        keep: bool = True,
        limit: int | None = None,
        spill: Callable[[], Any] | None = None,
    ) -> None:
        import xxhash

        self.prefix = prefix
        self.chunks: list[bytes] = []
        self.size = 0
        self.digest = xxhash.xxh3_128(prefix)
        self.sink: Any = None  # where a stream longer than ``limit`` went (prefix included)
        self._keep = keep
        self._limit = limit if spill is not None else None
        self._spill = spill

    def write(self, data: Any) -> int:
        if self.sink is not None:
            self.sink.write(data)
        elif self._keep:
            self.chunks.append(data if type(data) is bytes else bytes(data))
        self.digest.update(data)
        size = memoryview(data).nbytes
        self.size += size
        if self._keep and self._limit is not None and self.size > self._limit:
            assert self._spill is not None
            self.sink = self._spill()
            self.sink.write(self.prefix)
            for chunk in self.chunks:
                self.sink.write(chunk)
            self.chunks, self._keep = [], False
        return size

    def getvalue(self) -> bytes:
        return b"".join(self.chunks)


@dataclass
class Dumped:
    """One pickle stream, the raw buffers it refers to (in order), and its shareable objects."""

    stream: Stream
    buffers: list[memoryview]
    shared: set[int] = field(default_factory=set)
    # How many distinct arrays looked at each root array's memory.
    roots: dict[int, int] = field(default_factory=dict)
    # Every object the pickler met stays alive until grouping is done, so the ids in ``shared``
    # cannot be reused by objects created while pickling other values.
    keepalive: list[Any] = field(default_factory=list, repr=False)
    # Modules whose functions or classes the stream names (stored by reference, not by value).
    references: set[str] = field(default_factory=set)
    # Outside variables the stream refers to by name (see ``external`` in dump_values).
    external_used: set[str] = field(default_factory=set)


def _bytes_from(buffer: Any) -> bytes:
    return bytes(buffer)


def _bytearray_from(buffer: Any) -> bytearray:
    return bytearray(buffer)


def _view_of(
    base: Any, offset: int, shape: tuple[int, ...], strides: tuple[int, ...], dtype: Any
) -> Any:
    import numpy as np

    return np.ndarray(shape, dtype=dtype, buffer=base, offset=offset, strides=strides)


def _contiguous(array: Any) -> Any:
    return array


class ClosedFile:
    """Stands for a file that was already closed when saved (``with open(...) as f`` leaves one
    behind): it has the name and mode, and refuses I/O exactly as a closed file does."""

    closed = True

    def __init__(self, name: Any, mode: str) -> None:
        self.name = name
        self.mode = mode

    def __repr__(self) -> str:
        return f"<closed file {self.name!r}, mode {self.mode!r}>"

    def __getattr__(self, attribute: str) -> Any:
        raise ValueError("I/O operation on closed file.")


def _closed_file(name: Any, mode: str) -> ClosedFile:
    return ClosedFile(name, mode)


def root_array(array: Any) -> Any:
    """The ndarray that owns the memory ``array`` looks at (itself if it owns it)."""
    import numpy as np

    while True:
        base = array.base
        if isinstance(base, memoryview) and isinstance(base.obj, np.ndarray):
            base = base.obj  # an array made on another's buffer (as a restored view is)
        if not isinstance(base, np.ndarray):
            return array
        array = base


def _make_pickler_classes() -> tuple[type, type]:
    import cloudpickle

    class Pickler(cloudpickle.Pickler):  # type: ignore[misc]
        """cloudpickle with out-of-band bytes, contiguous copies of strided arrays, and views."""

        shared_roots: set[int]
        root_counts: dict[int, int]
        references: set[str]
        cell_files: CellFiles
        notebook: dict[str, Any] | None  # the notebook's globals: the __main__ module's

        external: Mapping[int, str]
        reduced_external: Mapping[int, str]
        external_used: set[str]

        def reducer_override(self, obj: Any) -> Any:
            kind = type(obj)
            if self.reduced_external:  # (see _dump)
                name = self.reduced_external.get(id(obj))
                if name is not None:
                    self.external_used.add(name)
                    return _external_value, (name,)
            if kind in _PLAIN_TYPES:  # (most objects: nothing below is for them)
                return NotImplemented
            if kind is types.ModuleType:
                if made_at_run_time(obj):
                    raise pickle.PicklingError(
                        f"module {obj.__name__} was made by code (no file to import it from)"
                    )
                self.references.add(obj.__name__)
            elif isinstance(obj, types.FunctionType | type):
                if kind.__module__ == "_ctypes" and not identity_free(obj):
                    raise pickle.PicklingError(
                        f"ctypes type {obj.__qualname__} made at run time (a loaded C library)"
                    )
                module = getattr(obj, "__module__", None)
                if isinstance(module, str) and module not in ("__main__", "builtins"):
                    self.references.add(module)
                if isinstance(obj, types.FunctionType):
                    # A function stored by value reads its module's globals when loaded.
                    home = obj.__globals__.get("__name__")
                    if isinstance(home, str) and home != module and home in sys.modules:
                        self.references.add(home)
                    reduced = reduce_function(obj)
                    if reduced is not NotImplemented:
                        return reduced
                    reduced = super().reducer_override(obj)
                    return mark_notebook_function(reduced, obj, self.notebook)
            elif kind is types.CodeType:
                return self.cell_files.reduce(obj)
            tied = TIED_TO_THE_PROCESS.get(kind)
            if tied is not None:
                raise pickle.PicklingError(tied)
            reducer = REDUCERS.get(kind)
            if reducer is not None:
                reduced = reducer(obj)
                if reduced is not NotImplemented:
                    return reduced
            if kind is bytes or kind is bytearray:
                if len(obj) >= OUT_OF_BAND_THRESHOLD:
                    rebuild = _bytes_from if kind is bytes else _bytearray_from
                    return rebuild, (pickle.PickleBuffer(obj),)
                return NotImplemented
            numpy = sys.modules.get("numpy")
            if numpy is not None and kind is numpy.ndarray and not obj.dtype.hasobject:
                return self._reduce_array(obj, numpy)
            if isinstance(obj, io.IOBase) and obj.closed:
                return _closed_file, (getattr(obj, "name", None), getattr(obj, "mode", ""))
            if kind.__module__ == "__main__" and reduces_its_own_way(kind):
                lost = lost_in_a_copy(obj)
                if lost:
                    raise pickle.PicklingError(lost)
            if _is_plain(kind):
                _PLAIN_TYPES.add(kind)
                return NotImplemented
            return super().reducer_override(obj)

        def _reduce_array(self, array: Any, np: Any) -> Any:
            root = root_array(array)
            self.root_counts[id(root)] = self.root_counts.get(id(root), 0) + 1
            if root is not array and id(root) in self.shared_roots and root.flags.c_contiguous:
                offset = array.__array_interface__["data"][0] - root.__array_interface__["data"][0]
                if 0 <= offset < max(root.nbytes, 1):
                    return _view_of, (root, offset, array.shape, array.strides, array.dtype)
            if not (array.flags.c_contiguous or array.flags.f_contiguous):
                return _contiguous, (np.ascontiguousarray(array),)
            return NotImplemented

    class ReferringPickler(Pickler):
        """Also stores the objects of other variables as references by name, whatever their
        type. (A pickler with ``persistent_id`` calls it for every object, atoms included: only
        used when one of those objects is of a type ``reducer_override`` is not shown.)"""

        def persistent_id(self, obj: Any) -> Any:
            name = self.external.get(id(obj))
            if name is None:
                return None
            self.external_used.add(name)
            return (EXTERNAL, name)

    return Pickler, ReferringPickler


def made_at_run_time(module: types.ModuleType) -> bool:
    """A module made by ``types.ModuleType(...)`` (and perhaps put in ``sys.modules``): by
    reference it would not import in another process, nor in this one after a restart."""
    return (
        getattr(module, "__spec__", None) is None
        and getattr(module, "__loader__", None) is None
        and module.__name__ not in ("__main__", "builtins")
        and module.__name__ not in sys.builtin_module_names
    )


_PICKLERS: tuple[type, type] | None = None


def _pickler_class(referring: bool) -> type:
    global _PICKLERS
    if _PICKLERS is None:
        _PICKLERS = _make_pickler_classes()
    return _PICKLERS[1] if referring else _PICKLERS[0]


class _Pauses:
    """How many pauses of the cyclic collector are under way, and whether it was on before
    the first (what the notebook set: see :func:`collection_enabled`)."""

    count = 0
    enabled_outside = True


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Pickling a large object graph allocates many objects, which triggers the cyclic garbage
    collector over and over; it frees nothing here (reference counting still runs). Held
    across a whole save, the objects made meanwhile are gone before it runs again, instead of
    being moved to older generations, whose collections cost most. Nests; the collector is
    on again after the last pause ends if it was on before the first."""
    if _Pauses.count == 0:
        _Pauses.enabled_outside = gc.isenabled()
    _Pauses.count += 1
    gc.disable()
    try:
        yield
    finally:
        _Pauses.count -= 1
        if _Pauses.count == 0 and _Pauses.enabled_outside:
            gc.enable()


def collection_enabled() -> bool:
    """Whether the cyclic collector is on, as the notebook set it (``gc.disable()``), not as
    a pause of nbcellar's leaves it."""
    return _Pauses.enabled_outside if _Pauses.count else gc.isenabled()


def enable_collection(enabled: bool) -> None:
    """Turn the cyclic collector on or off as ``gc.enable()`` / ``gc.disable()`` would (during
    a pause: once it ends)."""
    if _Pauses.count:
        _Pauses.enabled_outside = enabled
    elif enabled:
        gc.enable()
    else:
        gc.disable()


def _dump(
    values: Mapping[str, Any],
    shared_roots: Iterable[int],
    external: Mapping[int, str],
    sink: Any,
    pause_gc: bool = True,
) -> tuple[Any, list[memoryview]]:
    buffers: list[memoryview] = []

    def keep(buffer: pickle.PickleBuffer) -> bool:
        raw = buffer.raw()
        if raw.nbytes < OUT_OF_BAND_THRESHOLD:
            return True
        buffers.append(raw)
        return False

    # Outside objects become references by name: through reducer_override when the caller
    # knows that hook sees every one of them (ReducibleExternals: one call per object of those
    # types), else through persistent_id (one call per object pickled, atoms included).
    referring = bool(external) and not isinstance(external, ReducibleExternals)
    kind: Any = _pickler_class(referring)
    # cloudpickle's reducers before copyreg's, as its ChainMap has them, in one dict: the
    # pickler looks up every object's type there (a ChainMap miss costs a raised KeyError).
    kind.dispatch_table = {**copyreg.dispatch_table, **kind._dispatch_table}
    pickler = kind(sink, protocol=5, buffer_callback=keep)
    # Views of an outside array stay its views.
    pickler.shared_roots = set(shared_roots) | set(external)
    pickler.root_counts = {}
    pickler.references = set()
    pickler.cell_files = CellFiles()
    main = sys.modules.get("__main__")
    pickler.notebook = getattr(main, "__dict__", None)
    pickler.external = external
    pickler.reduced_external = {} if referring else external
    pickler.external_used = set()
    if pause_gc:
        with no_cycle_collection():
            pickler.dump(dict(values))
    else:
        pickler.dump(dict(values))
    return pickler, buffers


def hash_stream(values: Mapping[str, Any], prefix: bytes = b"") -> tuple[Stream, list[memoryview]]:
    """The stream (hashed, not kept) and buffers :func:`dump_values` gives for ``values`` with
    no outside references: enough to fingerprint them, and faster."""
    stream = Stream(prefix, keep=False)
    _, buffers = _dump(values, (), {}, stream)
    return stream, buffers


# Where a search for what a value holds stops: shared by everything, never state of its own.
STOP: tuple[type, ...] = (type, types.ModuleType, types.FunctionType)
_ATOMS = frozenset({int, float, complex, str, bytes, bool, type(None)})


def held_objects(value: Any) -> set[int]:
    """Ids of the objects inside ``value`` (itself included, atoms not), following the
    references the garbage collector sees (containers, instances' attributes) and, for arrays,
    the array owning their memory: what another variable might hold too. Only live objects,
    so an id kept from here names the same object as long as the value is left unchanged.
    (Functions, classes and modules are not looked into; nor are arrays of Python objects.)"""
    import gc

    numpy = sys.modules.get("numpy")
    array = numpy.ndarray if numpy is not None else ()
    held: set[int] = set()
    add, referents = held.add, gc.get_referents
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        obj = pop()
        ident = id(obj)
        if ident in held or type(obj) in _ATOMS or isinstance(obj, STOP):
            continue
        add(ident)
        if isinstance(obj, array):
            add(id(root_array(obj)))
            continue
        extend(referents(obj))
    return held


def dump_values(
    values: Mapping[str, Any],
    shared_roots: Iterable[int] = (),
    external: Mapping[int, str] | None = None,
    prefix: bytes = b"",
    keep_limit: int | None = None,
    spill: Callable[[], Any] | None = None,
) -> Dumped:
    """Pickle ``values`` (a dict of names to values) into one stream plus out-of-band buffers.

    ``shared_roots`` are ids of base arrays whose views should be pickled as views.
    ``external`` maps ids of objects that live outside the values (another variable's value) to
    that variable's name: they are stored as a reference by name, not copied, and must be given
    back to :func:`load_values`. The stream is hashed after ``prefix`` as it is written; past
    ``keep_limit`` bytes, with ``spill``, it goes on into ``stream.sink`` (see :class:`Stream`).
    Raises whatever pickling raises for an unpicklable value.
    """
    stream = Stream(prefix, limit=keep_limit, spill=spill)
    pickler, buffers = _dump(values, shared_roots, external or {}, stream)
    memo = pickler.memo.copy()
    verdicts = _SHARED_BY_TYPE
    shared = {
        ident
        for ident, (_, obj) in memo.items()
        if verdicts.get(type(obj)) or (type(obj) not in verdicts and _may_be_shared(obj))
    }
    shared |= set(pickler.root_counts)
    keepalive = [obj for _, obj in memo.values()]
    return Dumped(
        stream,
        buffers,
        shared,
        dict(pickler.root_counts),
        keepalive,
        pickler.references,
        set(pickler.external_used) if external else set(),
    )


def identity_free(value: Any) -> bool:
    """Whether a value comes back as good as itself however it is stored: immutable atoms,
    modules, and classes and functions that pickle by reference (imported again: the very same
    object). Nothing is gained by storing such a value as a reference to the variable holding it."""
    kind = type(value)
    if kind in (int, float, complex, str, bytes, bool, type(None), range):
        return True
    if kind is types.ModuleType:
        return True
    if kind is types.BuiltinFunctionType:  # (not a method bound to an object: ``log.append``)
        return isinstance(value.__self__, types.ModuleType | None)
    if isinstance(value, type | types.FunctionType):
        module = sys.modules.get(getattr(value, "__module__", None) or "__main__")
        if module is None or module.__name__ == "__main__":
            return False
        found: Any = module
        for part in str(getattr(value, "__qualname__", "")).split("."):
            found = getattr(found, part, None)
        return found is value
    return False


# Library types none of the pickler's own reductions (nor cloudpickle's: classes, functions)
# are for, found as they are met. (Not the notebook's classes: they come and go.)
_PLAIN_TYPES: set[type] = set()


def _is_plain(kind: type) -> bool:
    numpy = sys.modules.get("numpy")
    return not (
        issubclass(kind, types.FunctionType | type | types.ModuleType | types.CodeType | io.IOBase)
        or kind.__module__ == "__main__"
        or kind in TIED_TO_THE_PROCESS
        or kind in REDUCERS
        or kind is bytes
        or kind is bytearray
        or (numpy is not None and kind is numpy.ndarray)
    )


def _may_be_shared(obj: Any) -> bool:
    kind = type(obj)
    verdict = _SHARED_BY_TYPE.get(kind)
    if verdict is None:
        if kind is types.FunctionType:
            return bool(obj.__module__ == "__main__")
        verdict = _type_may_be_shared(kind)
        _SHARED_BY_TYPE[kind] = verdict
    return verdict


def _type_may_be_shared(kind: type) -> bool:
    if issubclass(kind, _NOT_SHARED):
        return False
    numpy = sys.modules.get("numpy")
    return not (numpy is not None and issubclass(kind, numpy.dtype | numpy.generic))


# Whether objects of a type may be shared state, by type (functions are decided one by one).
_SHARED_BY_TYPE: dict[type, bool] = {}


class MissingExternal(pickle.UnpicklingError):
    """A stored value refers to a variable that is not there to refer to."""


class ReducibleExternals(dict[int, str]):
    """Outside objects (id -> variable name) none of which is an atom, str, bytes, dict, list,
    set, frozenset or tuple: the types a pickler's ``reducer_override`` is never shown."""

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> dict[int, str]:
        """``values`` (name -> object) as outside objects, marked reducible when they are."""
        found = {id(v): n for n, v in values.items()}
        return (
            cls(found)
            if not any(isinstance(v, _NOT_OVERRIDDEN) for v in values.values())
            else found
        )


_NOT_OVERRIDDEN = (int, float, bool, type(None), str, bytes, dict, list, set, frozenset, tuple)
_LOADING = threading.local()


def _external_value(name: str) -> Any:
    """In a stored value, the object of another variable (see ReducibleExternals)."""
    external: Mapping[str, Any] = getattr(_LOADING, "external", {})
    if name in external:
        return external[name]
    raise MissingExternal(f"refers to variable {name!r}, which is not defined")


class _Unpickler(pickle.Unpickler):
    external: Mapping[str, Any]
    # cloudpickle's makers of functions and classes, replaced (see ``functions``, ``classes``).
    made: dict[tuple[str, str], Any]

    def find_class(self, module: str, name: str) -> Any:
        made = self.made.get((module, name))
        return made if made is not None else super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) == 2 and pid[0] == EXTERNAL:
            name = str(pid[1])
            if name in self.external:
                return self.external[name]
            raise MissingExternal(f"refers to variable {name!r}, which is not defined")
        raise pickle.UnpicklingError(f"unknown persistent reference {pid!r}")


def load_values(
    stream: bytes | memoryview,
    buffers: Iterable[Any],
    external: Mapping[str, Any] | None = None,
    namespace: MutableMapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Inverse of :func:`dump_values`: the buffers are given in the order they were dumped.
    Notebook functions anywhere in the values read ``namespace`` as their globals (the one the
    values are loaded into); without it, stored copies of the globals they read."""
    unpickler = _Unpickler(io.BytesIO(stream), buffers=buffers)
    unpickler.external = external or {}
    making = FunctionMaking(namespace)
    unpickler.made = {**making.by_name(), **ClassMaking().by_name()}
    outer = getattr(_LOADING, "external", None)
    _LOADING.external = unpickler.external
    try:
        result = unpickler.load()
    finally:
        _LOADING.external = outer
        making.give_back()
    if not isinstance(result, dict):
        raise pickle.UnpicklingError("stream does not hold a namespace mapping")
    return result


def unpicklable_reason(value: Any, error: BaseException) -> str:
    """One line saying why ``value`` could not be stored."""
    text = str(error).strip().splitlines()
    detail = text[0] if text else type(error).__name__
    return f"{type(error).__name__}: {detail}"

"""Recording a cell run as a cache entry: its values saved, the entry indexed once they are.

The values are pickled and hashed when the cell ends and written in the background while the
next cells run; the entry is indexed by the writing thread only once every value it names is
stored, so a reader never finds an entry whose values are missing.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbcellar.cache.ambient import AmbientChange
from nbcellar.cache.entries import AMBIENT, INPLACE, KIND, RESULTS, CacheEntry
from nbcellar.cache.holding import identity_groups
from nbcellar.cache.inplace import capture_state, restorable_in_place
from nbcellar.cache.inputs import is_ipython_name
from nbcellar.cache.keys import CellKey, KeyInputs
from nbcellar.cache.sources import is_project_module, is_source_version, module_version
from nbcellar.cache.storage import CacheStore, RecordWriter
from nbcellar.cache.versions import ABSENT, UNKNOWN, Version
from nbcellar.logbook import RESERVED, rest, summarize
from nbcellar.runfiles import RESERVED_FILES
from nbcellar.store.pickling import identity_free
from nbcellar.store.records import Snapshot, VariableRecord

LATEST = "cell-latest"
"""Records of the last key each cell code ran under (to say why a later key missed)."""
STATE_AFTER = "cell-state-after"
"""Records, by code, of the kernel state's versions a cell that is never stored left (a
``%cd`` cell): what a simulated run (nbcellar status) continues from."""
VALUES_AFTER = "cell-values-after"
"""Records, by key (or, for a cell that cannot be keyed, by code and the versions of what it
reads), of the versions a cell that was run and not stored gave what it wrote (their content):
a simulated run takes a cell run again alike as making them alike (a ``!ls`` output)."""
REPLAYED = "cell-replayed"
"""Records, by key, of the values a cell run again for what its entry could not store made
anew (unlike the stored ones: a path in a new temporary folder), by name (true) or as stored
(false): what a simulated run takes such a run to make."""
CELL_SNAPSHOT_LABEL = "cell "
"""How the snapshot of a cache entry's values is labelled (then the entry's key)."""
DRAWN = "cell-drawn"
"""Records, under a key, of the random generators the cell drew from: its entries are kept
under a variant of the key for each state those had before it (see :func:`variant_key`)."""


def unstored_key(code_hash: str, reads: Mapping[str, Version]) -> str:
    """What a cell that cannot be keyed is known by in :data:`VALUES_AFTER`."""
    import json

    import xxhash

    text = json.dumps([code_hash, sorted((n, v.to_json()) for n, v in reads.items())])
    return "code:" + xxhash.xxh3_128_hexdigest(text.encode("utf-8"))


def lock_name(key: CellKey) -> str:
    return f"cell:{key}"


def variant_key(key: CellKey, drawn: Mapping[str, str]) -> CellKey:
    """The key of a cell that draws from global random generators, in their states ``drawn``
    (generator -> version before the cell)."""
    import json

    import xxhash

    text = json.dumps([key, sorted(drawn.items())], separators=(",", ":"))
    return CellKey(xxhash.xxh3_128_hexdigest(text.encode("utf-8")))


@dataclass(frozen=True)
class Effect:
    """What a cell run did to its namespace, as the cache saw it."""

    written: tuple[str, ...]  # rebound, created or deleted
    mutated: tuple[str, ...]  # changed in place (with what holds the same objects)
    deleted: tuple[str, ...]
    outputs: Sequence[Mapping[str, Any]] = ()
    seconds: float = 0.0
    logged: Sequence[tuple[str, Any]] = ()
    files: Mapping[str, bytes] = field(default_factory=dict)
    ambient: AmbientChange = field(default_factory=AmbientChange)
    ambient_after: Mapping[str, str] = field(default_factory=dict)  # versions after the cell
    results: Sequence[Any] = ()  # the values its results showed, in order (``_``, ``Out[n]``)
    # The versions before the cell of the random generators its entries are kept by (those
    # it drew from, or, for a cell that drew from them in another run, those it did not).
    variant: Mapping[str, str] = field(default_factory=dict)
    # The files it opened outside the artifact folder (see nbcellar.cache.files).
    touched: Mapping[str, str] = field(default_factory=dict)
    wrote: tuple[str, ...] = ()


def record_entry(
    store: CacheStore,
    key: CellKey,
    inputs: KeyInputs,
    effect: Effect,
    namespace: Mapping[str, Any],
    unchanged: Callable[[str], bool],
    known: Mapping[str, Version],
    project: Path,
    release_lock: bool,
) -> tuple[CacheEntry, Snapshot]:
    """Save what the cell wrote or changed and index its entry once the values are stored
    (under ``key``, or a variant of it when the cell drew from global random generators).

    ``unchanged(name)``: the name is bound to the object it was bound to before the cell (an
    input left as it was is referred to by name, not stored). ``known``: the versions the
    cache knew before the cell ran. With ``release_lock`` the writing thread releases the right to
    compute ``key`` once the entry is indexed (or dropped).
    """
    # Notebook functions and classes changed in place are put back into the live objects on
    # restore: their state is stored, and the values holding them refer to them by name.
    inplace = {
        n: capture_state(namespace[n])
        for n in effect.mutated
        if n not in effect.written and restorable_in_place(namespace[n])
    }
    names = [
        n
        for n in (*effect.written, *effect.mutated)
        if n not in effect.deleted and n not in inplace
    ]
    stored = set(names) | set(inplace)
    # Inputs the cell left as they were (same object, not rebound, not changed) are referred
    # to by name, so a value holding one of them comes back holding whatever that name holds
    # then: the same object, with its aliases, as in a run. (Not numbers, strings, modules or
    # importable functions and classes: they come back as good as themselves.)
    external = {
        n: namespace[n]
        for n in inputs.names
        if n in namespace and n not in stored and unchanged(n) and not identity_free(namespace[n])
    } | {n: namespace[n] for n in inplace}
    # Any other variable a value holds is referred to by name too: it is not saved here, and
    # a copy inside the value would no longer be that variable after a restore.
    others = {
        n: v for n, v in namespace.items()
        if n not in external and n not in stored and not is_ipython_name(n)
        and not identity_free(v) and not isinstance(v, types.ModuleType)
    }  # fmt: skip
    built: list[CacheEntry] = []
    ready = threading.Event()
    drawn = dict(effect.variant or effect.ambient.drawn)
    stored_key = variant_key(key, drawn) if drawn else key

    def commit(records: RecordWriter, ok: bool) -> None:
        """In the writing thread: index the entry once its values are stored."""
        ready.wait()
        try:
            if ok and built:
                entry = built[0]
                records.put_record(KIND, stored_key, entry.to_bytes(), entry.snapshot_id)
                if drawn:
                    records.put_record(DRAWN, key, " ".join(sorted(drawn)).encode(), None)
                records.put_record(LATEST, inputs.code_hash, stored_key.encode(), None)
        finally:
            if release_lock:
                records.unlock(lock_name(key))

    # Display forms of what the cell logged are made before its values are pickled: drawing a
    # logged figure is then part of the state that is stored.
    logged = tuple(summarize(list(effect.logged)))
    try:
        kept = rest(list(effect.logged))
        changes = dict(effect.ambient.changes)
        snapshot = store.save_namespace(
            {n: namespace[n] for n in names}
            | ({RESERVED: kept} if kept else {})
            | ({RESERVED_FILES: dict(effect.files)} if effect.files else {})
            | ({AMBIENT: changes} if changes else {})
            | ({RESULTS: tuple(effect.results)} if effect.results else {})
            | ({INPLACE: inplace} if inplace else {}),
            label=f"{CELL_SNAPSHOT_LABEL}{key}",
            external=external,
            others=others,
            background=True,
            then=commit,
        )
    except BaseException:
        ready.set()
        raise
    reserved = (RESERVED, RESERVED_FILES, AMBIENT, RESULTS, INPLACE)
    rerun = [effect.ambient.unrestorable] if effect.ambient.unrestorable else []
    unstored = [n for n in effect.mutated if n in snapshot.unserializable]
    if unstored:
        kinds = ", ".join(f"{n} ({type(namespace[n]).__name__})" for n in unstored)
        rerun.append(f"it may change {kinds}, which cannot be stored: only running it does that")
    if RESULTS in snapshot.unserializable:
        rerun.append(f"its result cannot be stored ({snapshot.unserializable[RESULTS]})")
    try:
        entry = CacheEntry(
            key=stored_key,
            inputs=inputs,
            snapshot_id=snapshot.id,
            written=tuple(n for n in effect.written if n not in effect.deleted),
            mutated=effect.mutated,
            deleted=effect.deleted,
            unserializable={n: r for n, r in snapshot.unserializable.items() if n not in reserved},
            outputs=tuple(effect.outputs),
            seconds=effect.seconds,
            versions={
                v.name: content_version(v, inputs, known, project)
                for v in snapshot.variables
                if v.value_key is not None and v.name not in reserved
            },
            logged=logged,
            files=tuple(sorted(effect.files)),
            same=identity_groups(effect.mutated, namespace),
            before={n: known.get(n, UNKNOWN) for n in effect.mutated if n not in inputs.names},
            ambient=tuple(changes),
            drawn=drawn,
            rerun="; ".join(rerun),
            ambient_after=dict(effect.ambient_after),
            inplace=tuple(sorted(inplace)),
            touched=dict(effect.touched),
            wrote=effect.wrote,
        )
        built.append(entry)
    finally:
        ready.set()  # the writing thread waits for the entry, or for nothing
    return entry, snapshot


def content_version(
    variable: VariableRecord,
    inputs: KeyInputs,
    known: Mapping[str, Version],
    project: Path,
) -> Version:
    """A stored value's version: its content hash, with what it refers to instead of
    containing (the source of project code, the versions of other variables it holds)."""
    assert variable.value_key is not None
    refers: list[str] = []
    for module in variable.references:
        if not is_project_module(module):
            continue
        version = module_version(module, project)
        if is_source_version(version):
            refers.append(f"{module}={version}")
    for name in variable.refers_to:
        held = inputs.names.get(name) or known.get(name, ABSENT)
        refers.append(f"{name}@{_token(held)}")
    return Version.stored(variable.value_key, refers)


def _token(version: Version) -> str:
    if version in (ABSENT, UNKNOWN):
        return version.kind
    return ":".join((version.kind, version.token, *version.refers))

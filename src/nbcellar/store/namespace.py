"""Saving and loading namespaces: each variable its own stored value, aliases kept together.

Saving pickles every variable on its own, then joins variables that hold the same mutable
objects (``b = a``, a dict holding a list bound elsewhere, an array and its view) into one group
pickled as a whole, so they come back sharing. Values that cannot be pickled are recorded with
the reason; modules are recorded by name and imported again on load.
"""

from __future__ import annotations

import functools
import importlib
import secrets
import socket
import threading
import time
import types
import weakref
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any

from nbcellar.store.blobs import BlobStore, CorruptObject
from nbcellar.store.index import Index
from nbcellar.store.pickling import (
    Dumped,
    ReducibleExternals,
    made_at_run_time,
    unpicklable_reason,
)
from nbcellar.store.records import Restored, Snapshot, SnapshotId, VariableRecord
from nbcellar.store.records_table import Published, RecordBook
from nbcellar.store.values import PreparedValue, dump, prepare, read_value

Prepared = list[tuple[list[str], PreparedValue, dict[str, Dumped]]]
Committed = Callable[[RecordBook, bool], None]
"""Called once a save is indexed (True) or abandoned (False), with the records of the
connection it used."""


class ChangedWhileSaving(Exception):
    """A value changed in memory while a background save was writing it; the save is dropped."""

    def __init__(self, key: str) -> None:
        super().__init__(f"object {key} changed while it was being written")


def new_snapshot_id() -> SnapshotId:
    return SnapshotId(time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(4))


def writer_id() -> str:
    import os

    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def type_name(value: object) -> str:
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


@dataclass
class _Saved:
    """What this process last saved under a name: which object, its record, what it held."""

    ref: Callable[[], Any]
    record: VariableRecord
    shared: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, obj: Any, record: VariableRecord, shared: set[int] | None = None) -> _Saved:
        try:  # a weak reference when possible, so a dropped value is not kept alive
            ref: Callable[[], Any] = weakref.ref(obj)
        except TypeError:
            ref = functools.partial(_same, obj)
        return cls(ref, record, shared or set())

    def holds(self, obj: Any) -> bool:
        return self.ref() is obj


def _same(obj: Any) -> Any:
    return obj


class _Groups:
    """Union-find over variable names."""

    def __init__(self, names: Iterable[str]) -> None:
        self.parent = {n: n for n in names}

    def find(self, name: str) -> str:
        while self.parent[name] != name:
            self.parent[name] = self.parent[self.parent[name]]
            name = self.parent[name]
        return name

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)

    def members(self) -> list[list[str]]:
        groups: dict[str, list[str]] = {}
        for name in self.parent:
            groups.setdefault(self.find(name), []).append(name)
        return list(groups.values())


def _linked(items: Mapping[str, Any]) -> dict[str, list[str]]:
    """Values one of whose attributes is another of these values (an axes and its figure):
    they end up in one group anyway, so they are pickled together from the start instead of
    alone first. Name -> the names linked with it."""
    owner = {id(v): n for n, v in items.items() if not isinstance(v, types.ModuleType)}
    groups = _Groups(items)
    linked = False
    for name, value in items.items():
        attributes = getattr(value, "__dict__", None)
        if type(attributes) is not dict or len(attributes) > 1000 or isinstance(value, type):
            continue
        for attribute in attributes.values():
            other = owner.get(id(attribute))
            if other is not None and other != name:
                groups.union(name, other)
                linked = True
    if not linked:
        return {}
    return {m: members for members in groups.members() if len(members) > 1 for m in members}


def _group_by_sharing(dumps: Mapping[str, Dumped]) -> list[list[str]]:
    groups = _Groups(dumps)
    owner: dict[int, str] = {}
    for name, dumped in dumps.items():
        for ident in dumped.shared:
            other = owner.setdefault(ident, name)
            if other != name:
                groups.union(name, other)
    return groups.members()


class NamespaceWriter:
    """Saves namespaces into a store; remembers what it saved, for incremental saves."""

    def __init__(self, blobs: BlobStore, index: Index) -> None:
        self.blobs = blobs
        self.index = index
        self.saved: dict[str, _Saved] = {}
        self._external: dict[int, str] = {}
        self.background: list[threading.Thread] = []
        # Why background saves failed (a full disk), in order: the caller says so once.
        self.failures: list[str] = []
        self.published: Published | None = None  # told of the records ``then`` puts

    def save(
        self,
        namespace: Mapping[str, Any],
        *,
        label: str = "",
        parent: SnapshotId | None = None,
        changed: Iterable[str] | None = None,
        external: Mapping[str, Any] | None = None,
        others: Mapping[str, Any] | None = None,
        background: bool = False,
        then: Committed | None = None,
    ) -> Snapshot:
        self._external = ReducibleExternals.of(external or {})
        self._inside: dict[str, str] = {}  # value -> the value whose pickle holds it
        # A background save writes long streams out while they are pickled, not from memory.
        self._spill = self.blobs.spill if background else None
        self._held_by: dict[int, str] = {}  # object id -> the first value whose pickle held it
        items = {
            k: v for k, v in namespace.items() if not (k.startswith("__") and k.endswith("__"))
        }
        records: dict[str, VariableRecord] = {}
        dumps: dict[str, Dumped] = {}
        reused = self._reusable(items, changed)
        self._together: dict[int, frozenset[str]] = {}  # id of a dump -> the values it holds
        self._linked = _linked({n: v for n, v in items.items() if n not in reused})
        self._dump_each([n for n in items if n not in reused], items, dumps, records)
        while True:  # a new value may share objects with one the caller said was unchanged
            new_ids = set().union(*(d.shared for d in dumps.values()))
            pulled = {n for n in reused if self.saved[n].shared & new_ids}
            if not pulled:
                break
            reused -= pulled
            self._dump_each(sorted(pulled), items, dumps, records)
        records.update({name: self.saved[name].record for name in reused})
        found = self._others_inside(dumps, others or {}, items, external or {})
        if found:  # pickle again, those held by reference (rare: a value holding a variable)
            return self.save(
                namespace, label=label, parent=parent, changed=changed,
                external={**(external or {}), **found}, background=background, then=then,
            )  # fmt: skip

        prepared: list[tuple[list[str], PreparedValue, dict[str, Dumped]]] = []
        for members in _group_by_sharing(dumps):
            group = self._dump_group(members, items, dumps)
            if group is not None:
                prepared.append((members, prepare(group), {m: dumps[m] for m in members}))
                continue
            # Pickled alone each member worked; keep them apart then.
            self._dump_each([m for m in members if m in self._inside], items, dumps, records,
                            alone=True)  # fmt: skip
            prepared += [([m], prepare(dumps[m]), {m: dumps[m]}) for m in members if m in dumps]

        # Grouping is done: the objects the pickler met (state copies made by __reduce__ among
        # them) need not outlive the save, nor the background write.
        for dumped in dumps.values():
            dumped.keepalive.clear()
        writer = self._register(prepared)
        for members, value, member_dumps in prepared:
            refers_to = tuple(
                sorted(set().union(*(d.external_used for d in member_dumps.values())))
            )
            for name in members:
                records[name] = VariableRecord(
                    name,
                    type_name(items[name]),
                    value_key=value.key,
                    nbytes=value.nbytes,
                    references=tuple(sorted(member_dumps[name].references)),
                    refers_to=refers_to,
                )
                self.saved[name] = _Saved.of(items[name], records[name], member_dumps[name].shared)
        self.saved = {n: s for n, s in self.saved.items() if n in items and n in records}
        for name, record in records.items():
            if record.value_key is None:
                self.saved.pop(name, None)

        snapshot_id = new_snapshot_id()
        snapshot = Snapshot(
            id=snapshot_id,
            created=time.time(),
            variables=tuple(records[name] for name in items),
            label=label,
            parent=parent,
            nbytes=sum({r.value_key: r.nbytes for r in records.values() if r.value_key}.values()),
            written_bytes=self._missing_bytes(prepared),
        )
        if background:
            thread = threading.Thread(
                target=self._finish,
                args=(snapshot, prepared, writer, then, True),
                name=f"nbcellar-save-{snapshot_id}",
            )
            thread.start()
            self.background.append(thread)
            return snapshot
        written = self._finish(snapshot, prepared, writer, then, background=False)
        return replace(snapshot, written_bytes=written)

    @staticmethod
    def _others_inside(
        dumps: Mapping[str, Dumped],
        others: Mapping[str, Any],
        items: Mapping[str, Any],
        external: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The variables of ``others`` whose objects the pickled values hold."""
        if not others or not dumps:
            return {}
        referred = {id(v) for v in external.values()}
        candidates = {
            id(v): n for n, v in others.items() if n not in items and id(v) not in referred
        }
        distinct = list({id(d): d for d in dumps.values()}.values())
        return {
            name: others[name]
            for ident, name in candidates.items()
            if any(ident in d.shared for d in distinct)
        }

    def _dump_each(
        self,
        names: Iterable[str],
        items: Mapping[str, Any],
        dumps: dict[str, Dumped],
        records: dict[str, VariableRecord],
        alone: bool = False,
    ) -> None:
        """Pickle each named value on its own (or with the values it is linked to, see
        :func:`_linked`), or record why it cannot be stored."""
        for name in names:
            value = items[name]
            if isinstance(value, types.ModuleType) and not made_at_run_time(value):
                records[name] = VariableRecord(name, "module", module=value.__name__)
                continue
            if not alone and self._dump_linked(name, items, dumps):
                continue
            # A value inside one already pickled (a figure, held by its axes) is pickled with it
            # anyway: what that pickle saw covers it.
            holder = self._held_by.get(id(value))
            if holder is not None and holder in dumps and not alone:
                dumps[name] = dumps[holder]
                self._inside[name] = holder
                continue
            self._inside.pop(name, None)
            try:
                dumps[name] = dump({name: value}, external=self._external, spill=self._spill)
                for ident in dumps[name].shared:
                    self._held_by.setdefault(ident, name)
            except Exception as exc:  # any failure to pickle is recorded, never fatal
                records[name] = VariableRecord(
                    name, type_name(value), unserializable=unpicklable_reason(value, exc)
                )

    def _dump_linked(self, name: str, items: Mapping[str, Any], dumps: dict[str, Dumped]) -> bool:
        """Pickle ``name`` with the values linked to it, in one stream; False if it has none
        or they cannot be pickled together (then each goes alone)."""
        if name in dumps and id(dumps[name]) in self._together:
            return True  # pickled with an earlier one
        together = [m for m in self._linked.get(name, ()) if m not in dumps]
        if len(together) < 2:
            return False
        try:
            both = dump({m: items[m] for m in together}, external=self._external, spill=self._spill)
        except Exception:
            return False
        self._together[id(both)] = frozenset(together)
        for member in together:
            dumps[member] = both
            self._inside[member] = member  # (re-pickled alone if the group cannot be kept)
        for ident in both.shared:
            self._held_by.setdefault(ident, together[0])
        return True

    def _reusable(self, items: Mapping[str, Any], changed: Iterable[str] | None) -> set[str]:
        """Names the caller says are unchanged and that still hold the object saved last time."""
        if changed is None:
            return set()
        changed = set(changed)
        candidates = {
            n for n, v in items.items()
            if n not in changed and n in self.saved and self.saved[n].holds(v)
            and self.saved[n].record.value_key is not None
        }  # fmt: skip
        # A group is reused whole or not at all.
        by_value: dict[str, set[str]] = {}
        for name, saved in self.saved.items():
            if saved.record.value_key:
                by_value.setdefault(saved.record.value_key, set()).add(name)
        return {
            n for n in candidates if by_value[self.saved[n].record.value_key or ""] <= candidates
        }

    @staticmethod
    def _roots(members: list[str], dumps: dict[str, Dumped]) -> frozenset[int]:
        """Base arrays more than one array of the group looks at: their views stay views."""
        counts: dict[int, int] = {}
        for member in members:
            for root, count in dumps[member].roots.items():
                counts[root] = counts.get(root, 0) + count
        return frozenset(root for root, count in counts.items() if count > 1)

    def _dump_group(
        self, members: list[str], items: Mapping[str, Any], dumps: dict[str, Dumped]
    ) -> Dumped | None:
        first = dumps[members[0]]
        if self._together.get(id(first)) == frozenset(members) and all(
            count == 1 for count in first.roots.values()
        ):
            return first  # pickled together already, and no array views another
        roots = self._roots(members, dumps)
        if len(members) == 1 and not roots:
            return first
        try:
            return dump(
                {m: items[m] for m in members},
                shared_roots=roots,
                external=self._external,
                spill=self._spill,
            )
        except Exception:
            return None

    def _register(self, prepared: Prepared) -> str:
        """Protect the blobs about to be written from gc (see maintenance.gc)."""
        keys = {v.key for _, v, _ in prepared if not v.inline}
        keys |= {k for _, v, _ in prepared for k, _ in v.buffers}
        me = writer_id()
        with self.index.write() as db:
            db.executemany(
                "INSERT INTO pending VALUES (?, ?, ?)", [(k, me, time.time()) for k in keys]
            )
        return me

    def _missing_bytes(self, prepared: Prepared) -> int:
        missing = 0
        for _, value, _ in prepared:
            missing += sum(size for key, size in value.buffers if not self.blobs.has(key))
            if not value.inline and not self.blobs.has(value.key):
                missing += value.size
        return missing

    def _write_blobs(self, prepared: Prepared, verify: bool) -> int:
        """Write every blob not already stored. With ``verify``, each written file is hashed
        again: values may have changed in memory while a background write read them."""
        written = 0
        for _, value, _ in prepared:
            for (key, size), view in zip(value.buffers, value.views, strict=True):
                if not self.blobs.has(key):
                    if verify:
                        if not self.blobs.put_checked(view, key):
                            raise ChangedWhileSaving(key)
                    else:
                        self.blobs.put(view, key)
                    written += size
            if value.spilled is not None:  # written while pickled; only the tail is left
                if not self.blobs.has(value.key):
                    written += value.size
                value.spilled.commit(self.blobs.path(value.key), value.tail)
            elif not value.inline and not self.blobs.has(value.key):
                self.blobs.put_parts(value.parts, value.key)
                written += value.size
        return written

    def _finish(
        self,
        snapshot: Snapshot,
        prepared: Prepared,
        writer: str,
        then: Committed | None,
        background: bool,
    ) -> int:
        """Write the blobs and index the snapshot, then call ``then`` with the connection used."""
        index = Index(self.index.path) if background else self.index
        try:
            written = self._write_blobs(prepared, verify=background)
            written += self._record(snapshot, prepared, writer, index)
            if then is not None:
                then(RecordBook(index, self.published), True)
            return written
        except BaseException as exc:
            with index.write() as db:
                db.execute("DELETE FROM pending WHERE writer = ?", (writer,))
            if then is not None:
                then(RecordBook(index, self.published), False)
            if not background:
                raise
            if not isinstance(exc, ChangedWhileSaving):  # (dropped on purpose)
                self.failures.append(_why_failed(snapshot.label, exc))
            return 0
        finally:
            if background:
                index.close()

    def flush(self) -> None:
        """Wait until every background save has been written and indexed."""
        while self.background:
            self.background.pop().join()

    def take_failures(self) -> list[str]:
        """Why background saves failed since the last call (each once)."""
        found, self.failures = self.failures, []
        return found

    def _record(self, snapshot: Snapshot, prepared: Prepared, writer: str, index: Index) -> int:
        """Index the snapshot in one transaction; return the bytes of new inline values."""
        written = 0
        with index.write() as db:
            for members, value, _ in prepared:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO stored_values (key, nbytes, names, data) "
                    "VALUES (?, ?, ?, ?)",
                    (
                        value.key,
                        value.nbytes,
                        ",".join(members),
                        value.blob if value.inline else None,
                    ),
                )
                if value.inline:
                    written += value.size * cursor.rowcount
                    continue
                db.executemany(
                    "INSERT OR IGNORE INTO value_blobs VALUES (?, ?, ?)",
                    [(value.key, i, k) for i, (k, _) in enumerate(value.buffers)],
                )
                for key, size in ((value.key, value.size), *value.buffers):
                    db.execute(
                        "INSERT OR IGNORE INTO blobs VALUES (?, ?, ?)",
                        (key, size, self.blobs.signature(key)),
                    )
            db.execute(
                "INSERT INTO snapshots VALUES (?, ?, ?, ?, ?)",
                (snapshot.id, snapshot.created, snapshot.label, snapshot.parent, snapshot.nbytes),
            )
            db.executemany(
                "INSERT INTO variables VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (snapshot.id, v.name, v.value_key, v.type_name, v.nbytes, v.module,
                     v.unserializable)
                    for v in snapshot.variables
                ],
            )  # fmt: skip
            db.execute("DELETE FROM pending WHERE writer = ?", (writer,))
        return written


def read_snapshot(index: Index, snapshot_id: str) -> Snapshot:
    from nbcellar.errors import NbcellarError

    with index.read() as db:
        row = db.execute(
            "SELECT id, created, label, parent, nbytes FROM snapshots WHERE id = ?", (snapshot_id,)
        ).fetchone()
        if row is None:
            raise NbcellarError(f"no snapshot {snapshot_id!r} in {index.path.parent}")
        variables = db.execute(
            "SELECT name, type_name, value_key, nbytes, module, unserializable FROM variables "
            "WHERE snapshot_id = ? ORDER BY rowid",
            (snapshot_id,),
        ).fetchall()
    return Snapshot(
        id=SnapshotId(row[0]),
        created=row[1],
        label=row[2],
        parent=row[3],
        nbytes=row[4],
        variables=tuple(VariableRecord(*v) for v in variables),
    )


def load(
    blobs: BlobStore,
    index: Index,
    snapshot: Snapshot,
    names: Iterable[str] | None = None,
    external: Mapping[str, Any] | None = None,
    namespace: MutableMapping[str, Any] | None = None,
) -> Restored:
    """Load the named variables of a snapshot (all when ``names`` is None); functions in them
    read ``namespace`` as their globals."""
    wanted = set(snapshot.names if names is None else names)
    values: dict[str, object] = {}
    missing: dict[str, str] = {}
    by_value: dict[str, list[str]] = {}
    for variable in snapshot.variables:
        if variable.name not in wanted:
            continue
        if variable.unserializable:
            missing[variable.name] = f"not stored: {variable.unserializable}"
        elif variable.module:
            try:
                values[variable.name] = importlib.import_module(variable.module)
            except ImportError as exc:
                missing[variable.name] = f"module {variable.module} cannot be imported: {exc}"
        elif variable.value_key:
            by_value.setdefault(variable.value_key, []).append(variable.name)
    for name in sorted(wanted - set(snapshot.names)):
        missing[name] = "not in this snapshot"
    signatures, inline = _lookups(index, by_value)
    for key, members in by_value.items():
        try:
            loaded = read_value(blobs, key, signatures, inline.get(key), external, namespace)
        except CorruptObject as exc:
            for name in members:
                missing[name] = f"damaged in the store: {exc}"
            continue
        except Exception as exc:  # e.g. a class that no longer imports
            for name in members:
                missing[name] = f"cannot be loaded: {unpicklable_reason(None, exc)}"
            continue
        for name in members:
            values[name] = loaded[name]
    ordered = {n: values[n] for n in snapshot.names if n in values}
    return Restored(values=ordered, missing=missing)


def _lookups(
    index: Index, by_value: Mapping[str, list[str]]
) -> tuple[dict[str, int], dict[str, bytes]]:
    """File signatures of the buffers of these values, and the values kept inline."""
    if not by_value:
        return {}, {}
    keys = list(by_value)
    signatures: dict[str, int] = {}
    inline: dict[str, bytes] = {}
    with index.read() as db:
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            signatures.update(
                db.execute(
                    "SELECT b.key, b.signature FROM value_blobs v JOIN blobs b "
                    f"ON b.key = v.blob_key WHERE v.value_key IN ({marks})",
                    chunk,
                ).fetchall()
            )
            inline.update(
                db.execute(
                    f"SELECT key, data FROM stored_values WHERE key IN ({marks}) "
                    "AND data IS NOT NULL",
                    chunk,
                ).fetchall()
            )
    return signatures, inline


def _why_failed(label: str, exc: BaseException) -> str:
    what = label or "values"
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{what}: {exc.strerror}{where}"
    return f"{what}: {type(exc).__name__}: {exc}"

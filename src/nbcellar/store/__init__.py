"""The state store: content-addressed, incremental, memory-mapped snapshots of namespaces.

>>> from nbcellar.store import open_store
>>> store = open_store()                    # .nbcellar/ found like .git, created on first use
>>> snap = store.save_namespace({"x": 1})   # a Snapshot record
>>> store.load_namespace(snap.id)           # {'x': 1}
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterable, Mapping, MutableMapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from nbcellar.errors import NbcellarError
from nbcellar.store import records_table
from nbcellar.store.blobs import BlobStore, CorruptObject, ObjectKey
from nbcellar.store.index import Index
from nbcellar.store.location import (
    ENV_VAR,
    STORE_DIRNAME,
    URL_FILE,
    find_store_root,
    shared_url,
)
from nbcellar.store.maintenance import (
    GcReport,
    StoreInfo,
    VerifyReport,
    gc,
    info,
    remove_stale_temporaries,
    verify,
)
from nbcellar.store.mirror import SHARED_GRACE_SECONDS, Mirror
from nbcellar.store.namespace import Committed, NamespaceWriter, load, read_snapshot
from nbcellar.store.records import Restored, Snapshot, SnapshotId, VariableRecord
from nbcellar.store.shared import Remote


class RestoreWarning(UserWarning):
    """A variable of a snapshot could not be loaded (damaged, or not storable)."""


class Store:
    """One store folder: ``objects/`` blobs, ``index.sqlite``, ``runs/``."""

    def __init__(self, root: Path, fsync: bool = False) -> None:
        self.root = root
        url = shared_url(root)
        # A shared store is reached before anything is made here: a wrong URL, key or bucket
        # leaves nothing behind.
        remote = _open_remote(root, url) if url is not None else None
        try:
            if not root.exists():  # private, unless made shared by its owner (see file_mode)
                root.parent.mkdir(parents=True, exist_ok=True)
                root.mkdir(mode=0o700, exist_ok=True)
            (root / "runs").mkdir(exist_ok=True)
        except OSError as exc:  # a file, a read-only or another user's folder, /dev/null
            raise StoreIndexError(
                f"cannot use {root} as a store: {exc.strerror or exc}; give --store a folder you "
                "can write to"
            ) from None
        self.blobs = BlobStore(root / "objects", fsync=fsync, mode=file_mode(root))
        self.index = open_index(root, self.blobs)
        remove_stale_temporaries(self.blobs)
        self._writer = NamespaceWriter(self.blobs, self.index)
        self.mirror: Mirror | None = None
        self._closed = False
        self._share_failures: list[str] = []
        if remote is not None:
            self._attach(remote)

    def _attach(self, remote: Remote) -> None:
        """Make this local store the cache of ``remote``: publish what is put, bring in (on
        open, and on a lookup that finds nothing) what others put, fetch blobs on load."""
        mirror = self.mirror = Mirror(self.root, remote, self.blobs)
        self.blobs.fetch = mirror.fetch_blob
        self._writer.published = self._published
        try:
            mirror.publish(adopt=True)  # (what processes that stopped here left unsent)
        except NbcellarError as exc:
            self._share_failures.append(str(exc))
        mirror.sync_if_due(self.index)

    @property
    def url(self) -> str | None:
        """The URL of the shared store this folder caches; None for a local store."""
        return None if self.mirror is None else self.mirror.remote.url

    def _published(
        self, db: Any, kind: str, key: str, payload: bytes, snapshot_id: str | None
    ) -> None:
        if self.mirror is None:
            return
        try:
            self.mirror.record_put(db, kind, key, payload, snapshot_id)
        except NbcellarError as exc:  # kept queued: sent by the next publish, or next open
            self._share_failures.append(f"not shared yet: {exc}")

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def save_namespace(
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
        """Save every variable of ``namespace``; only values not already stored are written.

        ``changed``: names the caller knows may have changed since this store object's last
        save. Other names that still hold the very object saved then are not pickled again.
        Without it every value is pickled and hashed (correct whatever happened in between).

        ``external``: variables that are not saved but that saved values may hold (an alias of
        one, a list inside one): such objects are stored as references by name, and the same
        mapping given to :meth:`restore` puts them back, so aliasing survives partial saves.
        ``others``: more such variables, referred to only if a saved value turns out to hold
        one (found while pickling, then pickled again; a save that holds none costs nothing).

        ``background``: pickle and hash now, write and index in a thread, so the caller goes on
        at once; each written blob is hashed again from the file, and if a value changed in the
        meantime the save is dropped. ``then(records, ok)`` runs after it is indexed (ok=True)
        or dropped, in the writing thread, with a RecordBook on that thread's connection.
        :meth:`flush` waits.
        """
        return self._writer.save(
            namespace,
            label=label,
            parent=parent,
            changed=changed,
            external=external,
            others=others,
            background=background,
            then=then,
        )

    def flush(self) -> None:
        """Wait for background saves to be written and indexed (and, for a shared store,
        sent)."""
        self._writer.flush()
        if self.mirror is not None:
            try:
                self.mirror.publish()
            except NbcellarError as exc:
                self._share_failures.append(f"not shared yet: {exc}")

    def take_write_failures(self) -> list[str]:
        """Why background saves failed since the last call (a full disk), each said once; the
        store stays consistent: a failed save leaves nothing of itself."""
        shared, self._share_failures = self._share_failures, []
        if self.mirror is not None:
            shared += self.mirror.failures
            self.mirror.failures = []
        return self._writer.take_failures() + list(dict.fromkeys(shared))

    def snapshot(self, snapshot_id: str) -> Snapshot:
        return read_snapshot(self.index, snapshot_id)

    def snapshots(self) -> list[Snapshot]:
        rows = self.index.db.execute("SELECT id FROM snapshots ORDER BY created").fetchall()
        return [self.snapshot(row[0]) for row in rows]

    def restore(
        self,
        snapshot_id: str,
        names: Iterable[str] | None = None,
        external: Mapping[str, Any] | None = None,
        namespace: MutableMapping[str, Any] | None = None,
    ) -> Restored:
        """Load a snapshot's variables; say for each name that could not be loaded, why.

        ``namespace``: where the values are going. Every notebook function inside them (in a
        variable, a closure, a container, an instance, a class) reads it as its globals, as the
        original read the notebook's: a later change of a global reaches it. Without it, they
        read copies of the globals they read when stored.
        """
        snapshot = self.snapshot(snapshot_id)
        if self.mirror is not None:
            names = None if names is None else list(names)
            # (what cannot be fetched, the load names value by value)
            with contextlib.suppress(CorruptObject):
                self.mirror.fetch_snapshot(self.index, snapshot_id, names)
        return load(self.blobs, self.index, snapshot, names, external, namespace)

    def load_namespace(
        self,
        snapshot_id: str,
        names: Iterable[str] | None = None,
        namespace: MutableMapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The snapshot's variables (or the named subset); arrays come back memory-mapped;
        functions read ``namespace`` as their globals (see :meth:`restore`).

        A variable that cannot be loaded (damaged in the store, never storable) is left out
        with a :class:`RestoreWarning` naming it; the others load.
        """
        restored = self.restore(snapshot_id, names, namespace=namespace)
        for name, reason in restored.missing.items():
            warnings.warn(f"{name}: {reason}", RestoreWarning, stacklevel=2)
        return dict(restored.values)

    def info(self) -> StoreInfo:
        return info(self.blobs, self.index)

    def verify(self) -> VerifyReport:
        """Check every blob here; for a shared store, blobs not fetched here yet count as
        present when the shared store has them."""
        report = verify(self.blobs, self.index)
        if self.mirror is None:
            return report
        from dataclasses import replace

        remote = self.mirror.remote.object_keys()
        here = "missing from the store"
        kept = tuple(d for d in report.damaged if d.problem != here or d.key not in remote)
        return replace(report, damaged=kept)

    def gc(self, remote: bool = False, grace: float = SHARED_GRACE_SECONDS) -> GcReport:
        """Remove the blobs no snapshot uses. For a shared store, from this local cache; with
        ``remote``, from the shared store too: the objects no record of any client uses (once
        every client's records are read from the journal) that were written more than
        ``grace`` seconds ago (a younger one may be on its way for a record not yet written).
        A writer that had found one of them there sends it again (see Mirror.collect); at
        worst a cell whose entry lost an object runs again, never a wrong value."""
        if remote and self.mirror is None:
            raise NbcellarError(
                f"{self.root} is not a shared store: a plain 'nbcellar store gc' collects it"
            )
        report = gc(self.blobs, self.index)
        if not remote or self.mirror is None:
            return report
        from dataclasses import replace

        removed, freed, kept = self.mirror.collect(self.index, grace)
        return replace(report, shared_removed=removed, shared_freed_bytes=freed, shared_kept=kept)

    def put_record(
        self, kind: str, key: str, payload: bytes, snapshot_id: str | None = None
    ) -> None:
        """Keep ``payload`` under ``(kind, key)``, replacing any earlier record."""
        records_table.put_record(self.index, kind, key, payload, snapshot_id)
        self._published(self.index.db, kind, key, payload, snapshot_id)

    def get_record(self, kind: str, key: str) -> records_table.Record | None:
        found = records_table.get_record(self.index, kind, key)
        if found is None and self._synced():
            found = records_table.get_record(self.index, kind, key)
        return found

    def has_records(self, kind: str, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` have a record of this kind."""
        keys = list(keys)
        found = records_table.has_records(self.index, kind, keys)
        if len(found) < len(set(keys)) and self._synced():
            found = records_table.has_records(self.index, kind, keys)
        return found

    def _synced(self) -> bool:
        """For a shared store: bring in what others recorded, unless that was done a moment
        ago; whether it was done."""
        return self.mirror is not None and self.mirror.sync_if_due(self.index)

    def list_records(self, kind: str) -> list[records_table.Record]:
        """Every record of a kind, oldest first."""
        self._synced()
        return records_table.list_records(self.index, kind)

    def record_times(self, kind: str) -> dict[str, float]:
        """When each record of a kind was last written (seconds since the epoch), by key."""
        self._synced()
        return records_table.record_times(self.index, kind)

    def get_records(self, kind: str, keys: Iterable[str]) -> list[records_table.Record]:
        """The records of a kind under ``keys`` (those there are), in one query a chunk."""
        return records_table.get_records(self.index, kind, list(keys))

    def delete_records(self, kind: str, keys: Iterable[str]) -> int:
        """Forget records and the snapshots only they held; the snapshots forgotten."""
        keys = list(keys)
        gone = records_table.delete_records_and_snapshots(self.index, kind, keys)
        if self.mirror is not None:
            self.mirror.records_deleted(kind, keys)
        return gone

    def delete_unheld_snapshots(self, label_prefix: str) -> int:
        """Forget the snapshots labelled ``label_prefix...`` that no record holds any more (a
        cache entry written again over an earlier one); the number forgotten. (Not those of
        the last ten minutes: a writer indexes a snapshot just before the record holding it.)"""
        import time

        with self.index.write() as db:
            found = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM snapshots WHERE substr(label, 1, ?) = ? AND created < ? "
                    "AND id NOT IN (SELECT snapshot_id FROM records WHERE snapshot_id IS NOT NULL)",
                    (len(label_prefix), label_prefix, time.time() - 600),
                )
            ]
            for snapshot in found:
                records_table.forget_snapshot(db, snapshot)
        return len(found)

    def delete_record(self, kind: str, key: str) -> None:
        records_table.delete_record(self.index, kind, key)
        if self.mirror is not None:
            self.mirror.records_deleted(kind, [key])

    def try_lock(self, name: str) -> bool:
        """Take a lock across processes if it is free (or its owner died); see :meth:`lock`."""
        return records_table.try_lock(self.index, name)

    def unlock(self, name: str) -> None:
        records_table.unlock(self.index, name)

    def lock(self, name: str) -> AbstractContextManager[bool]:
        """A lock across processes; yields True if it was free, False if we had to wait."""
        return records_table.locked(self.index, name)

    def delete_snapshot(self, snapshot_id: str) -> None:
        """Forget a snapshot; its blobs go at the next gc unless another snapshot uses them."""
        with self.index.write() as db:
            records_table.forget_snapshot(db, snapshot_id)

    def close(self) -> None:
        """Finish background writes and let go of the index (again: nothing). SQLite's
        connection holds itself through its statement cache, so a store dropped unclosed keeps
        its files open until Python's cycle collector happens to run."""
        if self._closed:
            return
        self._closed = True
        self.flush()
        if self.mirror is not None:
            self.mirror.close()
        self.index.close()


class StoreIndexError(NbcellarError):
    """The store's index is missing, unreadable, or not the one its objects were indexed by."""


def _open_remote(root: Path, url: str) -> Remote:
    """The shared store at ``url``, checked (see Remote.open); a local folder made for it just
    now, that holds nothing but the URL, is removed again when it cannot be used."""
    try:
        return Remote.open(url)
    except NbcellarError:
        if root.is_dir() and {p.name for p in root.iterdir()} <= {URL_FILE}:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
        raise


def _device_full(root: Path) -> bool:
    """Whether the file system holding ``root`` has (next to) no byte left for us."""
    import shutil

    try:
        return shutil.disk_usage(root).free < 1 << 16
    except OSError:
        return False


def open_index(root: Path, blobs: BlobStore) -> Index:
    """The store's index, checked to be the one its objects belong to.

    A store knows it had an index: the id its index was made with is kept beside the objects
    (``objects/index-id``). An index lost, truncated or replaced by another while the objects
    stay is one clear error, and nothing is changed (a new empty index would have had
    ``store gc`` delete every object)."""
    import sqlite3
    import uuid

    path = root / "index.sqlite"
    marker = blobs.root / "index-id"
    recorded = marker.read_text().strip() if marker.exists() else None
    lost = not path.exists() or path.stat().st_size == 0
    if lost and (recorded is not None or any(True for _ in blobs.iter_keys())):
        raise StoreIndexError(
            f"{path} is missing or empty but the store's objects are there; put the index back "
            f"from a backup, or move {root} aside to start a new store (nothing was changed)"
        )
    index: Index | None = None
    try:
        index = Index(path)
        row = index.db.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
        if row is None:
            with index.write() as db:
                new = uuid.uuid4().hex
                db.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)", (new,))
                row = db.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
        own = str(row[0])
    except sqlite3.DatabaseError as exc:
        if index is not None:
            index.close()
        if not os.access(root, os.W_OK) or not os.access(path, os.W_OK):
            raise StoreIndexError(
                f"the store {root} is read-only here ({exc}); nbcellar writes to its store: "
                "copy it somewhere you can write to and give that to --store"
            ) from None
        if _device_full(root):
            raise StoreIndexError(
                f"no space left on the device of the store {root} (its index cannot even "
                "open); free some space there, or run with --no-cache (nothing was changed)"
            ) from None
        raise StoreIndexError(
            f"{path} cannot be read as a store index ({exc}); put it back from a backup, or "
            f"move {root} aside to start a new store (nothing was changed)"
        ) from None
    if recorded is None:
        blobs.root.mkdir(parents=True, exist_ok=True)
        temporary = marker.with_name(f"index-id.{uuid.uuid4().hex}.tmp")
        temporary.write_text(own + "\n")
        try:
            os.link(temporary, marker)  # (the first store opened writes it; others read it)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
        recorded = marker.read_text().strip()
    if recorded != own:
        index.close()
        raise StoreIndexError(
            f"{path} is not the index of the objects in {blobs.root} (another store's, or a new "
            f"one made after it was lost); put the right index back (nothing was changed)"
        )
    return index


def file_mode(root: Path) -> int:
    """The mode of the objects a store writes: private (0600) in a store folder only its owner
    can enter (how a store is made); readable (0640), or writable too (0660), by the group of
    a folder its owner shares with a group (``chmod 2770``)."""
    try:
        folder = root.stat().st_mode
    except OSError:
        return 0o600
    if not folder & 0o070:
        return 0o600
    return 0o660 if folder & 0o020 else 0o640


def open_store(path: str | os.PathLike[str] | None = None, *, fsync: bool = False) -> Store:
    """Open (creating on first use) the store at ``path``, ``$NBCELLAR_STORE``, or the nearest
    ``.nbcellar/`` above the working directory. A URL (``s3://bucket/prefix``,
    ``file:///nfs/store``) opens a shared store through its local cache folder."""
    return Store(find_store_root(path), fsync=fsync)


__all__ = [
    "ENV_VAR",
    "STORE_DIRNAME",
    "CorruptObject",
    "GcReport",
    "ObjectKey",
    "RestoreWarning",
    "Restored",
    "Snapshot",
    "SnapshotId",
    "Store",
    "StoreIndexError",
    "StoreInfo",
    "VariableRecord",
    "VerifyReport",
    "open_store",
]

"""A client's local store as the cache of a shared store: what it records goes up, what others
recorded comes down.

The local store (an ordinary store folder under the user's cache folder, see
:func:`nbcellar.store.location.shared_cache_root`) keeps working as ever: SQLite stays on the
local disk. This module adds, beside it in ``shared.sqlite``:

- publishing: a record put locally is queued (the outbox, so a crash only delays it), then its
  snapshot's blobs the remote lacks are uploaded (in parallel) and one journal entry written:
  objects first, entry last, so no entry ever names an object that is not there;
- syncing: the journal entries written since the last sync (listed by hour, with a margin for
  clocks that differ) are checked and applied to the local index; blobs are fetched when a
  snapshot is loaded, each checked before use.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

from nbcellar.errors import NbcellarError, NbcellarWarning
from nbcellar.store.blobs import BlobStore, CorruptObject, ObjectKey, hash_bytes
from nbcellar.store.index import Index
from nbcellar.store.shared import Remote, TamperedError, hour_folder, in_parallel


class SharedStoreWarning(NbcellarWarning):
    """Something of a shared store was refused (a journal entry that does not verify)."""


SKEW_SECONDS = 300.0
"""How far the clocks of two writers may differ: each sync lists back this far again."""
AWAY_SECONDS = 48 * 3600.0
"""After this long without a sync, the journal's hour folders are listed, not guessed."""
COALESCE_SECONDS = 0.2
"""How long what is put waits for more before it is sent (one journal entry for all)."""
SHARED_GRACE_SECONDS = 3600.0
"""A collection of a shared store keeps the unused objects written less than this long ago
(those of a record on its way: objects are sent before the journal entry naming them)."""
SYNC_EVERY = 1.0
"""At most this often a lookup that finds nothing syncs first (a cell cached a moment ago on
another machine is found)."""

_TABLES = """
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, owner TEXT NOT NULL,
    change TEXT NOT NULL, objects TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS uploaded (key TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS applied (name TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL)
"""


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(bytes(data)).decode("ascii")


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


class Mirror:
    """The link between one local store folder and its shared store."""

    def __init__(self, root: Path, remote: Remote, blobs: BlobStore) -> None:
        self.root = root
        self.remote = remote
        self.blobs = blobs
        self.writer = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}".replace(
            "/", "_"
        )
        self._state = sqlite3.connect(
            root / "shared.sqlite", timeout=60.0, isolation_level=None, check_same_thread=False
        )
        self._state.execute("PRAGMA journal_mode=WAL")
        for statement in _TABLES.split(";"):
            self._state.execute(statement)
        self._lock = threading.RLock()
        self._publishing = threading.Lock()
        self._due = threading.Event()
        self._sender: threading.Thread | None = None
        self._stop = threading.Event()
        # Why publishing in the background failed (the store says so with its write failures).
        self.failures: list[str] = []
        _OPEN.add(self)
        self._said: set[str] = set()
        self._files: dict[str, str] = {}  # (see sync)

    def close(self) -> None:
        """Stop the sending thread (after :meth:`publish`: what is left stays queued)."""
        self._stop.set()
        self._due.set()
        if self._sender is not None:
            self._sender.join(COALESCE_SECONDS + 30)
        with self._publishing, self._lock:
            self._state.close()

    # -- publishing ---------------------------------------------------------------------------

    def record_put(
        self,
        db: sqlite3.Connection,
        kind: str,
        key: str,
        payload: bytes,
        snapshot_id: str | None,
    ) -> None:
        """Queue a record just put in the local index (read through ``db``), then publish."""
        row = db.execute(
            "SELECT created FROM records WHERE kind = ? AND key = ?", (kind, key)
        ).fetchone()
        created = float(row[0]) if row else time.time()
        change: dict[str, Any] = {
            "op": "put", "kind": kind, "key": key, "payload": _b64(payload),
            "created": created, "snapshot": snapshot_id,
        }  # fmt: skip
        objects: list[tuple[str, str | None]] = []
        if snapshot_id is not None:
            change["rows"], keys = snapshot_rows(db, snapshot_id)
            objects += [(k, None) for k in keys]
        if kind == "run":
            change["files"], files = self._run_files(key)
            objects += files
        self._queue(change, objects)

    def records_deleted(self, kind: str, keys: Iterable[str]) -> None:
        """Queue a tombstone: the records go from every client's index too."""
        keys = list(keys)
        if keys:
            self._queue({"op": "delete", "kind": kind, "keys": keys, "created": time.time()}, [])

    def _queue(self, change: dict[str, Any], objects: list[tuple[str, str | None]]) -> None:
        with self._lock:
            self._state.execute(
                "INSERT INTO outbox (owner, change, objects) VALUES (?, ?, ?)",
                (_owner(), json.dumps(change), json.dumps(objects)),
            )
        self._wake()

    def _wake(self) -> None:
        """Have the sending thread publish what is queued in a moment: the records a cell
        puts together (its entry, its latest, ...) then go up as one journal entry."""
        with self._lock:
            self._due.set()
            if self._sender is None or not self._sender.is_alive():
                self._sender = threading.Thread(
                    target=self._send, name="nbcellar-share", daemon=True
                )
                self._sender.start()

    def _send(self) -> None:
        while self._due.wait():
            self._stop.wait(COALESCE_SECONDS)
            self._due.clear()
            if self._stop.is_set():
                return
            try:
                self.publish()
            except Exception as exc:  # kept queued: sent by the next flush, or the next open
                self.failures.append(f"not shared yet: {exc}")

    def publish(self, adopt: bool = False) -> None:
        """Send what is queued: objects first, then one journal entry for all of it. With
        ``adopt``, also what processes of this host that have stopped left queued."""
        with self._publishing:
            with self._lock:
                rows = self._state.execute(
                    "SELECT id, owner, change, objects FROM outbox ORDER BY id"
                ).fetchall()
            mine = [r for r in rows if r[1] == _owner() or (adopt and not _alive(r[1]))]
            if not mine:
                return
            objects: dict[str, str | None] = {}
            for row in mine:
                objects.update(dict(json.loads(row[3])))
            mark = self._after_collections(objects)
            with self._lock:
                known = {k for k in objects if self._is_uploaded(k)}
            missing = [k for k in objects if k not in known]
            in_parallel(lambda k: self._upload(k, objects[k]), missing)
            with self._lock:
                self._state.executemany(
                    "INSERT OR IGNORE INTO uploaded VALUES (?)", [(k,) for k in missing]
                )
            body = json.dumps(
                {"writer": self.writer, "changes": [json.loads(r[2]) for r in mine]},
                separators=(",", ":"),
            ).encode("utf-8")
            name = self.remote.put_entry(self.writer, body)
            if objects and self.remote.newest_gc_mark() != mark:
                # A collection started meanwhile: it may have taken objects this entry names
                # (found there, so not sent); those it took are sent again.
                gone = [k for k in objects if not self.remote.has_object(k)]
                in_parallel(lambda k: self._upload(k, objects[k]), gone)
            with self._lock:
                self._state.execute("BEGIN IMMEDIATE")
                self._state.execute("INSERT OR IGNORE INTO applied VALUES (?, ?)",
                                    (name, time.time()))  # fmt: skip
                self._state.executemany("DELETE FROM outbox WHERE id = ?", [(r[0],) for r in mine])
                self._state.execute("COMMIT")

    def _after_collections(self, objects: Mapping[str, str | None]) -> str:
        """The newest collection mark; if it is newer than the last seen, which objects were
        sent is forgotten (a collection may have deleted them): they are all sent again,
        put-if-absent."""
        if not objects:
            return ""
        mark = self.remote.newest_gc_mark()
        with self._lock:
            row = self._state.execute("SELECT value FROM state WHERE key = 'gc_seen'").fetchone()
            if mark and (row is None or mark > row[0]):
                self._state.execute("BEGIN IMMEDIATE")
                self._state.execute("DELETE FROM uploaded")
                self._state.execute("INSERT OR REPLACE INTO state VALUES ('gc_seen', ?)", (mark,))
                self._state.execute("COMMIT")
        return mark

    # -- collecting ---------------------------------------------------------------------------

    def collect(self, index: Index, grace: float) -> tuple[int, int, int]:
        """Delete the shared store's objects that no record uses, written more than ``grace``
        seconds ago (younger ones may belong to an entry on its way); (removed, bytes freed,
        kept). What is queued here is sent first and a mark written (see _after_collections);
        the objects are listed, then the journal read to its end, so every record any client
        shared before that counts."""
        from nbcellar.store.maintenance import referenced_blobs

        self.publish(adopt=True)
        started = time.time()
        self.remote.put_gc_mark(
            self.writer, json.dumps({"writer": self.writer, "at": started}).encode("utf-8")
        )
        listed = self.remote.objects_written()
        self.sync(index)
        needed = referenced_blobs(index) | self.needed_run_files()
        unused = sorted(
            key for key, (_, written) in listed.items()
            if key not in needed and written < started - grace
        )  # fmt: skip
        self.remote.delete_objects(unused)
        with self._lock:
            self._state.executemany("DELETE FROM uploaded WHERE key = ?", [(k,) for k in unused])
        return len(unused), sum(listed[k][0] for k in unused), len(listed) - len(unused)

    def needed_run_files(self) -> set[str]:
        """The digests of the run files here (every run's folder: executed notebooks,
        sources, artifacts), which the shared store keeps as objects too."""
        found: set[str] = set()
        runs = self.root / "runs"
        if runs.is_dir():
            for path in runs.rglob("*"):
                if path.is_file() and not path.name.endswith((".tmp", ".nbcellar-tmp")):
                    found.add(hash_bytes(path.read_bytes()))
        return found

    def _is_uploaded(self, key: str) -> bool:
        found = self._state.execute("SELECT 1 FROM uploaded WHERE key = ?", (key,)).fetchone()
        return found is not None

    def _upload(self, key: str, path: str | None) -> None:
        source = self.blobs.path(key) if path is None else self.root / path
        try:
            data = source.read_bytes()
        except FileNotFoundError:
            raise CorruptObject(key, "missing from the local store: it cannot be shared") from None
        if hash_bytes(data) != key:  # (changed since: a run file rewritten later is sent then)
            return
        self.remote.put_object(key, data)

    def _run_files(self, run_id: str) -> tuple[dict[str, str], list[tuple[str, str | None]]]:
        """The files of a run's folder (executed notebook, sources, artifacts), by digest."""
        folder = self.root / "runs" / run_id
        files: dict[str, str] = {}
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.name.endswith((".tmp", ".nbcellar-tmp")):
                    files[path.relative_to(self.root).as_posix()] = hash_bytes(path.read_bytes())
        return files, [(k, p) for p, k in files.items()]

    # -- syncing ------------------------------------------------------------------------------

    def sync_if_due(self, index: Index) -> bool:
        """Sync unless this process did less than :data:`SYNC_EVERY` ago; whether it did. A
        shared store out of reach meanwhile is noted, not raised: the lookup that asked goes
        on with what is here."""
        if time.monotonic() - _LAST_SYNC.get(self.root, -SYNC_EVERY) < SYNC_EVERY:
            return False
        try:
            self.sync(index)
        except NbcellarError as exc:
            self.failures.append(f"not brought up to date: {exc}")
            return False
        return True

    def sync(self, index: Index) -> int:
        """Apply the journal entries not applied yet; the number applied."""
        _LAST_SYNC[self.root] = time.monotonic()
        started = time.time()
        with self._lock:
            row = self._state.execute("SELECT value FROM state WHERE key = 'horizon'").fetchone()
        horizon = float(row[0]) if row else 0.0
        since = horizon - SKEW_SECONDS
        if started - horizon > AWAY_SECONDS:
            hours = [h for h in self.remote.hours() if h >= hour_folder(since)]
        else:
            hours = sorted({hour_folder(t) for t in _steps(since, started + SKEW_SECONDS, 3600)})
        names = self.remote.list_entries(hours)
        with self._lock:
            new = [n for n in names if not self._applied(n)]
        applied = 0
        self._files = {}  # run files the applied entries name, the latest of each
        for start in range(0, len(new), 64):
            chunk = new[start : start + 64]
            bodies = self.remote.get_entries(chunk)
            for name in chunk:
                body = bodies.get(name)
                if body is None:
                    continue
                if isinstance(body, TamperedError):
                    self._refused(name, body)
                    continue
                self._apply(index, json.loads(body))
                with self._lock:
                    self._state.execute("INSERT OR IGNORE INTO applied VALUES (?, ?)",
                                        (name, time.time()))  # fmt: skip
                applied += 1
        files, self._files = self._files, {}
        self._fetch_files(files)  # (all at once, in parallel)
        with self._lock:
            self._state.execute("INSERT OR REPLACE INTO state VALUES ('horizon', ?)",
                                (str(started),))  # fmt: skip
            self._state.execute("DELETE FROM applied WHERE at < ?", (started - 4 * AWAY_SECONDS,))
        return applied

    def _refused(self, name: str, error: TamperedError) -> None:
        """An entry that does not verify is skipped (never applied), said once per process."""
        import warnings

        if name not in self._said:
            self._said.add(name)
            warnings.warn(str(error), SharedStoreWarning, stacklevel=3)

    def _applied(self, name: str) -> bool:
        found = self._state.execute("SELECT 1 FROM applied WHERE name = ?", (name,)).fetchone()
        return found is not None

    def _apply(self, index: Index, body: dict[str, Any]) -> None:
        from nbcellar.store import records_table

        for change in body.get("changes", ()):
            created = float(change["created"])
            if change["op"] == "delete":
                older = []
                for key in change["keys"]:
                    found = records_table.get_record(index, change["kind"], key)
                    if found is not None and found.created <= created:
                        older.append(key)
                if older:
                    records_table.delete_records_and_snapshots(index, change["kind"], older)
                continue
            with index.write() as db:
                if change.get("rows"):
                    apply_snapshot_rows(db, change["rows"])
                row = db.execute(
                    "SELECT created FROM records WHERE kind = ? AND key = ?",
                    (change["kind"], change["key"]),
                ).fetchone()
                if row is None or float(row[0]) <= created:  # (the latest put wins)
                    db.execute(
                        "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?)",
                        (change["kind"], change["key"], change.get("snapshot"),
                         _unb64(change["payload"]), created),
                    )  # fmt: skip
            if change.get("files") and (row is None or float(row[0]) <= created):
                self._files.update(change["files"])

    def _fetch_files(self, files: dict[str, str]) -> None:
        """Put a run's files in place (each checked), those not there already."""
        wanted = []
        for relative, key in files.items():
            target = self.root / relative
            if ".." in Path(relative).parts or not relative.startswith("runs/"):
                self._refused(relative, TamperedError("a journal entry", self.remote.url,
                                                      f"names the file {relative!r} outside "
                                                      "runs/"))  # fmt: skip
                continue
            if not (target.is_file() and hash_bytes(target.read_bytes()) == key):
                wanted.append((target, key))

        def fetch(item: tuple[Path, str]) -> None:
            target, key = item
            try:
                data = self.remote.get_object(key)
            except FileNotFoundError:  # (rewritten before it was sent: a later entry has it)
                return
            except TamperedError as exc:
                self._refused(key, exc)
                return
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            temporary.write_bytes(data)
            os.replace(temporary, target)

        in_parallel(fetch, wanted)

    # -- read-through -------------------------------------------------------------------------

    def fetch_blob(self, key: str, index: Index | None = None) -> None:
        """Bring one blob from the shared store into the local one, checked first."""
        try:
            data = self.remote.get_object(key)
        except FileNotFoundError:
            raise CorruptObject(key, f"missing from {self.remote.url}") from None
        except TamperedError as exc:
            raise CorruptObject(
                key, f"{exc.problem} in {exc.url} (refused, not unpickled)"
            ) from None
        self.blobs.put(data, ObjectKey(key))
        with self._lock:
            self._state.execute("INSERT OR IGNORE INTO uploaded VALUES (?)", (key,))
        if index is not None:
            with index.write() as db:
                db.execute("UPDATE blobs SET signature = ? WHERE key = ?",
                           (self.blobs.signature(key), key))  # fmt: skip

    def fetch_snapshot(self, index: Index, snapshot_id: str, names: Iterable[str] | None) -> None:
        """Fetch, in parallel, the blobs of a snapshot's values that are not here yet."""
        wanted = None if names is None else set(names)
        with closing(index.db.cursor()) as db:
            values = [
                key for name, key in db.execute(
                    "SELECT v.name, v.value_key FROM variables v JOIN stored_values s "
                    "ON s.key = v.value_key WHERE v.snapshot_id = ? AND s.data IS NULL",
                    (snapshot_id,),
                )
                if wanted is None or name in wanted
            ]  # fmt: skip
            keys = set(values)
            for start in range(0, len(values), 500):
                chunk = values[start : start + 500]
                marks = ",".join("?" * len(chunk))
                keys.update(k for (k,) in db.execute(
                    f"SELECT blob_key FROM value_blobs WHERE value_key IN ({marks})", chunk
                ))  # fmt: skip
        missing = sorted(k for k in keys if not self.blobs.path(k).exists())
        in_parallel(lambda k: self.fetch_blob(k), missing)
        if missing:
            with index.write() as db:
                db.executemany(
                    "UPDATE blobs SET signature = ? WHERE key = ?",
                    [(self.blobs.signature(k), k) for k in missing],
                )


_OPEN: weakref.WeakSet[Mirror] = weakref.WeakSet()
"""The mirrors of this process, sent out at exit: a command that ends a moment after its last
put (before the sending thread woke) still shares it."""


@atexit.register
def _send_at_exit() -> None:
    for mirror in list(_OPEN):
        if not mirror._stop.is_set():
            with contextlib.suppress(Exception):  # (what is left stays queued for the next open)
                mirror.publish()


_LAST_SYNC: dict[Path, float] = {}
"""When this process last synced each local store folder (its stores share the index)."""


def _steps(start: float, end: float, step: float) -> list[float]:
    found = []
    at = start
    while at < end:
        found.append(at)
        at += step
    return [*found, end]


def _alive(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True  # (not ours to adopt)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


_SNAPSHOT_TABLES = {
    "snapshots": "SELECT id, created, label, parent, nbytes FROM snapshots WHERE id = ?",
    "variables": "SELECT snapshot_id, name, value_key, type_name, nbytes, module, "
    "unserializable FROM variables WHERE snapshot_id = ? ORDER BY rowid",
}


def snapshot_rows(db: sqlite3.Connection, snapshot_id: str) -> tuple[dict[str, Any], list[str]]:
    """The index rows another client needs to load a snapshot, and the blobs they name."""
    rows: dict[str, Any] = {
        table: [list(r) for r in db.execute(query, (snapshot_id,))]
        for table, query in _SNAPSHOT_TABLES.items()
    }
    values = sorted({r[2] for r in rows["variables"] if r[2] is not None})
    rows["stored_values"], rows["value_blobs"], rows["blobs"] = [], [], []
    objects: list[str] = []
    for start in range(0, len(values), 500):
        chunk = values[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for key, nbytes, names, data in db.execute(
            f"SELECT key, nbytes, names, data FROM stored_values WHERE key IN ({marks})", chunk
        ):
            rows["stored_values"].append([key, nbytes, names, _b64(data)])
            if data is None:
                objects.append(key)
        for value_key, position, blob_key in db.execute(
            f"SELECT value_key, position, blob_key FROM value_blobs WHERE value_key IN ({marks})",
            chunk,
        ):
            rows["value_blobs"].append([value_key, position, blob_key])
            objects.append(blob_key)
    for start in range(0, len(objects), 500):
        chunk = objects[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows["blobs"] += [
            list(r)
            for r in db.execute(f"SELECT key, nbytes FROM blobs WHERE key IN ({marks})", chunk)
        ]
    return rows, sorted(set(objects))


def apply_snapshot_rows(db: sqlite3.Connection, rows: dict[str, Any]) -> None:
    """Within a write transaction: index a snapshot another client stored (its blobs come
    when it is loaded; a signature of 0 has them hashed until then)."""
    db.executemany("INSERT OR IGNORE INTO blobs VALUES (?, ?, 0)",
                   [(k, n) for k, n in rows["blobs"]])  # fmt: skip
    db.executemany(
        "INSERT OR IGNORE INTO stored_values (key, nbytes, names, data) VALUES (?, ?, ?, ?)",
        [(k, n, names, _unb64(data)) for k, n, names, data in rows["stored_values"]],
    )
    db.executemany("INSERT OR IGNORE INTO value_blobs VALUES (?, ?, ?)", rows["value_blobs"])
    db.executemany("INSERT OR IGNORE INTO snapshots VALUES (?, ?, ?, ?, ?)", rows["snapshots"])
    db.executemany("INSERT OR IGNORE INTO variables VALUES (?, ?, ?, ?, ?, ?, ?)",
                   rows["variables"])  # fmt: skip

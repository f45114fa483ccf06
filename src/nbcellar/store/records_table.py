"""Keyed records for the layers above the store, and named locks between processes.

A record is opaque bytes under ``(kind, key)``, optionally tied to a snapshot that holds its
values; the cell cache keeps its entries here. A lock names a piece of work (computing one cache
entry) so that two kernels do not do it twice; a lock whose owner died is taken over.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nbcellar.store.index import Index


@dataclass(frozen=True)
class Record:
    kind: str
    key: str
    payload: bytes
    snapshot_id: str | None
    created: float


def put_record(index: Index, kind: str, key: str, payload: bytes, snapshot_id: str | None) -> None:
    with index.write() as db:
        db.execute(
            "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?)",
            (kind, key, snapshot_id, payload, time.time()),
        )


def get_record(index: Index, kind: str, key: str) -> Record | None:
    row = index.db.execute(
        "SELECT kind, key, payload, snapshot_id, created FROM records WHERE kind = ? AND key = ?",
        (kind, key),
    ).fetchone()
    return Record(row[0], row[1], bytes(row[2]), row[3], row[4]) if row else None


def has_records(index: Index, kind: str, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = index.db.execute(
            f"SELECT key FROM records WHERE kind = ? AND key IN ({marks})", [kind, *chunk]
        )
        found.update(r[0] for r in rows)
    return found


def list_records(index: Index, kind: str) -> list[Record]:
    """Every record of a kind, oldest first."""
    rows = index.db.execute(
        "SELECT kind, key, payload, snapshot_id, created FROM records WHERE kind = ? "
        "ORDER BY created, key",
        (kind,),
    )
    return [Record(r[0], r[1], bytes(r[2]), r[3], r[4]) for r in rows]


def record_times(index: Index, kind: str) -> dict[str, float]:
    """When each record of a kind was last written, by key (read from an index alone: no
    payload is read). A reader that keeps these knows which records changed since it looked,
    also those a shared store brought in late with their writer's time."""
    rows = index.db.execute(
        "SELECT key, created FROM records INDEXED BY records_by_time WHERE kind = ?", (kind,)
    )
    return {r[0]: r[1] for r in rows}


def get_records(index: Index, kind: str, keys: list[str]) -> list[Record]:
    """The records of a kind under ``keys`` (those there are)."""
    found: list[Record] = []
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = index.db.execute(
            "SELECT kind, key, payload, snapshot_id, created FROM records WHERE kind = ? "
            f"AND key IN ({marks})",
            [kind, *chunk],
        )
        found.extend(Record(r[0], r[1], bytes(r[2]), r[3], r[4]) for r in rows)
    return found


def delete_records_and_snapshots(index: Index, kind: str, keys: list[str]) -> int:
    """Forget these records, and the snapshots only they held (their objects go at the next
    gc); the number of snapshots forgotten. One transaction."""
    gone = 0
    with index.write() as db:
        for key in keys:
            row = db.execute(
                "SELECT snapshot_id FROM records WHERE kind = ? AND key = ?", (kind, key)
            ).fetchone()
            db.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))
            snapshot = row[0] if row is not None else None
            if snapshot is None:
                continue
            still = db.execute(
                "SELECT 1 FROM records WHERE snapshot_id = ? LIMIT 1", (snapshot,)
            ).fetchone()
            if still is None:
                forget_snapshot(db, snapshot)
                gone += 1
    return gone


def forget_snapshot(db: sqlite3.Connection, snapshot_id: str) -> None:
    """Within a write transaction: the snapshot and its variables go; its blobs go at the next
    gc unless another snapshot uses them."""
    db.execute("DELETE FROM variables WHERE snapshot_id = ?", (snapshot_id,))
    db.execute("DELETE FROM snapshots WHERE id = ?", (snapshot_id,))


def delete_record(index: Index, kind: str, key: str) -> None:
    with index.write() as db:
        db.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))


def _me() -> str:
    from nbcellar.owners import me

    return me()


def _alive(owner: str, since: float | None = None) -> bool:
    from nbcellar.owners import alive

    return alive(owner, since)


def try_lock(index: Index, name: str) -> bool:
    """Take the lock if it is free, ours already, or its owner is gone: a dead process on
    this host, or one on another host whose lease ran out (see nbcellar.owners)."""
    me = _me()
    with index.write() as db:
        row = db.execute("SELECT owner, since FROM locks WHERE name = ?", (name,)).fetchone()
        if row is not None and row[0] != me and _alive(row[0], row[1]):
            return False
        db.execute("INSERT OR REPLACE INTO locks VALUES (?, ?, ?)", (name, me, time.time()))
    _HEARTBEAT.hold(index.path, name)
    return True


def unlock(index: Index, name: str) -> None:
    _HEARTBEAT.release(index.path, name)
    with index.write() as db:
        db.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, _me()))


def holder(index: Index, name: str) -> tuple[str, float] | None:
    """Who holds the lock, and since when it last said it was there."""
    row = index.db.execute("SELECT owner, since FROM locks WHERE name = ?", (name,)).fetchone()
    return None if row is None else (str(row[0]), float(row[1]))


class _Heartbeat:
    """Renews the leases of the locks this process holds, every few seconds, from a thread of
    its own: a holder on another host is known to be there while its lease is renewed."""

    every = 15.0

    def __init__(self) -> None:
        import threading

        self._held: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, path: Path, name: str) -> None:
        import threading

        with self._lock:
            key = (str(path), name)
            self._held[key] = self._held.get(key, 0) + 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._beat, name="nbcellar-lock-heartbeat", daemon=True
                )
                self._thread.start()

    def release(self, path: Path, name: str) -> None:
        with self._lock:
            self._held.pop((str(path), name), None)

    def _beat(self) -> None:
        while True:
            time.sleep(self.every)
            with self._lock:
                held = list(self._held)
            if not held:
                continue
            me = _me()
            for path in {p for p, _ in held}:
                try:
                    index = Index(Path(path))
                    try:
                        with index.write() as db:
                            db.executemany(
                                "UPDATE locks SET since = ? WHERE name = ? AND owner = ?",
                                [(time.time(), n, me) for p, n in held if p == path],
                            )
                    finally:
                        index.close()
                except Exception:  # (a store gone meanwhile: nothing to renew)
                    continue


_HEARTBEAT = _Heartbeat()


Published = Callable[[sqlite3.Connection, str, str, bytes, "str | None"], None]
"""Told of each record put, with the connection it was put through (a shared store sends it)."""


class RecordBook:
    """Records and locks through one connection to the index (a writing thread has its own)."""

    def __init__(self, index: Index, published: Published | None = None) -> None:
        self.index = index
        self.published = published

    def put_record(
        self, kind: str, key: str, payload: bytes, snapshot_id: str | None = None
    ) -> None:
        put_record(self.index, kind, key, payload, snapshot_id)
        if self.published is not None:
            self.published(self.index.db, kind, key, payload, snapshot_id)

    def get_record(self, kind: str, key: str) -> Record | None:
        return get_record(self.index, kind, key)

    def try_lock(self, name: str) -> bool:
        return try_lock(self.index, name)

    def unlock(self, name: str) -> None:
        unlock(self.index, name)


@contextmanager
def locked(index: Index, name: str, poll: float = 0.05, say_after: float = 5.0) -> Iterator[bool]:
    """Hold the named lock; yields False after waiting if another process held it meanwhile.
    A wait longer than ``say_after`` seconds is said once, on stderr, with who is waited for."""
    waited = False
    began = time.monotonic()
    said = False
    while not try_lock(index, name):
        waited = True
        if not said and time.monotonic() - began > say_after:
            said = True
            _say_waiting(index, name)
        time.sleep(poll)
    try:
        yield not waited
    finally:
        unlock(index, name)


def _say_waiting(index: Index, name: str) -> None:
    import sys

    from nbcellar.owners import LEASE_SECONDS, describe

    found = holder(index, name)
    if found is None:
        return
    owner, since = found
    print(
        f"nbcellar: waiting for {name} (held by {describe(owner)}, last seen "
        f"{time.time() - since:.0f} s ago; a holder on another host that stops renewing it is "
        f"taken over after {LEASE_SECONDS:.0f} s)",
        file=sys.stderr,
        flush=True,
    )

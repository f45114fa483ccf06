"""Keyed records for the layers above the store, and named locks between processes.

A record is opaque bytes under ``(kind, key)``, optionally tied to a snapshot that holds its
values; the cell cache keeps its entries here. A lock names a piece of work (computing one cache
entry) so that two kernels do not do it twice; a lock whose owner died is taken over.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

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


def delete_record(index: Index, kind: str, key: str) -> None:
    with index.write() as db:
        db.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(owner: str) -> bool:
    host, _, pid = owner.partition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def try_lock(index: Index, name: str) -> bool:
    """Take the lock if it is free, ours already, or held by a dead process."""
    me = _me()
    with index.write() as db:
        row = db.execute("SELECT owner FROM locks WHERE name = ?", (name,)).fetchone()
        if row is not None and row[0] != me and _alive(row[0]):
            return False
        db.execute("INSERT OR REPLACE INTO locks VALUES (?, ?, ?)", (name, me, time.time()))
    return True


def unlock(index: Index, name: str) -> None:
    with index.write() as db:
        db.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, _me()))


class RecordBook:
    """Records and locks through one connection to the index (a writing thread has its own)."""

    def __init__(self, index: Index) -> None:
        self.index = index

    def put_record(
        self, kind: str, key: str, payload: bytes, snapshot_id: str | None = None
    ) -> None:
        put_record(self.index, kind, key, payload, snapshot_id)

    def get_record(self, kind: str, key: str) -> Record | None:
        return get_record(self.index, kind, key)

    def try_lock(self, name: str) -> bool:
        return try_lock(self.index, name)

    def unlock(self, name: str) -> None:
        unlock(self.index, name)


@contextmanager
def locked(index: Index, name: str, poll: float = 0.05) -> Iterator[bool]:
    """Hold the named lock; yields False after waiting if another process held it meanwhile."""
    waited = False
    while not try_lock(index, name):
        waited = True
        time.sleep(poll)
    try:
        yield not waited
    finally:
        unlock(index, name)

"""What the cell cache needs of a store: records, locks, and saving and loading values.

The cache speaks only to this protocol (``nbcellar.store.Store`` is one), never to SQLite or
files, so any store that keeps records and namespaces can hold a cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any, Protocol

from nbcellar.store.records import Restored, Snapshot
from nbcellar.store.records_table import Record


class RecordWriter(Protocol):
    """Records and locks, as a store's writing thread hands them to a ``then`` callback."""

    def put_record(
        self, kind: str, key: str, payload: bytes, snapshot_id: str | None = None
    ) -> None: ...

    def unlock(self, name: str) -> None: ...


class CacheStore(Protocol):
    def get_record(self, kind: str, key: str) -> Record | None: ...

    def put_record(
        self, kind: str, key: str, payload: bytes, snapshot_id: str | None = None
    ) -> None: ...

    def try_lock(self, name: str) -> bool: ...

    def unlock(self, name: str) -> None: ...

    def save_namespace(
        self,
        namespace: Mapping[str, Any],
        *,
        label: str = "",
        external: Mapping[str, Any] | None = None,
        others: Mapping[str, Any] | None = None,
        background: bool = False,
        then: Callable[[Any, bool], None] | None = None,
    ) -> Snapshot: ...

    def restore(
        self,
        snapshot_id: str,
        names: Iterable[str] | None = None,
        external: Mapping[str, Any] | None = None,
        namespace: MutableMapping[str, Any] | None = None,
    ) -> Restored: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
